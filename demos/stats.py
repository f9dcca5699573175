"""Normalisation statistics (mean, std, min, max per key), computed once, kept beside the data."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Literal

import numpy as np

from .atomic import atomic_write_json
from .cache import LowdimCache, lowdim_cache
from .folder import DemoFolder

STATS_JSON = "stats.json"
NON_FEATURES = ("timestamp", "stage")


def compute_stats(cache: LowdimCache) -> dict[str, dict[str, list[float]]]:
    out = {}
    for key, a in cache.arrays.items():
        if key in NON_FEATURES:
            continue
        a = np.asarray(a, dtype=np.float64)
        out[key] = {
            "mean": a.mean(0).tolist(),
            "std": a.std(0).tolist(),
            "min": a.min(0).tolist(),
            "max": a.max(0).tolist(),
            "count": [int(len(a))],
        }
    return out


def load_stats(folder: DemoFolder) -> dict[str, dict[str, list[float]]]:
    """Stats for every action/state key; recomputed only when the episodes changed."""
    cache = lowdim_cache(folder)
    key = json.loads((folder.root / "cache" / "lowdim" / "manifest.json").read_text())["key"]
    path = folder.root / STATS_JSON
    if path.is_file():
        stored = json.loads(path.read_text())
        if stored.get("source") == key:
            return stored["features"]
    features = compute_stats(cache)
    atomic_write_json(path, {"source": key, "features": features})
    return features


@dataclass
class Normalizer:
    """Maps a key's values to a unit range and back.

    ``min_max`` maps [min, max] to [-1, 1] (Diffusion Policy's choice for actions and state);
    ``mean_std`` to zero mean, unit variance. Dimensions with no spread pass through unscaled.
    """

    offset: np.ndarray
    scale: np.ndarray

    @classmethod
    def from_stats(
        cls, stats: dict[str, list[float]], mode: Literal["min_max", "mean_std"] = "min_max"
    ) -> Normalizer:
        if mode == "min_max":
            lo, hi = np.asarray(stats["min"]), np.asarray(stats["max"])
            offset, half = (hi + lo) / 2, (hi - lo) / 2
        elif mode == "mean_std":
            offset, half = np.asarray(stats["mean"]), np.asarray(stats["std"])
        else:
            raise ValueError(f"normalisation mode {mode!r}: use 'min_max' or 'mean_std'")
        scale = np.where(half > 1e-8, half, 1.0)
        return cls(offset.astype(np.float32), scale.astype(np.float32))

    def normalize(self, x):
        return (x - _like(self.offset, x)) / _like(self.scale, x)

    def unnormalize(self, x):
        return x * _like(self.scale, x) + _like(self.offset, x)


def _like(a: np.ndarray, x):
    """``a`` as the array type of ``x`` (numpy, or a torch tensor on x's device)."""
    if isinstance(x, np.ndarray):
        return a
    import torch

    return torch.as_tensor(a, dtype=x.dtype, device=x.device)
