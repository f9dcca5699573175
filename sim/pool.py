"""Episodes in worker processes, where one crash costs one episode (collection and evaluation).

Each worker is a fresh (spawned) interpreter that builds one runner, then takes episode
indices from a shared queue until it is empty. It reports when it starts an episode and when
it is done, so a worker that dies (killed, segfault) costs only the episode it was running:
that episode is reported failed with the exit code and a fresh worker takes over the rest.
A worker that cannot build its runner says why once and leaves the episodes to the others;
when none is left, the remaining episodes fail with that reason. Workers stop on their own
when the process that started them is gone (daemon workers survive a SIGKILL of their parent,
and the episodes are queued ahead).

A runner is whatever ``make_runner()`` returns: ``episode(i) -> dict`` (never raises; the
dict has ``index``) and ``close()``. ``make_runner`` must pickle (a module-level class or
function with plain arguments).
"""

from __future__ import annotations

import multiprocessing as mp
import os
import queue
import time
from collections.abc import Callable, Sequence
from typing import Any, Protocol

Result = dict[str, Any]


class Runner(Protocol):
    def episode(self, i: int) -> Result: ...

    def close(self) -> None: ...


BACKENDS = ("local", "ray")


def run_episodes(
    make_runner: Callable[[], Runner],
    indices: Sequence[int],
    workers: int,
    record: Callable[[Result], None],
    failed: Callable[[int, str, float], Result],
    *,
    backend: str = "local",
    address: str | None = None,
) -> None:
    """Run episode ``indices`` on ``workers`` processes (0: here, in this process, without
    crash isolation) and hand each result to ``record`` as it arrives. ``failed(i, why,
    wall_s)`` makes the result of an episode that could not run. ``backend="ray"``: the
    workers are Ray actors, on this machine or the cluster at ``address`` (``sim.ray_pool``)."""
    if backend == "ray":
        from .ray_pool import run_on_ray

        run_on_ray(make_runner, indices, max(1, workers), record, failed, address=address)
        return
    if backend != "local":
        raise ValueError(f"backend={backend!r}: use one of {', '.join(BACKENDS)}")
    if workers == 0:
        runner = make_runner()
        try:
            for i in indices:
                record(runner.episode(i))
        finally:
            runner.close()
        return
    _Pool(make_runner, indices, min(workers, len(indices)), record, failed).run()


class _Pool:
    def __init__(self, make_runner, indices, workers, record, failed):
        self.ctx = mp.get_context("spawn")  # no inherited GL, MuJoCo or torch state
        self.make_runner, self.record, self.failed = make_runner, record, failed
        self.indices, self.workers = list(indices), workers
        self.tasks, self.results = self.ctx.Queue(), self.ctx.Queue()
        self.procs: dict[int, Any] = {}
        self.running: dict[int, tuple[int, float]] = {}  # worker -> (episode, start time)
        self.fatal: dict[int, str] = {}
        self.done: set[int] = set()
        self.seen_dead: set[int] = set()
        self.next_id = 0

    def run(self) -> None:
        for i in self.indices:
            self.tasks.put(i)
        for _ in range(self.workers):
            self.tasks.put(None)
        for _ in range(self.workers):
            self._start()
        last_reap = time.monotonic()
        try:
            while len(self.done) < len(self.indices):
                try:
                    msg = self.results.get(timeout=1.0)
                except queue.Empty:
                    msg = None
                if msg is None or time.monotonic() - last_reap > 5.0:
                    self._reap(quiet=msg is None)
                    last_reap = time.monotonic()
                if msg is not None:
                    self._handle(msg)
        finally:
            for p in self.procs.values():
                p.join(timeout=10)
                if p.is_alive():
                    p.kill()

    def _start(self) -> None:
        args = (self.make_runner, self.next_id, self.tasks, self.results)
        p = self.ctx.Process(target=_worker, args=args, daemon=True)
        p.start()
        self.procs[self.next_id] = p
        self.next_id += 1

    def _handle(self, msg) -> None:
        kind, w = msg[0], msg[1]
        if kind == "start":
            self.running[w] = (msg[2], time.perf_counter())
        elif kind == "done":
            self.running.pop(w, None)
            self._finish(msg[2]["index"], msg[2])
        elif kind == "fatal":
            self.fatal[w] = msg[2]

    def _finish(self, i: int, result: Result) -> None:
        if i not in self.done:
            self.done.add(i)
            self.record(result)

    def _reap(self, *, quiet: bool) -> None:
        """Account for dead workers. A dead worker's last messages have all been read when the
        queue was ``quiet`` (no message for a second), or, while messages keep coming, by the
        next call after its death was first seen (5 s later)."""
        dead = [w for w, p in self.procs.items() if not p.is_alive() and p.exitcode is not None]
        if not quiet:
            fresh = [w for w in dead if w not in self.seen_dead]
            dead = [w for w in dead if w in self.seen_dead]
            self.seen_dead.update(fresh)
        for w in dead:
            p = self.procs.pop(w)
            if w in self.running:  # died inside an episode: it fails, a new worker goes on
                i, t0 = self.running.pop(w)
                why = f"worker process {p.pid} exited with code {p.exitcode} during this episode"
                self._finish(i, self.failed(i, why, time.perf_counter() - t0))
                self._start()
        if self.procs or len(self.done) >= len(self.indices):
            return
        # every worker is gone and episodes are left: workers that could not start say why
        why = next(iter(self.fatal.values()), "every worker process exited")
        for i in self.indices:
            if i not in self.done:
                self._finish(i, self.failed(i, why, 0.0))


def _worker(make_runner, w: int, tasks, results) -> None:
    """Takes episode indices from ``tasks`` until a None; reports start, done or fatal."""
    parent = os.getppid()
    try:
        runner = make_runner()
    except Exception as e:  # nothing can run here: say why once, leave the episodes to others
        results.put(("fatal", w, f"worker could not start: {type(e).__name__}: {e}"))
        return
    try:
        while os.getppid() == parent and (i := tasks.get()) is not None:
            results.put(("start", w, i))
            results.put(("done", w, runner.episode(i)))
    finally:
        runner.close()
