"""Test support shared by tests/ and benchmarks/: tiny policy configs, small demo folders and
tiny trained checkpoints.

Many checks need a real checkpoint (one that ``train`` wrote and ``Policy.from_pretrained``
loads) without caring how well it acts; these helpers make one in seconds on a CPU. They live in
the installed package so benchmarks import them without reaching into tests/. Heavy imports
(torch, training) happen inside the functions, so importing this module stays cheap.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

import numpy as np

from demos import DatasetInfo, DemoFolder, Episode

# the lift task's state keys and sizes: policies shaped for the simulated Panda without a sim
SIM_STATE = {"eef_pos": 3, "eef_quat": 4, "gripper_qpos": 2, "object": 12}


def mlp_policy(
    hidden: int,
    *,
    blocks: int = 1,
    dropout: float | None = None,
    d_state: int | None = None,
    **fields: Any,
) -> dict[str, Any]:
    """A fresh ``policy=`` mapping for ``train``: a residual MLP ``blocks`` deep and ``hidden``
    wide (and ``dropout``, if given). ``d_state`` and ``fields`` (horizon, n_action_steps,
    d_embedding, ...) are other ``PolicyConfig`` fields; left out, they keep their defaults.
    Small widths train in a few seconds, which is all most checks need."""
    network_kwargs: dict[str, Any] = {"hidden": hidden, "blocks": blocks}
    if dropout is not None:
        network_kwargs["dropout"] = dropout
    policy: dict[str, Any] = {"network": "mlp", "network_kwargs": network_kwargs}
    if d_state is not None:
        policy["d_state"] = d_state
    return {**policy, **fields}


# the smallest policy that trains, chunks (8 planned, 4 executed) and deploys: for checks that
# need a checkpoint that loads and acts, not one that acts well. Copy it before changing it.
TINY_MLP = mlp_policy(16, d_state=8, horizon=8, n_action_steps=4)


def synthetic_folder(root: str | os.PathLike, episodes: int = 3, T: int = 30, size=(32, 32)):
    """A few short episodes of ``demos.synthetic`` (two cameras of ``size``, joint and eef
    state): the quickest folder ``train`` accepts with images, written in well under a second."""
    from demos.synthetic import make_folder

    return make_folder(Path(root), episodes=episodes, T=T, size=size)


def expert_folder(
    root: str | os.PathLike,
    task: str = "lift",
    seeds: Iterable[int] = range(3),
    *,
    cameras: tuple[str, ...] = (),
    image_size: tuple[int, int] = (84, 84),
) -> DemoFolder:
    """Scripted-expert demos of ``task`` on real MuJoCo, one episode per seed, in seed order:
    demos a small policy can learn something from, a few seconds each. ``cameras`` and
    ``image_size`` are ``make_env``'s (state only by default)."""
    from . import Expert, env_spec, make_env, run_expert

    folder = DemoFolder.create(
        Path(root), env_spec(task, cameras=cameras, image_size=image_size).dataset_info()
    )
    with make_env(task, cameras=cameras, image_size=image_size) as env:
        for seed in seeds:
            folder.add_episode(run_expert(env, Expert(task), seed).episode)
    return folder


def noise_folder(
    root: str | os.PathLike,
    cameras: Mapping[str, tuple[int, int]] | None = None,
    episodes: int = 2,
    T: int = 20,
    seed: int = 0,
) -> DemoFolder:
    """Episodes of uniform random 7-D actions and normal random ``SIM_STATE`` (and random
    frames for ``cameras``, name -> (h, w)): a folder shaped like the simulated Panda's, for
    policies whose speed or plumbing is checked, not their skill."""
    cams = dict(cameras or {})
    info = DatasetInfo(
        fps=20, action_dim=7, state=SIM_STATE, cameras=cams, robot="panda", action_kind="delta_ee"
    )
    folder = DemoFolder.create(Path(root), info)
    rng = np.random.default_rng(seed)
    for _ in range(episodes):
        folder.add_episode(
            Episode(
                action=rng.uniform(-1, 1, (T, 7)).astype(np.float32),
                state={k: rng.normal(size=(T, d)).astype(np.float32) for k, d in SIM_STATE.items()},
                frames={
                    c: rng.integers(0, 255, (T, h, w, 3), dtype=np.uint8)
                    for c, (h, w) in cams.items()
                },
            )
        )
    return folder


def train_checkpoint(
    data: str | os.PathLike,
    out_dir: str | os.PathLike,
    goal: str,
    *,
    policy: Mapping[str, Any] = TINY_MLP,
    steps: int = 2,
    batch_size: int = 4,
    warmup_steps: int = 1,
    checkpoint_every: int | None = None,
    threads: int | None = 1,
    **train_kwargs: Any,
) -> Path:
    """Train ``policy`` on the demo folder ``data`` with goal mode ``goal``, quietly, and return
    the last checkpoint's step folder. The defaults make a throwaway checkpoint in seconds;
    callers pass their own sizes and any other ``train`` argument (lr, cameras, ...).
    ``checkpoint_every`` defaults to ``steps`` (one checkpoint, at the end). ``threads``: torch
    threads while training (restored after; None leaves them), since two threads on a shared
    2-core machine can stall far longer than one."""
    import torch

    from policies.train import train

    n = torch.get_num_threads()
    if threads is not None:
        torch.set_num_threads(threads)
    try:
        run = train(
            data,
            out_dir,
            policy=policy,
            goal=goal,
            steps=steps,
            batch_size=batch_size,
            warmup_steps=warmup_steps,
            checkpoint_every=steps if checkpoint_every is None else checkpoint_every,
            progress=False,
            **train_kwargs,
        )
    finally:
        torch.set_num_threads(n)
    return run.checkpoint


_noise_made: list[Path] = []  # one per process: every caller gets the same (read-only) folder


def noise_checkpoint(root: str | os.PathLike) -> Path:
    """``TINY_MLP`` trained two steps on a ``noise_folder`` (goal none; its actions are noise):
    a real checkpoint shaped for the simulated Panda, for deploy and ROS checks. Trained under
    ``root`` the first time in this process; later calls reuse that one."""
    if _noise_made and _noise_made[0].is_dir():
        return _noise_made[0]
    root = Path(root)
    folder = noise_folder(root / "demo")
    _noise_made[:] = [train_checkpoint(folder.root, root / "run", "none")]
    return _noise_made[0]


class Killed(Exception):
    """What ``kill_at`` raises: a training run stopped as a kill would stop it."""


def kill_at(
    step: int | None = None, error: type[BaseException] = Killed
) -> Callable[[int, Path], None]:
    """An ``on_checkpoint`` hook for ``train`` that raises ``error`` once checkpoint ``step``
    (None: any) is on disk, as a process killed right after that save would leave the run:
    for resume checks."""

    def hook(s: int, path: Path) -> None:
        if step is None or s == step:
            raise error(s)

    return hook


class FlakyRunner:
    """A runner for pool tests, built in the worker: episode i returns ``{"index": i, "pid"}``;
    episodes in ``crash_once`` kill their worker the first time they run (a marker file under
    ``marks`` remembers it across processes), those in ``crash_always`` every time."""

    def __init__(self, marks: str | os.PathLike, crash_once=(), crash_always=(), fail_start=False):
        if fail_start:
            raise RuntimeError("no runner here (test)")
        self.marks, self.once, self.always = Path(marks), set(crash_once), set(crash_always)

    def episode(self, i: int) -> dict[str, Any]:
        mark = self.marks / f"crashed-{i}"
        if i in self.always or (i in self.once and not mark.exists()):
            mark.touch()
            os._exit(3)
        return {"index": i, "pid": os.getpid()}

    def close(self) -> None:
        pass
