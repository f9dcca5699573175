"""Recording teleoperated episodes from a robot into a demo folder.

``record(robot, out, ...)`` samples the robot at a fixed rate: each row is the observation
(state vectors, camera frames) and the action the operator's device last commanded (the robot's
``info["action"]``, e.g. the command topic a RosbridgeRobot listens to). An episode ends after
``max_steps`` rows, or when ``info["recording"]`` (an episode topic) turns false; it starts when
that topic turns true (or at once without one). Each finished episode is written atomically
(``DemoFolder.add_episode``).

When the robot goes silent (no new state for ``lost_after`` s) the rows recorded up to the last
fresh observation are written as an episode marked ``success=False`` and recording stops with
status ``robot_lost``: nothing recorded is lost, and nothing is made up.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from .robot import RobotError

log = logging.getLogger("uvdiff.record")

DEMO_KINDS = {
    "delta_ee": "delta_ee",
    "ee_pose": "absolute_ee",
    "joint_pos": "joint_position",
    "delta_joint": "other",
}


@dataclass
class RecordResult:
    status: str  # done | robot_lost | interrupted
    episodes: list[str] = field(default_factory=list)  # ids written
    steps: list[int] = field(default_factory=list)
    achieved_hz: float = 0.0

    @property
    def exit_code(self) -> int:
        return {"done": 0, "interrupted": 0, "robot_lost": 3}.get(self.status, 1)

    def summary(self) -> str:
        return (
            f"record: {self.status}; {len(self.episodes)} episodes written "
            f"({', '.join(map(str, self.steps)) or 'none'} steps) at {self.achieved_hz:.1f} Hz"
        )


class _Episode:
    def __init__(self):
        self.t, self.action, self.state, self.frames, self.success = [], [], {}, {}, False

    def add(self, t: float, obs, action: np.ndarray) -> None:
        self.t.append(t)
        self.action.append(action)
        for k, v in obs.state.items():
            self.state.setdefault(k, []).append(np.asarray(v, np.float32))
        for k, v in obs.frames.items():
            self.frames.setdefault(k, []).append(v)
        self.success = self.success or bool((getattr(obs, "info", None) or {}).get("success"))

    def __len__(self) -> int:
        return len(self.t)

    def truncate(self, n: int) -> None:
        del self.t[n:], self.action[n:]
        for rows in (*self.state.values(), *self.frames.values()):
            del rows[n:]


def record(
    robot,
    out: str | os.PathLike,
    *,
    rate_hz: float,
    action_dim: int,
    action_kind: str = "other",
    robot_name: str = "robot",
    episodes: int = 1,
    max_steps: int = 400,
    task: str | None = None,
    lost_after: float = 1.0,
    wait_for_action: float = 10.0,
    should_stop: Callable[[], bool] | None = None,
) -> RecordResult:
    """Record ``episodes`` episodes from ``robot`` (connected here, closed at the end)."""
    from demos import DatasetInfo, DemoFolder, Episode

    period = 1.0 / rate_hz
    robot.connect()
    folder = None
    result = RecordResult("done")
    t_start, ticks = time.perf_counter(), 0
    try:
        obs = robot.observe()
        info = DatasetInfo(
            fps=float(rate_hz),
            action_dim=int(action_dim),
            state={k: int(np.asarray(v).size) for k, v in obs.state.items()},
            cameras={k: tuple(v.shape[:2]) for k, v in obs.frames.items()},
            robot=robot_name,
            action_kind=DEMO_KINDS.get(action_kind, action_kind),
            tasks=[task] if task else [],
        )
        folder = DemoFolder.create(out, info)

        def write(ep: _Episode, complete: bool) -> None:
            if not len(ep):
                return
            t = np.asarray(ep.t)
            eid = folder.add_episode(
                Episode(
                    action=np.stack(ep.action).astype(np.float32),
                    state={k: np.stack(v) for k, v in ep.state.items()},
                    frames={k: np.stack(v) for k, v in ep.frames.items()},
                    timestamp=t - t[0],
                    success=ep.success if complete else False,
                    task=task,
                )
            )
            result.episodes.append(eid)
            result.steps.append(len(ep))
            log.info("record: episode %s, %d steps%s", eid, len(ep), "" if complete else " (cut)")

        last_seq, fresh_at = None, time.monotonic()
        deadline = time.monotonic() + wait_for_action
        while len(result.episodes) < episodes:
            ep = _Episode()
            fresh_rows = 0  # rows up to and including the last one with new state
            started = False
            while len(ep) < max_steps:
                due = t_start + ticks * period
                delay = due - time.perf_counter()
                if delay > 0:
                    time.sleep(delay)
                ticks += 1
                if should_stop is not None and should_stop():
                    write(ep, complete=False)
                    result.status = "interrupted"
                    return result
                obs = robot.observe()
                now = time.monotonic()
                fresh = obs.seq != last_seq
                if fresh:
                    last_seq, fresh_at = obs.seq, now
                elif now - fresh_at > lost_after:
                    ep.truncate(fresh_rows)  # stale rows after the robot went silent: dropped
                    write(ep, complete=False)
                    result.status = "robot_lost"
                    return result
                inf = getattr(obs, "info", None) or {}
                a, recording = inf.get("action"), inf.get("recording")
                if a is None or recording is False:
                    if started:
                        break  # the episode topic turned false: this episode is done
                    if a is None and now > deadline:
                        raise RobotError(f"no action received in {wait_for_action:g} s")
                    continue  # the operator has not started yet
                started = True
                a = np.asarray(a, dtype=np.float32)
                if a.shape != (action_dim,):
                    raise RobotError(f"action has shape {a.shape}, expected ({action_dim},)")
                ep.add(time.time(), obs, a)
                if fresh:
                    fresh_rows = len(ep)
            write(ep, complete=True)
        return result
    finally:
        dt = time.perf_counter() - t_start
        result.achieved_hz = ticks / dt if dt > 0 else 0.0
        robot.close()
