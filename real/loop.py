"""The deploy control loop: a fixed-rate clock, inference in its own thread, timestamped chunks.

Tick k is due at ``t0 + k * period``. Each tick the loop reads the newest observation, hands it
to the inference thread, picks the action planned for this tick, passes it through the shield
and sends it (``dry_run``: computes and records it, sends nothing). After a stall of more than a
period the missed ticks are skipped (counted), never made up with a burst of commands.

The inference thread feeds every observation to the policy (its history stays one entry per
tick) and to the subgoal relay of a goal-conditioned policy (``decomposer.task``), and plans a chunk
``(horizon, A)`` when the planned actions are about to run out (or every tick with temporal
ensembling). Action i of a chunk planned from tick k's observation belongs to tick ``k + i``.
A chunk that arrives late has its past-due actions dropped (counted); when no chunk covers a
tick the shield holds the arm (command watchdog). With ``temporal_ensemble=m`` every chunk's
prediction for a tick is blended with weights ``exp(-m * i)``, oldest first (ACT). With
``rtc`` each chunk is sampled held to the running chunk's actions (``policies.rtc``): hard on
those that run before it arrives (the slowest recent inference, in ticks), soft on the rest.

The loop ends at ``max_steps``, on success (a robot whose observation info says so), at the goal
relay's last subgoal, on the e-stop, or when the robot has sent nothing new for ``lost_after``
seconds (status ``robot_lost``, exit status 3). ``LoopReport`` holds the cadence figures: achieved
Hz and p50/p95 of observe, infer and send, and the age of the observation each action came from.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from policies.chunks import committed_ticks, plan_due, scheduled_action

from .robot import EStopped
from .shield import Shield

log = logging.getLogger("uvdiff.deploy")

EXIT = {
    "max_steps": 0,
    "success": 0,
    "goal_reached": 0,
    "estop": 2,
    "robot_lost": 3,
    "inference_error": 4,
    "robot_error": 5,
}


@dataclass
class LoopReport:
    status: str
    steps: int
    duration_s: float
    rate_hz: float  # the rate asked for
    achieved_hz: float
    overruns: int  # stalls of more than a period (the missed ticks are skipped)
    skipped: int  # ticks skipped after stalls
    chunks: int
    dropped: int  # planned actions past due when their chunk arrived
    held: int  # ticks with no planned action
    sent: int  # commands sent (0 in a dry run)
    dry_run: bool
    success: bool
    timings_ms: dict[str, dict[str, float]]  # observe/infer/send/obs_age -> p50, p95, max
    shield: dict[str, Any]
    actions: np.ndarray = field(repr=False, default_factory=lambda: np.zeros((0, 0)))
    error: str = ""
    subgoal: int | None = None  # goal-conditioned: the relay's subgoal at the end
    subgoal_switches: list[int] = field(default_factory=list)  # ticks where the relay moved on
    link: dict[str, Any] = field(default_factory=dict)  # the robot link's counters and errors

    @property
    def exit_code(self) -> int:
        return EXIT.get(self.status, 1)

    def to_json(self) -> dict[str, Any]:
        d = {k: v for k, v in self.__dict__.items() if k != "actions"}
        d["exit_code"] = self.exit_code
        return d

    def summary(self) -> str:
        t = self.timings_ms

        def f(k):
            v = t.get(k)
            return "n/a" if not v else f"{v['p50']:.1f}/{v['p95']:.1f}"

        lines = [
            f"deploy: {self.status} after {self.steps} steps in {self.duration_s:.1f} s"
            f"{' (dry run)' if self.dry_run else ''}; success={self.success}",
            f"  rate {self.achieved_hz:.1f} Hz of {self.rate_hz:g} Hz, {self.overruns} stalls "
            f"({self.skipped} ticks skipped)",
            f"  p50/p95 ms: observe {f('observe')}, infer {f('infer')}, send {f('send')}, "
            f"observation age {f('obs_age')}",
            f"  chunks {self.chunks}, dropped past-due {self.dropped}, held {self.held}, "
            f"sent {self.sent}",
            f"  shield: {self.shield['interventions'] or 'no interventions'}"
            + (f"; E-STOP ({self.shield['estop_reason']})" if self.shield["estop"] else ""),
        ]
        if self.subgoal is not None:
            lines.append(
                f"  subgoal {self.subgoal} at the end; relay moved on at ticks "
                f"{self.subgoal_switches or 'none'}"
            )
        counted = {k: v for k, v in self.link.items() if k != "errors" and v}
        if counted:
            lines.append(f"  robot link: {counted}")
        if self.error:
            lines.append(f"  error: {self.error}")
        return "\n".join(lines)


class _Chunk:
    __slots__ = ("n", "tick", "actions", "obs_stamp")

    def __init__(self, n: int, tick: int, actions: np.ndarray, obs_stamp: float):
        self.n, self.tick, self.actions, self.obs_stamp = n, tick, actions, obs_stamp


class _Inference(threading.Thread):
    """Owns the policy: observes every tick's observation, plans when asked."""

    def __init__(self, policy, goal, ensemble: bool, period: float):
        super().__init__(name="uvdiff-inference", daemon=True)
        self.policy, self.goal, self.ensemble, self.period = policy, goal, ensemble, period
        self.rtc = bool(policy.settings.get("rtc"))
        self.cond = threading.Condition()
        self.pending: list[tuple[int, Any]] = []
        self.want_plan = True
        self.stopped = False
        self.chunks: deque[_Chunk] = deque(maxlen=64)
        self.infer_s: list[float] = []
        self.error: BaseException | None = None
        self.goal_done = False
        self.switches: list[int] = []
        self.current_goal = None

    def submit(self, tick: int, obs, want_plan: bool) -> None:
        with self.cond:
            self.pending.append((tick, obs))
            self.want_plan = self.want_plan or want_plan
            self.cond.notify()

    def stop(self) -> None:
        with self.cond:
            self.stopped = True
            self.cond.notify()

    def run(self) -> None:
        try:
            while True:
                with self.cond:
                    while not self.pending and not self.stopped:
                        self.cond.wait()
                    if self.stopped:
                        return
                    batch, self.pending = self.pending, []
                    plan = self.want_plan or self.ensemble
                    self.want_plan = False
                for tick, obs in batch:
                    self.policy.observe(obs.policy_input())
                    if self.goal is not None:  # the relay counts ticks, as the demo did
                        before = self.goal.active
                        self.current_goal = self.goal(_policy_input(obs))
                        if self.goal.active != before:
                            self.switches.append(tick)
                        self.goal_done = bool(self.goal.done)
                if not plan:
                    continue
                tick, obs = batch[-1]
                goal = self.current_goal
                t = time.perf_counter()
                if self.rtc:
                    plan = self.policy.predict_chunk(None, goal, prefix=self._committed(tick))
                else:
                    plan = self.policy.predict_chunk(None, goal)
                actions = np.asarray(plan, dtype=np.float64)
                self.infer_s.append(time.perf_counter() - t)
                self.chunks.append(_Chunk(len(self.infer_s), tick, actions, float(obs.stamp)))
        except BaseException as e:  # handed to the control thread, which stops the loop
            self.error = e

    def _committed(self, tick: int) -> tuple[np.ndarray, int] | None:
        """RTC's prefix for a plan from tick's observation: the running chunk's actions from
        that tick on, and how many of them run before the plan can (from the slowest of the
        last few inference times; at least the policy's ``delay``)."""
        if not self.chunks:
            return None
        old = self.chunks[-1]
        rest = old.actions[tick - old.tick :]
        if not len(rest):
            return None
        latency = max(self.infer_s[-5:], default=0.0)
        floor = int(self.policy.settings.get("delay") or 0)
        return rest, min(len(rest), committed_ticks(latency, self.period, floor))


def _policy_input(obs) -> dict:
    return {**obs.state, **obs.frames}


class _ObsView:
    """An observation plus ``policy_input`` (robots may return their own observation type)."""

    __slots__ = ("obs",)

    def __init__(self, obs):
        self.obs = obs

    def __getattr__(self, name):
        return getattr(self.obs, name)

    def policy_input(self) -> dict:
        return _policy_input(self.obs)


@dataclass
class LoopConfig:
    rate_hz: float = 20.0
    max_steps: int = 400
    dry_run: bool = False
    stop_on_success: bool = True
    success_hold: int = 5  # success must hold this many ticks in a row
    lost_after: float = 1.0  # seconds without new state before giving up (after holding)


def run_loop(
    robot,
    policy,
    shield: Shield,
    cfg: LoopConfig,
    *,
    goal: Callable[[Mapping[str, np.ndarray]], Mapping[str, np.ndarray]] | None = None,
    on_step: Callable[[int, Any, np.ndarray | None], None] | None = None,
    clock: Callable[[], float] = time.perf_counter,
    sleep: Callable[[float], None] = time.sleep,
) -> LoopReport:
    """Drive ``robot`` with ``policy`` until a stop condition; the robot must be connected.

    ``policy``: ``reset()``, ``observe(obs_dict)``, ``predict_chunk(None, goal) -> (H, A)``
    and ``settings`` (``policies.Policy``): its ``n_action_steps`` and ``temporal_ensemble``
    decide the chunk schedule here as in simulation (one way in: ``Policy.configure`` or the
    checkpoint). ``goal``: called with each planning observation, returns the goal
    (``decomposer.task``). ``on_step(tick, obs, sent_action_or_None)`` after every tick.
    """
    shield.reset()
    policy.reset()
    if goal is not None and hasattr(goal, "reset"):
        goal.reset()
    return _Loop(robot, policy, shield, cfg, goal, on_step, clock, sleep).run()


class _Loop:
    """One deploy run: the control thread's state, counters and preallocated timings."""

    def __init__(self, robot, policy, shield, cfg, goal, on_step, clock, sleep):
        self.robot, self.shield, self.cfg, self.goal = robot, shield, cfg, goal
        self.on_step, self.clock, self.sleep = on_step, clock, sleep
        self.period, self.n = 1.0 / cfg.rate_hz, int(cfg.max_steps)
        self.n_exec = int(policy.settings["n_action_steps"])
        self.m = policy.settings.get("temporal_ensemble")
        self.worker = _Inference(policy, goal, self.m is not None, self.period)
        # preallocated: the hot path only writes into these
        n = self.n
        self.t_obs, self.t_send, self.age = (
            np.full(n, np.nan),
            np.full(n, np.nan),
            np.full(n, np.nan),
        )
        self.actions: np.ndarray | None = None
        self.status, self.err, self.success_run, self.success = "max_steps", "", 0, False
        self.held = self.dropped = self.sent = self.overruns = self.skipped = 0
        self.chunks_seen = 0
        self.last_seq, self.last_fresh = None, clock()
        self.k = self.ticks = 0  # k: the time slot (t0 + k * period); ticks: slots actually run

    def run(self) -> LoopReport:
        self.worker.start()
        self.t0 = self.clock()
        try:
            while self.k < self.n and self._wait_for_slot() and self._tick():
                pass
        except Exception as e:  # the robot failed: report what happened so far
            self.status, self.err = "robot_error", repr(e)
            log.error("deploy: robot error at step %d: %r", self.k, e)
        finally:
            self.worker.stop()
            self.worker.join(timeout=5.0)
        return self._report(self.clock() - self.t0)

    def _wait_for_slot(self) -> bool:
        """Sleep until slot k is due; after a stall of more than a period, skip the missed
        slots rather than send a burst of catch-up commands (their actions count as
        dropped). False when no slot is left."""
        due = self.t0 + self.k * self.period
        now = self.clock()
        if now < due:
            self.sleep(due - now)
        elif now - due > self.period:
            self.overruns += 1
            skip = int((now - due) // self.period)
            self.k += skip
            self.skipped += skip
        return self.k < self.n

    def _tick(self) -> bool:
        """One control tick: observe, plan when due, act through the shield. False: stop."""
        k, clock, worker = self.k, self.clock, self.worker
        a = clock()
        obs = self.robot.observe()
        self.t_obs[k] = clock() - a
        if worker.error is not None:
            self.status, self.err = "inference_error", repr(worker.error)
            return False
        if obs.seq != self.last_seq:
            self.last_seq, self.last_fresh = obs.seq, clock()
        elif clock() - self.last_fresh > self.cfg.lost_after:
            self.status = "robot_lost"
            self.err = f"no new state for {clock() - self.last_fresh:.2f} s"
        # the action planned for tick k; ask for a plan once the newest chunk runs short
        chunks = list(worker.chunks)  # a snapshot: the worker appends concurrently
        newest = chunks[-1] if chunks else None
        worker.submit(k, _ObsView(obs), plan_due(newest, k, self.n_exec, False))
        if newest is not None and newest.n > self.chunks_seen:
            self._count_dropped(chunks, k)
            self.chunks_seen = newest.n
        # index 0 of a chunk is its observation's own tick, passed by the time it arrives
        action, src = scheduled_action(chunks, k, self.m, first=1)
        if action is None:
            self.held += 1
        out = self._act(action, src, obs, k)
        if self.on_step is not None:
            self.on_step(k, obs, out)
        self.k += 1
        self.ticks += 1
        return not self._stopped(obs)

    def _count_dropped(self, chunks, k: int) -> None:
        """Actions of new chunks whose tick passed before they arrived (index 0, the
        observation's own tick, is never executable and not counted)."""
        for c in chunks:
            if c.n > self.chunks_seen:
                self.dropped += max(0, min(k, c.tick + len(c.actions)) - c.tick - 1)

    def _act(self, action, src, obs, k: int) -> np.ndarray | None:
        """The shield's command for tick k, sent unless a dry run; what went out, or None."""
        out = self.shield(action, obs)
        if out is not None and src is not None:
            self.age[k] = time.time() - src.obs_stamp
        if out is not None and not self.cfg.dry_run:
            a = self.clock()
            try:
                self.robot.command(out)
            except EStopped as e:  # the robot latched first: nothing was published
                self.shield.estop(f"robot: {e}")
                out = None
            if out is not None:
                self.t_send[k] = self.clock() - a
                self.sent += 1
        if self.actions is None:
            self.actions = np.full((self.n, self.shield.action.dim), np.nan)
        if out is not None:
            self.actions[k] = out
        return out

    def _stopped(self, obs) -> bool:
        """Whether the run ends after this tick (sets the status)."""
        if self.shield.latched:
            self.status = "estop"
            return True
        if self.status == "robot_lost":
            return True
        info = getattr(obs, "info", None) or {}
        self.success_run = self.success_run + 1 if info.get("success") else 0
        if self.success_run >= self.cfg.success_hold:
            self.success = True
            if self.cfg.stop_on_success:
                self.status = "success"
                return True
        if self.worker.goal_done and self.goal is not None:
            self.status = "goal_reached"
            return True
        return False

    def _report(self, duration: float) -> LoopReport:
        k, infer = self.k, np.asarray(self.worker.infer_s)
        return LoopReport(
            status=self.status,
            steps=self.ticks,
            duration_s=duration,
            rate_hz=self.cfg.rate_hz,
            achieved_hz=self.ticks / duration if duration > 0 else 0.0,
            overruns=self.overruns,
            skipped=self.skipped,
            chunks=len(infer),
            dropped=self.dropped,
            held=self.held,
            sent=self.sent,
            dry_run=self.cfg.dry_run,
            success=self.success,
            timings_ms={
                "observe": _pct(self.t_obs[:k]),
                "infer": _pct(infer),
                "send": _pct(self.t_send[:k]),
                "obs_age": _pct(self.age[:k]),
            },
            shield=self.shield.report(),
            actions=np.zeros((0, 0)) if self.actions is None else self.actions[: min(k, self.n)],
            error=self.err,
            subgoal=None if self.goal is None else int(getattr(self.goal, "active", 0)),
            subgoal_switches=list(self.worker.switches),
        )


def _pct(x: np.ndarray) -> dict[str, float]:
    x = x[np.isfinite(x)] * 1e3
    if not len(x):
        return {}
    p50, p95 = np.percentile(x, [50, 95])
    return {"p50": float(p50), "p95": float(p95), "max": float(x.max()), "n": int(len(x))}
