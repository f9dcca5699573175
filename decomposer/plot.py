"""``decomposition.png``: subgoal frames as a strip above the distance curves that chose them."""

from __future__ import annotations

import os
from collections.abc import Sequence

import numpy as np

from demos.atomic import atomic_path

MAX_THUMBS = 12


def plot_decomposition(
    path: str | os.PathLike,
    subgoals: Sequence[int],
    thumbs: dict[int, np.ndarray],
    *,
    curves: Sequence[np.ndarray] = (),
    peaks: Sequence[np.ndarray] = (),
    stage_ends: Sequence[int] = (),
    fps: float = 1.0,
    title: str = "",
) -> None:
    """Write the figure atomically (matplotlib Agg, no display needed).

    ``curves[k]``: the smoothed distance to ``subgoals[k]`` over frames 0..subgoals[k] (as
    ``decompose_curves`` returns them); ``peaks[k]``: that curve's local maxima. The chosen
    subgoals are marked on the curve of the subgoal after them; ``stage_ends``: ground truth.
    """
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    shown = list(subgoals)
    if len(shown) > MAX_THUMBS:  # evenly thinned, always with the last
        keep = np.unique(np.linspace(0, len(shown) - 1, MAX_THUMBS).round().astype(int))
        shown = [shown[i] for i in keep]
    fig, (top, bottom) = plt.subplots(
        2, 1, figsize=(max(6.0, 1.3 * len(shown)), 5.5), gridspec_kw={"height_ratios": [1, 2]}
    )
    imgs = [thumbs[t] for t in shown if t in thumbs]
    if imgs:
        h = min(i.shape[0] for i in imgs)
        strip = np.concatenate([_fit(i, h) for i in imgs], axis=1)
        top.imshow(strip)
        w = strip.shape[1] / len(imgs)
        for k, t in enumerate(t for t in shown if t in thumbs):
            top.text((k + 0.5) * w, -2, f"{t} ({t / fps:.1f}s)", ha="center", va="bottom", size=8)
    top.axis("off")
    colours = plt.get_cmap("tab10")
    for k, curve in enumerate(curves):
        c = colours(k % 10)
        x = np.arange(len(curve)) / fps
        bottom.plot(x, curve, color=c, lw=1.2, label=f"to subgoal {subgoals[k]}")
        p = np.asarray(peaks[k]) if k < len(peaks) else np.zeros(0, int)
        if len(p):
            bottom.plot(p / fps, curve[p], "o", color=c, ms=3, alpha=0.5)
        if k > 0:  # the chosen previous subgoal: a peak of this curve
            g = subgoals[k - 1]
            bottom.plot(g / fps, curve[g], "v", color=c, ms=9, mec="k")
    for t in subgoals:
        bottom.axvline(t / fps, color="k", lw=0.6, alpha=0.6)
    for i, t in enumerate(stage_ends):
        bottom.axvline(
            t / fps, color="r", ls="--", lw=1, label="true stage end" if i == 0 else None
        )
    bottom.set_xlabel("time (s)")
    bottom.set_ylabel("smoothed distance")
    if curves or len(stage_ends):
        bottom.legend(fontsize=7, loc="upper right")
    if title:
        fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=80, format="png")
    plt.close(fig)


def _fit(img: np.ndarray, h: int) -> np.ndarray:
    if img.shape[0] == h:
        return img
    import cv2

    w = max(1, round(img.shape[1] * h / img.shape[0]))
    return cv2.resize(img, (w, h), interpolation=cv2.INTER_AREA)
