"""A scripted expert as a list of waypoint segments followed with a P-controller.

Targets are functions evaluated every step on privileged simulator state, so the expert
follows objects that move (a nudged cube, a nut swinging in the gripper). Each episode draws a
``Style`` (speed, gains, noise) from the expert's generator, so demos differ in timing and path.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from .control import PController, gripper_yaw, wrap

OPEN, CLOSE = -1.0, 1.0
MAX_RETRIES = 2


@dataclass
class Segment:
    """Move the grip site to ``target()`` at ``yaw()`` with the gripper at ``grip``.

    The segment ends when the site is within ``tol`` metres (and ``yaw_tol`` radians) after at
    least ``min_steps`` steps, or after ``max_steps`` steps whatever the error, or, with
    ``stall_steps``, once the site has not moved (1.5 mm, 0.01 rad) for that many steps: a
    segment that lowers an object onto something ends on contact.
    ``on_enter`` runs once when the segment starts (to remember a pose, say). If ``check``
    fails when the segment ends (the object is not in the gripper after a lift, say), the
    runner goes back to segment ``retry_from``, at most ``MAX_RETRIES`` times an episode.
    """

    name: str
    target: Callable[[], np.ndarray]
    yaw: Callable[[], float]
    grip: float
    tol: float = 0.01
    yaw_tol: float = 0.08
    min_steps: int = 0
    max_steps: int = 200
    stall_steps: int | None = None
    tilt: np.ndarray | None = None  # world rotation vector off straight down (see PController)
    on_enter: Callable[[], None] | None = None
    check: Callable[[], bool] | None = None  # must hold when the segment ends, else retry
    retry_from: str = ""  # ... from the last earlier segment of this name


@dataclass(frozen=True)
class Style:
    """How one episode's demonstrator moves: drawn once per episode."""

    gain: float
    rot_gain: float
    max_speed: float
    noise: float

    @classmethod
    def sample(cls, rng: np.random.Generator) -> Style:
        return cls(
            gain=rng.uniform(7.0, 13.0),
            rot_gain=rng.uniform(1.5, 3.0),
            max_speed=rng.uniform(0.6, 1.0),
            noise=rng.uniform(0.02, 0.08),
        )


class SegmentRunner:
    """Runs segments in order; after the last it holds the last target."""

    def __init__(
        self,
        segments: list[Segment],
        eef: Callable[[], tuple[np.ndarray, np.ndarray]],
        style: Style,
        rng: np.random.Generator,
    ):
        self.segments = segments
        self._eef = eef
        self._rng = rng
        self._ctl = PController(style.gain, style.rot_gain, style.max_speed, style.noise)
        self._i = -1
        self._steps = 0
        self._trail: list[tuple[np.ndarray, float]] = []
        self.retries = 0
        self._advance()

    @property
    def phase(self) -> str:
        return self.segments[min(self._i, len(self.segments) - 1)].name

    @property
    def done(self) -> bool:
        return self._i >= len(self.segments)

    def _advance(self) -> None:
        if self._failed_check():
            self.retries += 1
            names = [s.name for s in self.segments[: self._i]]
            self._i = len(names) - 1 - names[::-1].index(self.segments[self._i].retry_from) - 1
        self._i += 1
        self._steps = 0
        self._trail.clear()
        if self._i < len(self.segments) and self.segments[self._i].on_enter is not None:
            self.segments[self._i].on_enter()

    def _failed_check(self) -> bool:
        if not 0 <= self._i < len(self.segments) or self.retries >= MAX_RETRIES:
            return False
        check = self.segments[self._i].check
        return check is not None and not check()

    def _stalled(self, seg: Segment, pos: np.ndarray, mat: np.ndarray) -> bool:
        if seg.stall_steps is None:
            return False
        self._trail.append((pos, gripper_yaw(mat)))
        if len(self._trail) <= seg.stall_steps:
            return False
        old_pos, old_yaw = self._trail.pop(0)
        return bool(
            np.linalg.norm(pos - old_pos) < 1.5e-3 and abs(wrap(gripper_yaw(mat) - old_yaw)) < 0.01
        )

    def act(self) -> np.ndarray:
        pos, mat = self._eef()
        # Advance through every segment already satisfied (at most one hop per segment).
        while not self.done:
            seg = self.segments[self._i]
            target, yaw = seg.target(), seg.yaw()
            reached = (
                np.linalg.norm(target - pos) < seg.tol
                and abs(wrap(yaw - gripper_yaw(mat))) < seg.yaw_tol
                and self._steps >= seg.min_steps
            )
            if not (reached or self._steps >= seg.max_steps or self._stalled(seg, pos, mat)):
                break
            self._advance()
        seg = self.segments[min(self._i, len(self.segments) - 1)]
        self._steps += 1
        return self._ctl.action(
            pos, mat, seg.target(), seg.yaw(), seg.grip, self._rng, tilt=seg.tilt
        )
