"""Training goals from the decomposer: each step's goal frame from ``subgoals.json``."""

from __future__ import annotations

import numpy as np

from demos.errors import DemoFolderError
from demos.folder import DemoFolder
from demos.subgoals import read_subgoals


def uvd_goal_indices(folder: DemoFolder) -> dict[str, np.ndarray]:
    """Per episode, the goal frame of every step from its ``subgoals.json`` (decomposer output).

    Every episode is read before anything fails, so the error lists each faulty file."""
    from decomposer.relabel import goal_indices

    problems, out = [], {}
    for ep in folder.episode_ids:
        T = len(folder.read_lowdim(ep, check=False)["action"])
        try:
            subgoals = read_subgoals(folder, ep, T)
        except DemoFolderError as e:
            problems += e.problems
            continue
        out[ep] = np.asarray(goal_indices(subgoals.frames, T), dtype=np.int64)
    if problems:
        raise DemoFolderError(problems)
    return out
