"""A simulated arm behind the deploy loop's ``Robot`` interface (``real.robot.Robot``).

``SimRobot(env="lift")`` wraps ``make_env``: ``connect()`` resets the episode, ``observe()``
returns the newest observation with its wall-clock stamp, ``command(action)`` steps the
simulation once. ``configs/robot/sim.yaml`` names this class with ``_target_``, so
``uvdiff-deploy robot=sim env=lift`` runs the very loop, shield and report that drive the real
arm. This module does not import ``real`` (nor ``real`` this one): the observation type below
has the fields the loop reads.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from .envs import make_env


@dataclass
class SimObservation:
    stamp: float
    state: dict[str, np.ndarray]
    frames: dict[str, np.ndarray] = field(default_factory=dict)
    seq: int = 0
    estop: bool = False
    info: dict = field(default_factory=dict)

    def policy_input(self) -> dict[str, np.ndarray]:
        return {**self.state, **self.frames}


class SimRobot:
    """``make_env(env)`` as a robot. Thread-safe: ``observe`` and ``command`` may come from
    different threads (e.g. a ROS node's subscriber and its publisher timer)."""

    def __init__(
        self,
        env: str = "lift",
        *,
        seed: int = 0,
        cameras: Sequence[str] = (),
        image_size: Sequence[int] = (84, 84),
        horizon: int | None = None,
        **_: object,
    ):
        self.env_name, self.seed = env, int(seed)
        self.cameras, self.image_size = tuple(cameras), tuple(int(x) for x in image_size)
        self.horizon = horizon
        self.env = None
        self._lock = threading.Lock()
        self._obs: SimObservation | None = None
        self.commands = 0

    def connect(self) -> None:
        if self.env is None:
            self.env = make_env(
                self.env_name,
                cameras=self.cameras,
                image_size=self.image_size,
                horizon=self.horizon,
                seed=self.seed,
            )
        obs, info = self.env.reset(seed=self.seed)
        self._publish(obs, info, 0)

    def _publish(self, obs: dict, info: dict, seq: int) -> None:
        frames = {c: obs[c] for c in self.cameras}
        state = {k: v for k, v in obs.items() if k not in frames}
        self._obs = SimObservation(time.time(), state, frames, seq, False, dict(info))

    def observe(self) -> SimObservation:
        """The simulator's state now: like an arm's sensors, a reading is fresh (stamped now,
        a new ``seq``) whether or not the arm moved since the last one; a dry run, which never
        steps the simulation, sees an arm at rest rather than a silent one."""
        with self._lock:
            if self._obs is None:
                raise RuntimeError("SimRobot: call connect() first")
            o = self._obs
            self._obs = SimObservation(time.time(), o.state, o.frames, o.seq + 1, False, o.info)
            return self._obs

    def command(self, action: np.ndarray) -> None:
        with self._lock:
            if self.env is None:
                raise RuntimeError("SimRobot: call connect() first")
            obs, _, _, _, info = self.env.step(np.asarray(action, dtype=np.float64))
            self.commands += 1
            self._publish(obs, info, self._obs.seq + 1)

    def close(self) -> None:
        with self._lock:
            if self.env is not None:
                self.env.close()
                self.env = None
