"""Episodes as Ray tasks (``backend=ray``): the local pool's contract, on a cluster.

Each worker is a Ray actor that builds one runner (``make_runner()``, as in ``sim.pool``) and
plays one episode at a time; the driver keeps every actor busy and hands each result to
``record`` as it arrives (callers order results by index). A lost actor (its process killed,
its node gone) costs the episode it was playing one retry on a fresh actor; a second loss
counts it failed with Ray's reason, and the rest go on. An actor that cannot build its runner
fails the episodes left with that reason, once, as a local worker that cannot start does.
Ctrl-C cancels the episodes in flight and removes the actors.

``address``: None starts a Ray instance on this machine (shut down again at the end);
"auto" or "host:port" joins a running cluster, which is left running. Files the runner reads
(a checkpoint) travel once per node through Ray's object store: see ``ship``.
"""

from __future__ import annotations

import hashlib
import io
import os
import re
import shutil
import tarfile
import time
from collections import Counter, deque
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from .errors import SimError
from .pool import Result, Runner

RETRIES = 1  # a lost episode runs once more before it counts as failed


def import_ray():
    try:
        import ray
    except ImportError as e:  # pragma: no cover - ray is in requirements.lock
        raise SimError(f"backend=ray needs the ray package (pip install ray): {e}") from None
    return ray


class _EpisodeActor:
    """One Ray worker: builds its runner once, then plays the episodes it is given."""

    def __init__(self, make_runner: Callable[[], Runner]):
        self.runner = make_runner()
        self.pid = os.getpid()

    def episode(self, i: int) -> Result:
        return self.runner.episode(i)

    def where(self) -> int:
        return self.pid

    def close(self) -> None:
        self.runner.close()


def run_on_ray(
    make_runner: Callable[[], Runner],
    indices: Sequence[int],
    workers: int,
    record: Callable[[Result], None],
    failed: Callable[[int, str, float], Result],
    *,
    address: str | None = None,
    on_actor: Callable[[Any], None] | None = None,
) -> None:
    """Run episode ``indices`` on ``workers`` Ray actors (one CPU each); see the module doc.
    ``on_actor(handle)`` sees every actor made (tests use it to kill one mid-episode)."""
    ray = import_ray()
    from ray.exceptions import RayActorError, RayTaskError, TaskCancelledError

    started = connect(address, workers)
    actor_cls = ray.remote(num_cpus=1, max_restarts=0, max_task_retries=0)(_EpisodeActor)
    pending, tries = deque(indices), Counter()
    inflight: dict[Any, tuple[Any, int, float]] = {}  # ref -> (actor, episode, start)
    actors: list[Any] = []

    def new_actor():
        actor = actor_cls.remote(make_runner)
        actors.append(actor)
        if on_actor is not None:
            on_actor(actor)
        return actor

    idle = [new_actor() for _ in range(max(1, min(workers, len(pending))))]
    try:
        while pending or inflight:
            while idle and pending:
                actor, i = idle.pop(), pending.popleft()
                inflight[actor.episode.remote(i)] = (actor, i, time.perf_counter())
            ready, _ = ray.wait(list(inflight), num_returns=1, timeout=1.0)
            for ref in ready:
                actor, i, t0 = inflight.pop(ref)
                try:
                    record(ray.get(ref))
                    idle.append(actor)
                    continue
                except RayActorError as e:
                    why = _first_line(e)
                    if e.actor_init_failed:  # no runner can be built: fail the rest, once
                        for j in [i, *pending, *(j for _, j, _ in inflight.values())]:
                            record(failed(j, f"worker could not start: {why}", 0.0))
                        pending.clear()
                        inflight.clear()
                        return
                except (RayTaskError, TaskCancelledError) as e:  # the runner raised: no retry
                    record(failed(i, _first_line(e), time.perf_counter() - t0))
                    idle.append(actor)
                    continue
                tries[i] += 1  # the actor (or its node) is gone: retry once on a fresh one
                if tries[i] <= RETRIES:
                    pending.appendleft(i)
                else:
                    record(failed(i, f"worker lost twice: {why}", time.perf_counter() - t0))
                ray.kill(actor, no_restart=True)
                idle.append(new_actor())
    except KeyboardInterrupt:
        for ref in inflight:
            ray.cancel(ref, force=True)
        raise
    finally:
        for actor in actors:
            ray.kill(actor, no_restart=True)
        if started:
            ray.shutdown()


def connect(address: str | None, workers: int) -> bool:
    """Join the cluster at ``address``, or start a local instance with ``workers`` CPUs;
    whether this call started one (and so must shut it down)."""
    ray = import_ray()
    if ray.is_initialized():
        return False
    kw: dict[str, Any] = dict(include_dashboard=False, log_to_driver=False,
                              configure_logging=False)  # fmt: skip
    try:
        if address is None:
            ray.init(num_cpus=max(1, workers), **kw)
        else:
            ray.init(address=address, **kw)
    except ConnectionError as e:
        raise SimError(f"ray address={address!r}: cannot connect ({e})") from None
    return True


def _first_line(e: BaseException) -> str:
    """Ray's reason in one line: the exception raised inside the actor (the last line of its
    traceback) when there is one, else the first line of Ray's message; no colour codes."""
    lines = [re.sub(r"\x1b\[[0-9;]*m", "", x).strip() for x in str(e).splitlines()]
    lines = [x for x in lines if x]
    chosen = lines[-1] if len(lines) > 1 else (lines[0] if lines else "")
    return f"{type(e).__name__}: {chosen}"


# ------------------------------------------------------------------------------ files to nodes
def pack(path: str | os.PathLike) -> tuple[str, bytes]:
    """A directory (or file) as (content hash, tar bytes), to put in Ray's object store."""
    path = Path(path)
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        tar.add(path, arcname=path.name)
    data = buf.getvalue()
    return hashlib.sha1(data).hexdigest()[:16], data


def unpack(digest: str, data: bytes, name: str, root: str | os.PathLike | None = None) -> Path:
    """The packed path on this node: unpacked once per node (by content hash), then reused."""
    root = Path(root or os.environ.get("UVDIFF_RAY_CACHE", Path.home() / ".cache/uvdiff/ray"))
    dest = root / digest
    if not (dest / name).exists():
        tmp = root / f".{digest}.{os.getpid()}.tmp"
        with tarfile.open(fileobj=io.BytesIO(data)) as tar:
            tar.extractall(tmp, filter="data")
        try:
            tmp.rename(dest)
        except OSError:  # another actor on this node got there first
            shutil.rmtree(tmp, ignore_errors=True)
    return dest / name
