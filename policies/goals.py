"""Training goals from the decomposer: each step's goal frame from ``subgoals.json``."""

from __future__ import annotations

import json
from collections.abc import Sequence

import numpy as np

from demos.errors import DemoFolderError, Problem
from demos.folder import DemoFolder

SUBGOALS = "subgoals.json"


def uvd_goal_indices(folder: DemoFolder) -> dict[str, np.ndarray]:
    """Per episode, the goal frame of every step from its ``subgoals.json`` (decomposer output)."""
    try:
        from decomposer.relabel import goal_indices
    except ImportError:  # the decomposer's relabelling is not installed yet
        goal_indices = first_subgoal_at_or_after
    problems, out = [], {}
    for ep in folder.episode_ids:
        rel = folder.rel(ep, SUBGOALS)
        path = folder.root / rel
        if not path.is_file():
            problems.append(Problem(rel, "missing: run uvdiff-decompose on this folder first"))
            continue
        try:
            doc = json.loads(path.read_text())
        except json.JSONDecodeError as e:
            problems.append(Problem(rel, f"not valid JSON ({e})"))
            continue
        subgoals = next(
            (doc[k] for k in ("subgoals", "frame_indices", "indices") if k in doc), None
        )
        if not isinstance(subgoals, list) or not subgoals:
            problems.append(Problem(rel, "has no 'subgoals' list of frame indices"))
            continue
        T = len(folder.read_lowdim(ep, check=False)["action"])
        bad = _check(subgoals, T)
        if bad:
            problems.append(Problem(rel, bad))
            continue
        out[ep] = np.asarray(goal_indices(subgoals, T), dtype=np.int64)
    if problems:
        raise DemoFolderError(problems)
    return out


def _check(subgoals: list, T: int) -> str | None:
    """Why ``subgoals`` is not a valid decomposition of a T-step episode, or None."""
    if not all(isinstance(s, int) and not isinstance(s, bool) for s in subgoals):
        return f"subgoals must be frame indices (ints), got {subgoals}"
    if any(b <= a for a, b in zip(subgoals, subgoals[1:], strict=False)):
        return f"subgoals must be strictly ascending, got {subgoals}"
    if subgoals[0] < 0 or subgoals[-1] != T - 1:
        return f"subgoals must lie in [0, {T - 1}] and end at the last frame {T - 1}: {subgoals}"
    return None


def first_subgoal_at_or_after(subgoals: Sequence[int], T: int) -> np.ndarray:
    """Step t's goal is the first subgoal frame >= t (UVD's relabelling); the last frame after."""
    marks = np.unique(np.clip(np.asarray(subgoals, dtype=np.int64), 0, T - 1))
    pos = np.searchsorted(marks, np.arange(T), side="left")
    return np.where(pos < len(marks), marks[np.minimum(pos, len(marks) - 1)], T - 1)
