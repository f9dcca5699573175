"""Goals for a goal-conditioned policy at deployment: the task is given by a demo episode.

``FixedGoal``: one goal observation (the demo's last frame). ``RelayGoal``: the demo's subgoals
(its ``subgoals.json``; for a goal=uvd policy without one, UVD run on the demo here) switched by
``decomposer.SubgoalRelay`` on an embedding of each observation. For a state policy the
embedding is the goal keys' state, each key scaled to [-1, 1] by the training min/max (so no key
outweighs another), concatenated. ``goal_from_demo`` builds one from a demo folder.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence

import numpy as np

from .config import ConfigError

Goal = dict[str, np.ndarray]


class FixedGoal:
    def __init__(self, goal: Goal):
        self._goal = goal
        self.active = 0

    def reset(self) -> None:
        pass

    def __call__(self, obs: Mapping[str, np.ndarray]) -> Goal:
        return self._goal


class RelayGoal:
    """The active subgoal of a demo for each observation (never moves backwards)."""

    def __init__(
        self,
        goals: Sequence[Goal],
        keys: Sequence[str],
        budgets,
        *,
        stats: Mapping[str, Mapping[str, Sequence[float]]] | None = None,
        **relay_kw,
    ):
        from decomposer.relay import SubgoalRelay

        self.goals, self.keys = list(goals), list(keys)
        self._embed = state_embedding(keys, stats)
        emb = np.stack([self._embed(g) for g in self.goals])
        self.relay = SubgoalRelay(emb, budgets=np.asarray(budgets), **relay_kw)

    @property
    def active(self) -> int:
        return self.relay.active

    def reset(self) -> None:
        self.relay.reset()

    def __call__(self, obs: Mapping[str, np.ndarray]) -> Goal:
        return self.goals[self.relay.update(self._embed(obs))]


def state_embedding(keys: Sequence[str], stats: Mapping | None = None):
    """values -> the concatenated state of ``keys`` ((d,) or (T, d) each), each key scaled to
    [-1, 1] by ``stats`` (``{key: {min, max}}``, the policy's training statistics) if it has
    an entry there, as it is otherwise."""
    scales = []
    for k in keys:
        if stats is not None and k in stats:
            lo = np.asarray(stats[k]["min"], dtype=np.float64)
            hi = np.asarray(stats[k]["max"], dtype=np.float64)
            scales.append((k, lo, np.where(hi - lo > 1e-8, hi - lo, 1.0)))
        else:
            scales.append((k, None, None))

    def embed(values: Mapping[str, np.ndarray]) -> np.ndarray:
        parts = []
        for k, lo, width in scales:
            x = np.asarray(values[k], dtype=np.float64)
            parts.append(x if lo is None else 2 * (x - lo) / width - 1)
        return np.concatenate(parts, axis=-1)

    return embed


def goal_from_demo(
    demo: str | os.PathLike,
    episode: int | str,
    goal_keys: Sequence[str],
    *,
    relay: bool = True,
    stats: Mapping[str, Mapping[str, Sequence[float]]] | None = None,
    decompose_missing: bool = False,
    rule: str = "relative",
    eps: float = 0.2,
    min_interval: int = 18,
    gamma: float = 0.08,
) -> FixedGoal | RelayGoal:
    """The task of episode ``episode`` of demo folder ``demo`` as a goal source.

    Subgoals from the episode's ``subgoals.json``; without one, UVD on the demo's scaled state
    when ``decompose_missing`` (goal=uvd policies), else the last frame alone. State goal keys
    only (camera goals need the decomposer's visual backbone; not wired here).
    """
    from decomposer.relabel import budgets
    from demos import DemoFolder

    folder = DemoFolder(demo)
    cams = [k for k in goal_keys if k in folder.info.cameras]
    if cams:
        raise ConfigError(f"goal keys {cams} are cameras: deploy supports state goals only")
    missing = [k for k in goal_keys if k not in folder.info.state]
    if missing:
        raise ConfigError(f"{demo}: the policy's goal keys {missing} are not in dataset.json")
    ep = folder.read_episode(episode, frames=False)
    T = ep.length
    path = folder.episode_dir(episode) / "subgoals.json"
    subgoals = [T - 1]
    if relay and path.is_file():
        doc = json.loads(path.read_text())
        subgoals = [int(i) for i in doc.get("subgoals", doc.get("frame_indices", [T - 1]))]
    elif relay and decompose_missing:
        from decomposer import decompose

        emb = state_embedding(goal_keys, stats)({k: ep.state[k] for k in goal_keys})
        subgoals = [int(i) for i in decompose(emb, min_interval=min_interval, gamma=gamma)]
    goals = [{k: ep.state[k][i].astype(np.float32) for k in goal_keys} for i in subgoals]
    if len(goals) == 1 or not relay:
        return FixedGoal(goals[-1])
    return RelayGoal(goals, goal_keys, budgets(subgoals), stats=stats, rule=rule, eps=eps)
