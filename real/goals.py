"""Goals for a goal-conditioned policy at deployment: the task is given by a demo episode.

``FixedGoal``: one goal observation (the demo's last frame). ``RelayGoal``: the demo's subgoals
(its ``subgoals.json``, or its last frame alone) switched by ``decomposer.SubgoalRelay`` on an
embedding of each observation; for a state policy the embedding is the goal keys' state,
concatenated. ``goal_from_demo`` builds one from a demo folder and the policy's goal keys.
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

    def __init__(self, goals: Sequence[Goal], keys: Sequence[str], budgets, **relay_kw):
        from decomposer.relay import SubgoalRelay

        self.goals, self.keys = list(goals), list(keys)
        emb = np.stack([self._embed(g) for g in self.goals])
        self.relay = SubgoalRelay(emb, budgets=np.asarray(budgets), **relay_kw)

    def _embed(self, values: Mapping[str, np.ndarray]) -> np.ndarray:
        return np.concatenate([np.asarray(values[k], dtype=np.float64).ravel() for k in self.keys])

    @property
    def active(self) -> int:
        return self.relay.active

    def reset(self) -> None:
        self.relay.reset()

    def __call__(self, obs: Mapping[str, np.ndarray]) -> Goal:
        return self.goals[self.relay.update(self._embed(obs))]


def goal_from_demo(
    demo: str | os.PathLike,
    episode: int | str,
    goal_keys: Sequence[str],
    *,
    relay: bool = True,
    rule: str = "relative",
    eps: float = 0.2,
) -> FixedGoal | RelayGoal:
    """The task of episode ``episode`` of demo folder ``demo`` as a goal source.

    State goal keys only (camera goals need the decomposer's backbone; not wired here).
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
    goals = [{k: ep.state[k][i].astype(np.float32) for k in goal_keys} for i in subgoals]
    if len(goals) == 1 or not relay:
        return FixedGoal(goals[-1])
    return RelayGoal(goals, goal_keys, budgets(subgoals), rule=rule, eps=eps)
