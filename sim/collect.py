"""Scripted demos into a demo folder, in parallel worker processes (``uvdiff-collect``).

Episode i uses seed ``seed + i`` (and, for pickplace4, ``orders[i % len(orders)]``), whichever
worker runs it, so a folder can be rebuilt or extended deterministically. Only successful
episodes are written; every attempt is counted in the returned stats. Each worker writes its
own episodes straight into the folder (writes are atomic), so a worker that crashes loses
only the episode it was running; the others go on.
"""

from __future__ import annotations

import multiprocessing as mp
import os
import queue
import time
import traceback
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from demos import DemoFolder

from .envs import env_spec
from .errors import SimError, UnknownEnvError
from .experts import EXPERTS
from .orders import resolve_orders
from .perturb import Perturbation


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
) -> CollectStats:
    """Run the scripted expert of ``env_name`` for ``episodes`` seeds and write the successful
    episodes (state, actions, ground-truth stages, frames of ``cameras``) to demo folder
    ``out`` (created, or appended to when its dataset.json matches). ``orders`` (pickplace4):
    a split name ("train", "heldout", "all") or a list of orders, used round-robin; None lets
    each seed draw its order. ``perturb`` > 0: the expert is pushed off its path with pushes of
    this size (action units) and the demos record its corrections (``sim.perturb``)."""
    if env_name not in EXPERTS:
        raise UnknownEnvError(
            f"no scripted expert for env {env_name!r}; experts: {', '.join(EXPERTS)}"
        )
    if episodes < 1 or workers < 1:
        raise SimError(f"episodes and workers must be >= 1, got {episodes} and {workers}")
    if orders is not None and env_name != "pickplace4":
        raise SimError(f"orders apply to pickplace4 only, not {env_name}")
    orders = resolve_orders(orders)  # refuse bad orders before starting anything
    if not perturb >= 0:
        raise SimError(f"perturb must be a push size >= 0 (action units), got {perturb}")
    perturbation = Perturbation(float(perturb)) if perturb else None
    DemoFolder.create(
        out, env_spec(env_name, cameras=cameras, image_size=image_size).dataset_info()
    )

    job = dict(
        env_name=env_name,
        out=str(out),
        cameras=tuple(cameras),
        image_size=tuple(image_size),
        fast_render=fast_render,
        orders=orders,
        perturbation=perturbation,
    )
    workers = min(workers, episodes)
    ctx = mp.get_context("spawn")  # a fresh interpreter: no inherited GL or MuJoCo state
    results = ctx.Queue()
    slices = {w: list(range(w, episodes, workers)) for w in range(workers)}
    procs = {
        w: ctx.Process(target=_worker, args=(job, seed, w, idx, results), daemon=True)
        for w, idx in slices.items()
    }
    stats = CollectStats(env=env_name, out=str(out))
    done: dict[int, set[int]] = {w: set() for w in procs}
    lengths: list[int] = []
    t0 = time.perf_counter()
    bar = _progress(episodes, env_name, progress)
    for p in procs.values():
        p.start()
    try:
        while any(len(done[w]) < len(slices[w]) for w in procs):
            try:
                msg = results.get(timeout=1.0)
            except queue.Empty:
                _reap(procs, slices, done, stats, seed, bar)
                continue
            w, i, ok, length, episode_id, error = msg
            if i in done[w]:
                continue
            done[w].add(i)
            _count(stats, seed + i, ok, length, episode_id, error, lengths, bar)
    finally:
        for p in procs.values():
            p.join(timeout=10)
            if p.is_alive():
                p.kill()
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


def _reap(procs, slices, done, stats, seed, bar) -> None:
    """A worker that died without reporting (killed, segfault): its open episodes failed.
    Called when no message came for a second, so whatever it sent has arrived."""
    for w, p in procs.items():
        if p.is_alive() or p.exitcode is None:
            continue
        missing = [i for i in slices[w] if i not in done[w]]
        if not missing:
            continue
        why = f"worker process exited with code {p.exitcode} before this episode finished"
        for i in missing:
            done[w].add(i)
            _count(stats, seed + i, False, 0, None, why, [], bar)


def _progress(total: int, env_name: str, enabled: bool):
    from tqdm import tqdm

    return tqdm(total=total, desc=f"collect {env_name}", unit="ep", disable=not enabled)


def _worker(job: dict, seed: int, w: int, indices: list[int], results) -> None:
    """Runs episodes ``indices`` and reports each one: (worker, i, success, length, id, error).

    Stops early when the collector that started it has died (SIGKILL leaves daemon workers
    running): an orphan would go on adding episodes to a folder, or to a new one made at the
    same path by the next run."""
    from .envs import make_env
    from .experts import Expert
    from .rollout import run_expert

    parent = os.getppid()

    try:
        env = make_env(
            job["env_name"],
            cameras=job["cameras"],
            image_size=job["image_size"],
            fast_render=job["fast_render"],
        )
        folder = DemoFolder(job["out"])
        expert = Expert(job["env_name"])
    except Exception as e:  # the env cannot start here: every episode of this slice fails
        error = f"worker could not start: {type(e).__name__}: {e}"
        for i in indices:
            results.put((w, i, False, 0, None, error))
        return
    orders = job["orders"]
    for i in indices:
        if os.getppid() != parent:
            break
        try:
            options = {"order": orders[i % len(orders)]} if orders else None
            r = run_expert(env, expert, seed + i, options=options, perturbation=job["perturbation"])
            episode_id = folder.add_episode(r.episode) if r.success else None
            results.put((w, i, r.success, r.length, episode_id, None))
        except Exception as e:
            tb = traceback.format_exc(limit=3)
            results.put((w, i, False, 0, None, f"{type(e).__name__}: {e}\n{tb}"))
    env.close()
