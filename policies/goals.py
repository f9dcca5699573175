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


def subgoal_cut(folder: DemoFolder) -> dict[str, object] | None:
    """How the folder's subgoals were cut, for the checkpoint: ``{"method": "equal",
    "n_subgoals": 3}`` for evenly spaced ones, None for UVD's (or files without provenance).

    A task demo at evaluation is then cut the same way. Episodes cut by different methods are
    refused, naming two of them (a policy trained on a mix has no one way to be relayed)."""
    methods: dict[str | None, str] = {}
    cut = None
    for ep in folder.episode_ids:
        try:
            doc = read_subgoals(folder, ep)
        except DemoFolderError:
            continue  # uvd_goal_indices names the broken files
        methods.setdefault(doc.method, ep)
        if doc.method == "equal":
            cut = {"method": "equal", "n_subgoals": int(doc.parameters.get("n_subgoals", 4))}
    known = {m: ep for m, ep in methods.items() if m is not None}
    if len(known) > 1:
        named = ", ".join(f"episode {ep}: {m}" for m, ep in known.items())
        raise DemoFolderError(f"subgoals cut by different methods ({named}); decompose again")
    return cut
