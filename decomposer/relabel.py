"""From subgoal frames to training labels, and scores against ground-truth stages.

``goal_indices`` is the UVD relabelling: each step is conditioned on the next subgoal still
ahead of it (a subgoal frame labels itself), which is what ``demos.windows.WindowDataset(
goal="subgoal", goal_indices=...)`` reads. ``boundary_scores`` says how well subgoals land on
the stage ends a scripted expert recorded.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from scipy.optimize import linear_sum_assignment

from demos.subgoals import check_subgoals  # noqa: F401  (the format's own check, re-exported)


def goal_indices(subgoals: Sequence[int], T: int) -> np.ndarray:
    """(T,) int64: for each step t the first subgoal frame >= t."""
    s = check_subgoals(subgoals, T)
    return s[np.searchsorted(s, np.arange(T), side="left")]


def budgets(subgoals: Sequence[int]) -> np.ndarray:
    """Steps the demo spent on each subgoal: the frames after the previous subgoal up to this
    one, and for the first, frames 0..s[0] (``s[0] + 1``, as UVD's inference wrapper counts).

    These are the per-subgoal step budgets that ``SubgoalRelay`` checks at inference.
    """
    s = np.asarray(subgoals, dtype=np.int64)
    return np.diff(s, prepend=-1)


def stage_boundaries(stage: np.ndarray) -> np.ndarray:
    """The last frame of every stage but the final one: t where stage[t] != stage[t+1]."""
    stage = np.asarray(stage)
    if stage.ndim != 1:
        raise ValueError(f"stage must be 1-D (T,), got shape {stage.shape}")
    return np.flatnonzero(stage[1:] != stage[:-1])


def boundary_scores(
    pred: Sequence[int],
    true_stage: np.ndarray,
    fps: float,
    tolerance_s: float = 0.5,
    *,
    final_within_s: float | None = None,
) -> dict[str, float | int]:
    """Precision, recall and offset of predicted stage boundaries against the true ones.

    Predicted boundaries are the subgoals except the final frame T-1; true ones are the last
    frame of each stage except the final stage. Pairs are matched one-to-one within
    ``tolerance_s``: the most pairs, and among those the smallest total offset.

    Returns ``precision`` and ``recall`` (1.0 when there is nothing to predict / find),
    ``mean_offset_s`` (signed, predicted minus true: negative means early) and
    ``mean_abs_offset_s`` over matched pairs (NaN without a match), and the counts
    ``n_pred``, ``n_true``, ``n_matched`` for pooling over episodes.

    ``final_within_s``: true and predicted boundaries at most this many seconds before the
    last frame are left out, as the final subgoal T-1 stands for them (a scripted demo that
    stops a few steps after its success check ends its last stage there).
    """
    if not fps > 0 or not tolerance_s >= 0:
        raise ValueError(f"fps must be > 0 and tolerance_s >= 0, got {fps}, {tolerance_s}")
    T = len(true_stage)
    p = check_subgoals(pred, T)[:-1]
    t = stage_boundaries(true_stage)
    if final_within_s is not None:
        t = t[(T - 1 - t) / fps > final_within_s + 1e-9]
        p = p[(T - 1 - p) / fps > final_within_s + 1e-9]
    offset = (p[:, None] - t[None, :]) / fps  # seconds, (n_pred, n_true)
    ok = np.abs(offset) <= tolerance_s + 1e-9
    matched = np.zeros(0)
    if ok.any():
        # infeasible pairs cost more than all feasible ones together: max matches, then min offset
        big = 1.0 + np.abs(offset[ok]).sum()
        rows, cols = linear_sum_assignment(np.where(ok, np.abs(offset), big))
        keep = ok[rows, cols]
        matched = offset[rows[keep], cols[keep]]
    n = len(matched)
    return {
        "precision": n / len(p) if len(p) else 1.0,
        "recall": n / len(t) if len(t) else 1.0,
        "mean_offset_s": float(matched.mean()) if n else float("nan"),
        "mean_abs_offset_s": float(np.abs(matched).mean()) if n else float("nan"),
        "n_pred": len(p),
        "n_true": len(t),
        "n_matched": n,
    }
