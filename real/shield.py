"""The safety shield between the policy and the arm; on by default.

Every control step the loop hands the shield the action it means to send (or ``None`` when no
planned action is due) and the observation it was computed from; the shield returns the action
to send, or ``None`` to send nothing. In order:

1. e-stop: latched by ``estop()`` (any thread) or by an observation whose ``estop`` is set;
   once latched nothing is ever sent again until ``release()``.
2. stale observation: no new state for ``stale_periods`` control periods, or a state stamped
   more than that long ago -> hold. A dark or frozen camera stream -> hold
   (``real.camera_watch``).
3. command watchdog: no action due this step (the chunk ran out) -> hold, never extrapolate.
4. NaN/Inf or a wrong shape -> hold.
5. clip to the action bounds; clip joint targets to the joint limits; cap the motion per step
   (``max_delta``); clamp the end effector to the workspace box.

"Hold" keeps the arm where it is: the last position target sent (or the measured one), or a zero
delta with the gripper dims at their last value. Each intervention adds one to ``counts[kind]``
and is logged (``log_every``); ``events`` keeps the most recent ones for the report.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import Counter, deque
from collections.abc import Callable, Mapping

import numpy as np

from .camera_watch import DARK as CAMERA_DARK
from .camera_watch import FROZEN as CAMERA_FROZEN
from .camera_watch import CameraWatch
from .config import ActionSpec, ShieldSpec

log = logging.getLogger("uvdiff.shield")

# intervention kinds
ESTOP = "estop"
SUPPRESSED = "suppressed"  # steps not sent because the e-stop is latched
STALE = "stale_observation"
NO_ACTION = "no_action"
NONFINITE = "nonfinite"
BAD_SHAPE = "bad_shape"
ACTION_LIMIT = "action_limit"
JOINT_LIMIT = "joint_limit"
MAX_DELTA = "max_delta"
WORKSPACE = "workspace"
HOLDS = (STALE, CAMERA_DARK, CAMERA_FROZEN, NO_ACTION, NONFINITE, BAD_SHAPE)


class Shield:
    """Filters actions; see the module docstring. ``clock``: wall-clock seconds."""

    def __init__(
        self,
        spec: ShieldSpec,
        action: ActionSpec,
        period: float,
        *,
        clock: Callable[[], float] = time.time,
        max_events: int = 1000,
    ):
        self.spec, self.action, self.period, self.clock = spec, action, float(period), clock
        self.counts: Counter[str] = Counter()
        self.events: deque[tuple[int, str, str]] = deque(maxlen=max_events)
        self._estop = threading.Event()
        self.estop_reason = ""
        self._lo = action.low
        self._hi = action.high
        self._cameras = CameraWatch(spec.camera_dark_level, spec.camera_frozen_periods, period)
        self.reset()

    # ------------------------------------------------------------------ state
    def reset(self) -> None:
        """A new episode: forget the last command and freshness (the e-stop stays latched)."""
        self.step = 0
        self.last_sent: np.ndarray | None = None
        self._last_seq: int | None = None
        self._fresh_at: float | None = None
        self._cameras.reset()

    def estop(self, reason: str = "requested") -> None:
        """Latch the e-stop (thread-safe); nothing is sent until ``release()``."""
        if not self._estop.is_set():
            self.estop_reason = reason
            self._estop.set()
            self._note(ESTOP, reason, force=True)

    def release(self) -> None:
        """Un-latch the e-stop: an explicit operator decision, never automatic."""
        self._estop.clear()
        self.estop_reason = ""

    @property
    def latched(self) -> bool:
        return self._estop.is_set()

    @property
    def interventions(self) -> int:
        return sum(self.counts.values())

    # ------------------------------------------------------------------ the filter
    def __call__(self, action: np.ndarray | None, obs) -> np.ndarray | None:
        """The action to send for this step, or None (send nothing: e-stop latched)."""
        self.step += 1
        if getattr(obs, "estop", False):
            self.estop("robot reported e-stop")
        if self._estop.is_set():
            self.counts[SUPPRESSED] += 1  # a step with nothing sent
            return None
        now = self.clock()
        if obs.seq != self._last_seq:
            self._last_seq, self._fresh_at = obs.seq, now
        if not self.spec.enabled:
            out = None if action is None else np.asarray(action, dtype=np.float64)
            if out is None or out.shape != (self.action.dim,) or not np.isfinite(out).all():
                return self._hold(obs, None, "")  # never send garbage, even unshielded
            self.last_sent = out
            return out
        limit = self.spec.stale_periods * self.period
        age = now - float(obs.stamp)
        silent = now - self._fresh_at
        if age > limit or silent > limit:
            return self._hold(obs, STALE, f"age {age * 1e3:.0f} ms, new {silent * 1e3:.0f} ms ago")
        blind = self._cameras.check(getattr(obs, "frames", None) or {}, obs.state, now)
        if blind is not None:
            return self._hold(obs, *blind)
        if action is None:
            return self._hold(obs, NO_ACTION, "no planned action due")
        a = np.array(action, dtype=np.float64)
        if a.shape != (self.action.dim,):
            return self._hold(obs, BAD_SHAPE, f"shape {a.shape}, expected ({self.action.dim},)")
        if not np.isfinite(a).all():
            return self._hold(obs, NONFINITE, f"{np.flatnonzero(~np.isfinite(a)).tolist()}")
        a = self._limits(a, obs.state)
        self.last_sent = a
        return a

    # ------------------------------------------------------------------ internals
    def _limits(self, a: np.ndarray, state: Mapping[str, np.ndarray]) -> np.ndarray:
        s, kind = self.spec, self.action.kind
        if self._lo is not None or self._hi is not None:
            a = self._clip(a, self._lo, self._hi, ACTION_LIMIT)
        if kind == "joint_pos":
            q = self._state(state, s.joint_key)
            n = len(s.joint_low) if s.joint_low is not None else (len(q) if q is not None else 0)
            if s.joint_low is not None:
                a[:n] = self._clip(a[:n], s.joint_low, s.joint_high, JOINT_LIMIT)
            if s.max_delta is not None and q is not None:
                n = min(n or len(q), len(q))
                d = s.max_delta[:n]
                a[:n] = self._clip(a[:n], q[:n] - d, q[:n] + d, MAX_DELTA)
        elif kind == "delta_joint":
            if s.max_delta is not None:
                a = self._clip(a, -s.max_delta, s.max_delta, MAX_DELTA)
            q = self._state(state, s.joint_key)
            if s.joint_low is not None and q is not None:
                n = len(s.joint_low)
                a[:n] = self._clip(a[:n], s.joint_low - q[:n], s.joint_high - q[:n], JOINT_LIMIT)
        elif kind == "ee_pose":
            eef = self._state(state, s.eef_key)
            if s.max_delta is not None and eef is not None:
                d = s.max_delta[:3]
                a[:3] = self._clip(a[:3], eef - d, eef + d, MAX_DELTA)
            if s.workspace_low is not None:
                a[:3] = self._clip(a[:3], s.workspace_low, s.workspace_high, WORKSPACE)
        elif kind == "delta_ee":
            if s.max_delta is not None:
                a = self._clip(a, -s.max_delta, s.max_delta, MAX_DELTA)
            eef = self._state(state, s.eef_key)
            if s.workspace_low is not None and eef is not None:
                k = self.action.pos_scale
                target = eef + a[:3] * k
                inside = np.clip(target, s.workspace_low, s.workspace_high)
                if (inside != target).any():
                    # a point outside the box moves back in, never further out
                    a[:3] = (inside - eef) / k
                    self._note(WORKSPACE, f"eef target {target.round(3).tolist()}")
        return a

    def _clip(self, a, lo, hi, kind: str) -> np.ndarray:
        out = a if lo is None and hi is None else np.clip(a, lo, hi)
        if out is not a and (out != a).any():
            bad = np.flatnonzero(out != a)
            self._note(kind, f"dims {bad.tolist()}: {a[bad].round(4).tolist()}")
        return out

    def _state(self, state: Mapping[str, np.ndarray], key: str) -> np.ndarray | None:
        v = state.get(key)
        if v is None:
            return None
        v = np.asarray(v, dtype=np.float64)
        return v if np.isfinite(v).all() else None

    def _hold(self, obs, kind: str | None, detail: str) -> np.ndarray | None:
        if kind is not None:
            self._note(kind, detail)
        out = self.hold_action(obs)
        if out is not None:
            self.last_sent = out
        return out

    def hold_action(self, obs) -> np.ndarray | None:
        """The command that keeps the arm where it is, or None when none is known."""
        kind, last = self.action.kind, self.last_sent
        if kind in ("delta_ee", "delta_joint"):
            a = np.zeros(self.action.dim)
            if last is not None:
                g = list(self.action.gripper)
                a[g] = last[g]
            return a
        if last is not None:
            return last.copy()
        key = self.spec.joint_key if kind == "joint_pos" else self.spec.eef_key
        measured = self._state(obs.state, key)
        if measured is None or kind == "ee_pose":
            return None  # no safe target known: send nothing
        if len(measured) != self.action.dim:
            return None
        return measured

    def _note(self, kind: str, detail: str, force: bool = False) -> None:
        self.counts[kind] += 1
        self.events.append((self.step, kind, detail))
        n = self.counts[kind]
        if force or n == 1 or n % self.spec.log_every == 0:
            log.warning("shield step %d: %s (%s) [#%d]", self.step, kind, detail, n)

    def report(self) -> dict:
        return {
            "enabled": self.spec.enabled,
            "estop": self.latched,
            "estop_reason": self.estop_reason,
            "interventions": dict(self.counts),
        }
