"""Pushes off the expert's path while it demonstrates (DART-style disturbance injection).

Why: a scripted expert moves along one clean path, so a policy trained on it never sees how to
get back once it drifts, and small errors compound. Here, now and then, a constant push of a few
steps is added to the *executed* action while the *recorded* action stays the expert's own, so
the demos show the expert correcting from states off its path (Laskey et al., "DART", 2017).
The gripper is never pushed: the disturbance moves the hand, it does not open it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Perturbation:
    """How hard and how often to push: ``scale`` in action units (1.0 = 5 cm per step).

    A push starts with probability ``rate`` on any step outside one and lasts ``min_steps`` to
    ``max_steps`` steps, along one random direction of the hand's position.
    """

    scale: float
    rate: float = 0.04
    min_steps: int = 3
    max_steps: int = 8

    def __post_init__(self) -> None:
        if not (self.scale >= 0 and 0 <= self.rate <= 1):
            raise ValueError(f"perturbation needs scale >= 0 and 0 <= rate <= 1, got {self}")
        if not 1 <= self.min_steps <= self.max_steps:
            raise ValueError(f"perturbation needs 1 <= min_steps <= max_steps, got {self}")


def perturb_seed(seed: int) -> np.random.Generator:
    """The pushes' own stream for an episode, apart from the expert's (see ``expert_seed``)."""
    return np.random.default_rng([seed, 0xDA27])


class Pusher:
    """Turns the expert's action into the executed one, pushing now and then."""

    def __init__(self, perturbation: Perturbation, rng: np.random.Generator):
        self.p = perturbation
        self._rng = rng
        self._left = 0
        self._push = np.zeros(7)
        self.pushed_steps = 0

    def __call__(self, action: np.ndarray) -> np.ndarray:
        if self._left == 0 and self._rng.random() < self.p.rate:
            direction = self._rng.normal(size=3)
            self._push[:3] = self.p.scale * direction / np.linalg.norm(direction)
            self._left = int(self._rng.integers(self.p.min_steps, self.p.max_steps + 1))
        if self._left == 0:
            return action
        self._left -= 1
        self.pushed_steps += 1
        return action + self._push
