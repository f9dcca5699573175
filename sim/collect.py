"""Scripted demos into a demo folder, in parallel worker processes (``uvdiff-collect``).

Episode i uses seed ``seed + i`` (and, for a task with orders, ``orders[i % len(orders)]``),
whichever worker runs it, so a folder can be rebuilt or extended deterministically. Only
successful episodes are written; every attempt is counted in the returned stats. Each worker
writes its own episodes straight into the folder (writes are atomic); the workers are
``sim.pool``'s, so one that crashes loses only the episode it was running, and a fresh one goes
on.
"""

from __future__ import annotations

import os
import time
import traceback
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from functools import partial
from typing import Any

from demos import DemoFolder

from .envs import env_spec
from .errors import SimError, UnknownEnvError
from .experts import EXPERTS
from .orders import resolve_orders
from .perturb import Perturbation
from .pool import run_episodes


@dataclass
class CollectStats:
    """What a collection did: attempts, successes, failures (with reasons), throughput."""

    env: str
    out: str
    attempted: int = 0
    succeeded: int = 0
    written: list[str] = field(default_factory=list)  # episode ids in the folder
    failed: dict[int, str] = field(default_factory=dict)  # seed -> why (no success / error)
    mean_length: float = 0.0
    wall_s: float = 0.0

    @property
    def success_rate(self) -> float:
        return self.succeeded / self.attempted if self.attempted else 0.0

    def to_json(self) -> dict[str, Any]:
        return {**asdict(self), "success_rate": self.success_rate}

    def summary(self) -> str:
        return (
            f"{self.env}: expert succeeded in {self.succeeded}/{self.attempted} episodes "
            f"({100 * self.success_rate:.1f}%), mean length {self.mean_length:.0f} steps, "
            f"{self.wall_s:.0f} s; {len(self.written)} episodes written to {self.out}"
        )


def collect(
    env_name: str,
    episodes: int,
    out: str | os.PathLike,
    seed: int = 0,
    *,
    workers: int = 2,
    cameras: Sequence[str] = (),
    image_size: tuple[int, int] = (84, 84),
    orders: str | Sequence[Any] | None = None,
    fast_render: bool = True,
    perturb: float = 0.0,
    progress: bool = True,
    backend: str = "local",
    address: str | None = None,
) -> CollectStats:
    """Run the scripted expert of ``env_name`` for ``episodes`` seeds and write the successful
    episodes (state, actions, ground-truth stages, frames of ``cameras``) to demo folder
    ``out`` (created, or appended to when its dataset.json matches). ``orders`` (pickplace4,
    arrange): a split name ("train", "heldout", "all") or a list of orders, used round-robin;
    None lets each seed draw its order. ``perturb`` > 0: the expert is pushed off its path with
    pushes of this size (action units) and the demos record its corrections (``sim.perturb``).
    ``backend="ray"``: the workers are Ray actors (``sim.ray_pool``; on a cluster, every node
    must see ``out``: a shared filesystem)."""
    if env_name not in EXPERTS:
        raise UnknownEnvError(
            f"no scripted expert for env {env_name!r}; experts: {', '.join(EXPERTS)}"
        )
    if episodes < 1 or workers < 1:
        raise SimError(f"episodes and workers must be >= 1, got {episodes} and {workers}")
    orders = resolve_orders(orders, env_name)  # refuse bad orders before starting anything
    if not perturb >= 0:
        raise SimError(f"perturb must be a push size >= 0 (action units), got {perturb}")
    perturbation = Perturbation(float(perturb)) if perturb else None
    DemoFolder.create(
        out, env_spec(env_name, cameras=cameras, image_size=image_size).dataset_info()
    )

    job = dict(
        env_name=env_name,
        out=str(out),
        seed=seed,
        cameras=tuple(cameras),
        image_size=tuple(image_size),
        fast_render=fast_render,
        orders=orders,
        perturbation=perturbation,
    )
    stats = CollectStats(env=env_name, out=str(out))
    lengths: list[int] = []
    t0 = time.perf_counter()
    bar = _progress(episodes, env_name, progress)

    def record(r: dict[str, Any]) -> None:
        _count(stats, r["seed"], r["success"], r["length"], r["episode_id"], r["error"],
               lengths, bar)  # fmt: skip

    def failed(i: int, why: str, wall: float) -> dict[str, Any]:
        if why.startswith("worker process"):
            why = f"{why} (before this episode finished)"
        return dict(index=i, seed=seed + i, success=False, length=0, episode_id=None, error=why)

    try:
        run_episodes(partial(_Collector, job), range(episodes), workers, record, failed,
                     backend=backend, address=address)  # fmt: skip
    finally:
        bar.close()
    stats.written.sort()
    stats.mean_length = sum(lengths) / len(lengths) if lengths else 0.0
    stats.wall_s = time.perf_counter() - t0
    return stats


def _count(stats, seed, ok, length, episode_id, error, lengths, bar) -> None:
    stats.attempted += 1
    if ok:
        stats.succeeded += 1
        lengths.append(length)
        if episode_id:
            stats.written.append(episode_id)
    else:
        stats.failed[seed] = error or f"no success within the horizon ({length} steps)"
    bar.set_postfix(success=f"{stats.succeeded}/{stats.attempted}", refresh=False)
    bar.update(1)


def _progress(total: int, env_name: str, enabled: bool):
    from tqdm import tqdm

    return tqdm(total=total, desc=f"collect {env_name}", unit="ep", disable=not enabled)


class _Collector:
    """One worker's env, expert and folder; ``episode(i)`` runs seed ``seed + i`` and writes
    the episode when the expert succeeds. Never raises: an error is the episode's result."""

    def __init__(self, job: dict):
        from .envs import make_env
        from .experts import Expert

        self.job = job
        self.env = make_env(
            job["env_name"],
            cameras=job["cameras"],
            image_size=job["image_size"],
            fast_render=job["fast_render"],
        )
        self.folder = DemoFolder(job["out"])
        self.expert = Expert(job["env_name"])

    def episode(self, i: int) -> dict[str, Any]:
        from .rollout import run_expert

        job, seed = self.job, self.job["seed"] + i
        r = dict(index=i, seed=seed, success=False, length=0, episode_id=None, error=None)
        try:
            orders = job["orders"]
            options = {"order": orders[i % len(orders)]} if orders else None
            run = run_expert(self.env, self.expert, seed, options=options,
                             perturbation=job["perturbation"])  # fmt: skip
            r.update(success=run.success, length=run.length)
            if run.success:
                r["episode_id"] = self.folder.add_episode(run.episode)
        except Exception as e:
            r["error"] = f"{type(e).__name__}: {e}\n{traceback.format_exc(limit=3)}"
        return r

    def close(self) -> None:
        self.env.close()
