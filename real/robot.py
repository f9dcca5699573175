"""The robot interface the control loop drives: ``Robot`` (a Protocol) and its observation.

A robot is anything with ``connect()``, ``observe()``, ``command(action)`` and ``close()``:
``real.RosbridgeRobot`` (an arm behind a rosbridge server) and ``sim.robot.SimRobot`` (a MuJoCo
arm). The loop never asks which one it has; the ``robot/`` config names the class with
``_target_``, so this package never imports ``sim``.

Times are wall-clock seconds (``time.time()``): ROS header stamps are wall clock too, so the age
of an observation is ``time.time() - obs.stamp`` whichever side measured it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

import numpy as np


class RobotError(RuntimeError):
    """A robot cannot be reached, or sent something that does not fit its config."""


class EStopped(RobotError):
    """A command after the e-stop latched; the robot published nothing."""


@dataclass
class Observation:
    """One timestamped observation of the robot.

    ``stamp``: when the oldest of its parts was measured (header stamp or receipt time), so
    ``time.time() - stamp`` bounds the age of every value in it. ``state``: float32 vectors by
    key (the policy's state keys, e.g. ``eef_pos``, ``joint_pos``); ``frames``: uint8 RGB
    (H, W, 3) by camera. ``seq`` increases with every observation that holds new data; a robot
    that has heard nothing new since the last call returns the same ``seq``. ``estop``: an
    e-stop was requested on the robot's side (topic, service, button) since it connected.
    """

    stamp: float
    state: dict[str, np.ndarray]
    frames: dict[str, np.ndarray] = field(default_factory=dict)
    seq: int = 0
    estop: bool = False
    info: dict = field(default_factory=dict)  # e.g. success/stage from a simulator

    def policy_input(self) -> dict[str, np.ndarray]:
        """The dict ``Policy.act`` / ``observe`` takes: state keys and camera names."""
        return {**self.state, **self.frames}


@runtime_checkable
class TimedObservation(Protocol):
    """What the loop reads from an observation; ``Observation`` is one, a robot may return its
    own type with the same fields (the sim adapter does, so ``sim`` need not import ``real``)."""

    stamp: float
    state: Mapping[str, np.ndarray]
    frames: Mapping[str, np.ndarray]
    seq: int
    estop: bool


@runtime_checkable
class Robot(Protocol):
    """An arm the control loop can drive.

    ``connect()`` blocks until the first complete observation can be read (or raises
    ``RobotError``); ``observe()`` never blocks on the network: it returns the newest data
    received, with its stamp, so a silent robot shows as an ageing observation; ``command``
    sends one action (the kind the ``robot/`` config names) and returns without waiting for
    the arm; ``close()`` stops the robot's threads and connections (safe to call twice).
    """

    def connect(self) -> None: ...

    def observe(self) -> TimedObservation: ...

    def command(self, action: np.ndarray) -> None: ...

    def close(self) -> None: ...
