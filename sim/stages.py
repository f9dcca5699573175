"""Ground-truth stages: milestones read from the simulator state, latched per episode.

``stage`` counts the milestones reached so far, in order, and never decreases within an
episode (a dropped cube does not undo "grasped"), so demo labels are monotone and a stage
change marks the step a subtask was first completed. ``success`` is the task's check on the
current state; when it holds, stage is the last one.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from .orders import parse_order
from .pickplace import OBJECTS as PICKPLACE_OBJECTS


def body_pos(env, obj) -> np.ndarray:
    """World position of a robosuite object's root body."""
    return env.sim.data.body_xpos[env.sim.model.body_name2id(obj.root_body)]


def grasped(env, obj) -> bool:
    """Both finger pads touch the object (robosuite's own grasp check)."""
    return bool(env._check_grasp(gripper=env.robots[0].gripper, object_geoms=obj))


@dataclass
class SingleObjectStages:
    """reach -> grasped -> [lifted] -> done, for tasks that move one object.

    ``obj`` picks the manipulated object out of the robosuite env; ``lift_dz`` (metres above
    its height at reset) adds a "lifted" milestone for tasks whose success is not lifting.
    """

    obj: Callable[[object], object]
    names: tuple[str, ...]
    lift_dz: float | None = None

    def reset(self, env, options: dict, rng: np.random.Generator) -> dict:
        self._stage = 0
        self._z0 = float(body_pos(env, self.obj(env))[2])
        return {}

    @property
    def num_stages(self) -> int:
        return len(self.names)

    def update(self, env) -> tuple[int, bool]:
        success = bool(env._check_success())
        if success:
            self._stage = self.num_stages - 1
            return self._stage, True
        obj = self.obj(env)
        if self._stage == 0 and grasped(env, obj):
            self._stage = 1
        lifted = self.lift_dz is not None and body_pos(env, obj)[2] > self._z0 + self.lift_dz
        if self._stage == 1 and lifted:
            self._stage = 2
        return self._stage, False


class OrderedPlacementStages:
    """pickplace4: stage = objects placed in the given order so far (0..4).

    An object counts as placed when robosuite's check holds: in its own bin with the gripper
    away from it. Placing an object out of turn freezes the stage: the episode can then no
    longer succeed, which is what makes the order part of the task.
    """

    names = ("none placed", "1 placed", "2 placed", "3 placed", "all placed")
    num_stages = 5

    def reset(self, env, options: dict, rng: np.random.Generator) -> dict:
        if options.get("order") is not None:
            self.order = parse_order(options["order"])
        else:
            self.order = tuple(PICKPLACE_OBJECTS[i] for i in rng.permutation(4))
        self._ids = [PICKPLACE_OBJECTS.index(o) for o in self.order]
        self._placed: list[int] = []  # object ids, in the order they were first placed
        self._stage = 0
        return {"order": self.order}

    def update(self, env) -> tuple[int, bool]:
        env._check_success()  # refreshes env.objects_in_bins
        in_bins = env.objects_in_bins
        for i in np.flatnonzero(in_bins):
            if i not in self._placed:
                self._placed.append(int(i))
                if self._stage < 4 and self._placed == self._ids[: len(self._placed)]:
                    self._stage = len(self._placed)
        success = self._stage == 4 and bool(np.all(in_bins))
        return self._stage, success
