"""UVD decomposition: subgoal frames from a sequence of frozen frame embeddings.

Why it works: with temporally trained embeddings the distance to a goal frame falls steadily over
the frames that lead up to it, so going backwards from a subgoal the first (smoothed) local
maximum of that distance marks where the previous stage ended. Starting from the last frame, that
peak becomes the previous subgoal and the search repeats from it (Zhang et al., ICRA 2024).

As in the reference code (not the paper's ``peak - 1``): the peak itself is the subgoal, peaks
are strict local maxima of the curve smoothed over the whole prefix ``[0, g]``, and a peak must
lie more than ``min_interval`` frames before the current subgoal and after frame 0.

Cost: the search reads the curve backwards in growing windows, so each subgoal costs about the
frames between it and the next one (plus the smoother's halo), not the whole prefix, and the
smoother is a banded convolution. ``decompose_curves`` computes whole curves for plots and as
the straightforward form of the same algorithm.

Smoothing: UVD's reference code smooths with Nadaraya-Watson regression under an RBF kernel over
frame indices, built as a dense T x T matrix: O(T^2) time and memory in every iteration. On a
uniform grid that regression is a Gaussian convolution divided by the convolution of ones (the
per-row normaliser, which is what makes the edges right), and the kernel is negligible beyond a
few bandwidths, so a banded convolution gives the same numbers in O(T * radius). ``smooth_dense``
keeps the matrix form as the reference for tests and benchmarks.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np
from scipy.linalg import toeplitz
from scipy.signal import savgol_filter

from .defaults import DEFAULT_GAMMA, DEFAULT_MIN_INTERVAL, DEFAULT_MIN_INTERVAL_S  # noqa: F401

Curve = Callable[[np.ndarray], np.ndarray]

#: Kernel weights below this are dropped by the banded smoother (relative to the centre weight 1).
KERNEL_EPS = 1e-16
SAVGOL_WINDOW, SAVGOL_ORDER = 85, 2


def rbf_radius(gamma: float, eps: float = KERNEL_EPS) -> int:
    """Half-width of the banded kernel: the first offset r whose weight exp(-gamma r^2) <= eps."""
    if not gamma > 0:
        raise ValueError(f"gamma must be > 0, got {gamma}")
    return math.ceil(math.sqrt(-math.log(eps) / gamma))


def smooth_rbf(d: np.ndarray, gamma: float, eps: float = KERNEL_EPS) -> np.ndarray:
    """Nadaraya-Watson RBF smoothing over frame indices in O(T * radius) by convolution."""
    d = np.asarray(d, dtype=np.float64)
    r = min(rbf_radius(gamma, eps), max(len(d) - 1, 0))
    k = np.exp(-gamma * np.arange(-r, r + 1, dtype=np.float64) ** 2)
    num = np.convolve(d, k)[r : r + len(d)]  # "full" then centre: safe when the kernel is longer
    den = np.convolve(np.ones_like(d), k)[r : r + len(d)]
    return num / den


def smooth_dense(d: np.ndarray, gamma: float) -> np.ndarray:
    """Reference O(T^2) form: the full kernel matrix, each row normalised (as UVD's code does)."""
    d = np.asarray(d, dtype=np.float64)
    if not gamma > 0:
        raise ValueError(f"gamma must be > 0, got {gamma}")
    K = toeplitz(np.exp(-gamma * np.arange(len(d), dtype=np.float64) ** 2))
    return K @ d / K.sum(axis=1)


def smooth_savgol(
    d: np.ndarray, window: int = SAVGOL_WINDOW, order: int = SAVGOL_ORDER
) -> np.ndarray:
    """Savitzky-Golay smoothing as UVD's code runs it: the full window on every curve.

    The edges are padded with the end values (``mode="nearest"``), so a curve shorter than
    the window is still smoothed over the whole window rather than fitted by one polynomial.
    """
    return savgol_filter(np.asarray(d, dtype=np.float64), window, order, mode="nearest")


class Smoother(NamedTuple):
    """A curve smoother plus how far its output depends on its input.

    ``halo``: output i depends only on inputs within ``halo`` of i (away from the edges), so
    a piece cut from a longer curve gives the curve's own values from ``halo`` past its start.
    """

    fn: Callable[[np.ndarray], np.ndarray]
    halo: int


def get_smoother(name: str, gamma: float) -> Smoother:
    """Look a smoother up by name: "rbf" (banded), "savgol" or "none"."""
    if name == "rbf":
        return Smoother(lambda d: smooth_rbf(d, gamma), rbf_radius(gamma))
    if name == "savgol":
        return Smoother(smooth_savgol, SAVGOL_WINDOW // 2)
    if name == "none":
        return Smoother(lambda d: np.asarray(d, dtype=np.float64), 0)
    raise ValueError(f"smoother={name!r}: use one of 'rbf', 'savgol', 'none'")


def check_embeddings(embeddings: np.ndarray) -> np.ndarray:
    """(T, D) finite float32/64 with T >= 1, or a ValueError that says what is wrong and where."""
    e = np.asarray(embeddings)
    if e.ndim != 2:
        raise ValueError(f"embeddings must be 2-D (T, D), got shape {e.shape}")
    if e.shape[0] == 0:
        raise ValueError("embeddings have no frames (T == 0)")
    if not np.issubdtype(e.dtype, np.number) or np.issubdtype(e.dtype, np.complexfloating):
        raise ValueError(f"embeddings must be real numbers, got dtype {e.dtype}")
    bad = ~np.isfinite(e).all(axis=1)
    if bad.any():
        t = int(np.argmax(bad))
        raise ValueError(f"embeddings are not finite (NaN or Inf) at frame {t} of {len(e)}")
    # float16 caches (GPU encoders) and ints: distances need at least float32 differences
    return e if e.dtype in (np.float32, np.float64) else e.astype(np.float64)


def _check_params(min_interval: int, gamma: float) -> None:
    if isinstance(min_interval, bool) or not isinstance(min_interval, int | np.integer):
        raise ValueError(f"min_interval must be an int number of frames, got {min_interval!r}")
    if min_interval < 0:
        raise ValueError(f"min_interval must be >= 0, got {min_interval}")
    if not gamma > 0:
        raise ValueError(f"gamma must be > 0, got {gamma}")


def strict_peaks(s: np.ndarray) -> np.ndarray:
    """Indices of strict local maxima (both neighbours lower); the ends never count."""
    return np.flatnonzero((s[1:-1] > s[:-2]) & (s[1:-1] > s[2:])) + 1


def _distances(e: np.ndarray, lo: int, g: int) -> np.ndarray:
    return np.linalg.norm((e[lo : g + 1] - e[g]).astype(np.float64, copy=False), axis=1)


def _previous_subgoal(e: np.ndarray, g: int, min_interval: int, sm: Smoother) -> int | None:
    """Latest admissible peak of the smoothed distance curve to frame g, or None.

    Only a window of the curve is computed; a window that starts at ``lo > 0`` gives the
    full-prefix values from ``lo + halo`` on, so peaks are only read there.
    """
    first, last = min_interval + 1, g - min_interval - 1  # admissible peak range
    if last < first:
        return None
    span = 4 * (min_interval + sm.halo) + 64
    while True:
        start = max(first, last - span)  # earliest candidate examined in this round
        lo = max(0, start - 1 - sm.halo)
        s = sm.fn(_distances(e, lo, g))
        peaks = strict_peaks(s[start - 1 - lo : last + 2 - lo]) + start - 1
        if len(peaks):
            return int(peaks[-1])
        if start == first:
            return None
        span *= 2


def decompose(
    embeddings: np.ndarray,
    *,
    min_interval: int = DEFAULT_MIN_INTERVAL,
    gamma: float = DEFAULT_GAMMA,
    smoother: str = "rbf",
) -> list[int]:
    """UVD subgoal frame indices, ascending; the last is always T-1 (frame 0 never is one).

    ``min_interval`` (frames): a subgoal lies more than this after frame 0 and before the next
    subgoal. ``gamma``: RBF bandwidth over frame indices (sigma = 1/sqrt(2 gamma) frames).
    ``smoother``: "rbf" (Nadaraya-Watson, banded), "savgol" (window 85, order 2) or "none".

    Fewer frames than ``2 * min_interval + 3``, or a curve without a strict peak (a constant
    embedding), give the single subgoal ``[T-1]``: goal-conditioning on the final frame.
    Raises ValueError for non-2-D, empty or non-finite embeddings (naming the first bad frame).
    """
    e = check_embeddings(embeddings)
    _check_params(min_interval, gamma)
    sm = get_smoother(smoother, gamma)
    subgoals = [len(e) - 1]
    while (p := _previous_subgoal(e, subgoals[-1], int(min_interval), sm)) is not None:
        subgoals.append(p)
    return subgoals[::-1]


@dataclass(frozen=True)
class Decomposition:
    """Subgoals with the curves that chose them (for plots).

    ``curves[k]``: the smoothed distance to frame ``subgoals[k]`` over frames
    ``0..subgoals[k]``; ``peaks[k]``: that curve's strict local maxima (all of them). The
    chosen previous subgoal ``subgoals[k-1]`` is the latest admissible one.
    """

    subgoals: list[int]
    curves: list[np.ndarray]
    peaks: list[np.ndarray]


def decompose_curves(
    embeddings: np.ndarray,
    *,
    min_interval: int = DEFAULT_MIN_INTERVAL,
    gamma: float = DEFAULT_GAMMA,
    smoother: str | Curve = "rbf",
) -> Decomposition:
    """``decompose`` computed over whole prefixes, keeping every curve and peak.

    ``smoother`` may also be a function curve -> smoothed curve (e.g. the dense reference
    ``functools.partial(smooth_dense, gamma=0.08)``), which makes this UVD's algorithm step
    for step, with one exception: demos with exact plateaus (runs of identical frames longer
    than the kernel, about 45 frames at gamma 0.08, e.g. an arm at rest). Across such a run
    the smoothed curve is flat up to rounding, so which rounding bumps are strict peaks
    depends on the order of the floating-point operations, and UVD's code (which also divides
    each curve by its first distance, in float32) can pick other subgoals there; on 60 random
    walks with five such rests each, 47 decompositions differed. Costs O(T) per subgoal plus
    the smoother's own cost.
    """
    e = check_embeddings(embeddings)
    _check_params(min_interval, gamma)
    fn = smoother if callable(smoother) else get_smoother(smoother, gamma).fn
    subgoals, curves, peaks = [len(e) - 1], [], []
    while True:
        g = subgoals[-1]
        s = fn(_distances(e, 0, g))
        p = strict_peaks(s)
        curves.append(s)
        peaks.append(p)
        ok = p[(p > min_interval) & (g - p > min_interval)]
        if not len(ok):
            break
        subgoals.append(int(ok[-1]))
    return Decomposition(subgoals[::-1], curves[::-1], peaks[::-1])
