"""Baseline decomposers with UVD's interface, and the registry of all methods by name.

Every method is ``method(embeddings (T, D), **its own keywords) -> list[int]``: ascending frame
indices ending at T-1. The cheap ones mirror those shipped with UVD (final goal only, evenly
spaced, random, fixed horizon, oracle); ``changepoint`` is a training-free detector on the same
embeddings, to show what UVD's monotone-distance prior adds over generic segmentation.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from .uvd import check_embeddings, decompose


def _finish(frames, T: int) -> list[int]:
    """Sorted unique frames inside [0, T-1], with T-1 appended (the final goal)."""
    f = {int(t) for t in frames if 0 <= t < T - 1}
    return sorted(f) + [T - 1]


def _count(n: int, name: str) -> int:
    if isinstance(n, bool) or not isinstance(n, int | np.integer) or n < 1:
        raise ValueError(f"{name} must be an int >= 1, got {n!r}")
    return int(n)


def final(embeddings: np.ndarray) -> list[int]:
    """Only the last frame: plain goal-conditioned behaviour cloning (GCBC)."""
    return [len(check_embeddings(embeddings)) - 1]


def equal(embeddings: np.ndarray, *, n_subgoals: int = 4) -> list[int]:
    """``n_subgoals`` evenly spaced frames after frame 0, the last at T-1 (fewer if T is short)."""
    T, n = len(check_embeddings(embeddings)), _count(n_subgoals, "n_subgoals")
    return _finish(np.rint(np.linspace(0, T - 1, n + 1)[1:]).clip(1), T)


def random(embeddings: np.ndarray, *, n_subgoals: int | None = None, seed: int = 0) -> list[int]:
    """Random distinct frames plus T-1; ``n_subgoals`` None draws 3 to 6 of them, as UVD does."""
    T = len(check_embeddings(embeddings))
    rng = np.random.default_rng(seed)
    n = int(rng.integers(3, 7)) if n_subgoals is None else _count(n_subgoals, "n_subgoals")
    picks = rng.choice(T - 1, size=min(n - 1, T - 1), replace=False) if T > 1 else []
    return _finish(picks, T)


def near_future(embeddings: np.ndarray, *, every: int = 5) -> list[int]:
    """A subgoal every ``every`` frames (frames every, 2*every, ...) plus T-1: a fixed horizon."""
    T, k = len(check_embeddings(embeddings)), _count(every, "every")
    return _finish(range(k, T - 1, k), T)


def oracle(embeddings: np.ndarray, *, stage: np.ndarray) -> list[int]:
    """The last frame of each ground-truth stage (``stage``: (T,) labels, e.g. lowdim["stage"])."""
    T = len(check_embeddings(embeddings))
    stage = np.asarray(stage)
    if stage.shape != (T,):
        raise ValueError(f"stage has shape {stage.shape}, the embeddings have {T} frames")
    return _finish(np.flatnonzero(stage[1:] != stage[:-1]), T)


def changepoint(
    embeddings: np.ndarray,
    *,
    n_bkps: int | None = None,
    penalty: float | None = None,
    min_size: int = 18,
    gamma: float | None = None,
) -> list[int]:
    """Kernel change-point detection (ruptures ``KernelCPD``, RBF kernel) on the embeddings.

    A change at frame b (first frame of a new segment) gives the subgoal b-1, the last frame
    of the segment before it. Give ``n_bkps`` (exact dynamic programming) or ``penalty`` (PELT);
    with neither, the penalty is ``log(T)`` (a BIC-like default; the RBF cost of one frame is
    below 1, so it counts in frames). ``gamma`` None: ruptures' median heuristic.
    The Gram matrix is T x T: fine for demos, not for 20k-frame videos.
    """
    import ruptures

    e = check_embeddings(embeddings)
    n_frames, size = len(e), _count(min_size, "min_size")
    if n_frames < 2 * size:  # no split leaves two segments of min_size
        return [n_frames - 1]
    params = None if gamma is None else {"gamma": float(gamma)}
    algo = ruptures.KernelCPD(kernel="rbf", min_size=size, params=params).fit(e.astype(np.float64))
    if n_bkps is not None:
        n = min(_count(n_bkps, "n_bkps"), n_frames // size - 1)
        bkps = algo.predict(n_bkps=n)
    else:
        pen = float(np.log(n_frames)) if penalty is None else float(penalty)
        if not pen > 0:
            raise ValueError(f"penalty must be > 0, got {penalty}")
        bkps = algo.predict(pen=pen)
    return _finish(np.asarray(bkps) - 1, n_frames)


Method = Callable[..., list[int]]

METHODS: dict[str, Method] = {
    "uvd": decompose,
    "final": final,
    "equal": equal,
    "random": random,
    "near_future": near_future,
    "oracle": oracle,
    "changepoint": changepoint,
}


def get_method(name: str) -> Method:
    """The decomposer registered under ``name``; a ValueError lists the valid names."""
    try:
        return METHODS[name]
    except (KeyError, TypeError):
        raise ValueError(
            f"unknown decomposition method {name!r}; valid: {', '.join(sorted(METHODS))}"
        ) from None
