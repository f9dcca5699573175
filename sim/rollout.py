"""One expert episode in an env, recorded row by row as a demo-folder ``Episode``."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from demos import Episode

from .envs import SimEnv
from .experts import Expert
from .perturb import Perturbation, Pusher, perturb_seed

SETTLE_STEPS = 5  # success must hold this many steps in a row: a demo ends at a stable success


@dataclass
class Rollout:
    """What happened in one episode; ``episode`` holds the recording when one was asked for."""

    seed: int
    success: bool
    length: int
    stages: int  # the highest stage reached
    task: str
    episode: Episode | None = None
    info: dict[str, Any] = field(default_factory=dict)


def expert_seed(seed: int) -> np.random.Generator:
    """The expert's generator for an episode: its own stream, derived from the episode seed."""
    return np.random.default_rng([seed, 0x5EED])


def run_expert(
    env: SimEnv,
    expert: Expert,
    seed: int,
    *,
    options: dict | None = None,
    record: bool = True,
    settle: int = SETTLE_STEPS,
    perturbation: Perturbation | None = None,
) -> Rollout:
    """Reset ``env`` with ``seed`` and run ``expert`` until success holds ``settle`` steps or the
    horizon ends. Row t of the recording is (observation t, action t, stage at observation t).

    ``perturbation``: pushes are added to the executed actions; the recorded action is still
    the expert's, so the demo shows its corrections (``info["pushed_steps"]`` counts them)."""
    obs, info = env.reset(seed=seed, options=options)
    expert.reset(env, expert_seed(seed))
    push = Pusher(perturbation, perturb_seed(seed)) if perturbation else None
    rows: dict[str, list] = {k: [] for k in (*env.spec.keys, "action", "stage")}
    held = 0
    best = info["stage"]
    for _ in range(env.horizon):
        action = expert.act()
        if record:
            for key in env.spec.keys:
                rows[key].append(obs[key])
            rows["action"].append(action.astype(np.float32))
            rows["stage"].append(info["stage"])
        obs, _, _, truncated, info = env.step(push(action) if push else action)
        best = max(best, info["stage"])
        held = held + 1 if info["success"] else 0
        if held >= settle or truncated:
            break
    success = held >= settle
    length = env.elapsed_steps
    episode = None
    if record:
        episode = Episode(
            action=np.stack(rows["action"]),
            state={k: np.stack(rows[k]) for k in env.spec.state},
            frames={c: np.stack(rows[c]) for c in env.spec.cameras},
            stage=np.asarray(rows["stage"], dtype=np.int64),
            success=success,
            task=env.episode_info["task"],
        )
    info = {**info, "pushed_steps": push.pushed_steps if push else 0}
    return Rollout(seed, success, length, best, env.episode_info["task"], episode, info)
