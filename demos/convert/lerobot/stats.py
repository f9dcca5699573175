"""The statistics LeRobot keeps per episode (meta/episodes) and per dataset (meta/stats.json).

Separate from the writer because it is plain arithmetic on arrays, with no files involved.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .layout import IMAGE_STATS_FRAMES, QUANTILES


def _stats(x: np.ndarray) -> dict[str, np.ndarray]:
    """Per-dimension min/max/mean/std/count/quantiles of (T, ...) values."""
    x = x.reshape(len(x), -1)
    f = x.astype(np.float64)
    out = {"min": x.min(0), "max": x.max(0), "mean": f.mean(0), "std": f.std(0)}
    out["count"] = np.array([len(x)], np.int64)
    return out | {name: np.quantile(f, q, axis=0) for name, q in QUANTILES.items()}


def _image_stats(frames: np.ndarray) -> dict[str, np.ndarray]:
    """Per-channel stats in [0, 1], shaped (3, 1, 1) as LeRobot stores them."""
    step = max(1, len(frames) // IMAGE_STATS_FRAMES)
    stats = _stats(frames[::step].reshape(-1, 3) / 255.0)
    stats = {k: v.reshape(3, 1, 1) for k, v in stats.items() if k != "count"}
    return stats | {"count": np.array([len(frames)], np.int64)}


def _aggregate(episodes: list[dict[str, Any]], name: str) -> dict[str, np.ndarray]:
    """Dataset stats from per-episode stats: exact min/max/mean/std, count-weighted quantiles."""

    def get(stat: str) -> np.ndarray:
        return np.stack([np.asarray(r[f"stats/{name}/{stat}"]) for r in episodes])

    n = get("count")[:, 0].astype(np.float64)
    w = (n / n.sum()).reshape(-1, *[1] * (get("mean").ndim - 1))
    mean = (w * get("mean")).sum(0)
    var = (w * (get("std") ** 2 + (get("mean") - mean) ** 2)).sum(0)
    out = {"min": get("min").min(0), "max": get("max").max(0), "mean": mean, "std": np.sqrt(var)}
    out["count"] = np.array([int(n.sum())], np.int64)
    return out | {q: (w * get(q)).sum(0) for q in QUANTILES}


def _jsonable(stats: dict[str, dict[str, np.ndarray]]) -> dict:
    return {name: {k: v.tolist() for k, v in st.items()} for name, st in stats.items()}
