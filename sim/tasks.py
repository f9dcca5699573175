"""The task table: one entry per env name, from robosuite env and options to stages and horizon.

Adding a task is one entry in ``ENVS``. Each entry is callable and builds a ``SimEnv``, so
``ENVS[name](cameras=...)`` and ``make_env(name, cameras=...)`` are the same thing.

Stages (``info["stage"]``, latched: the milestones reached so far) and success:

=========== ============================================ ==========================================
env         stages                                       success (current state)
=========== ============================================ ==========================================
lift        0 reach, 1 grasped, 2 lifted                 cube centre 4 cm above the table
can         0 reach, 1 grasped, 2 lifted (5 cm),         can in its bin, gripper 7 cm away
            3 placed
square      0 reach, 1 grasped, 2 lifted (5 cm),         nut around the square peg, low, gripper
            3 on peg                                     7 cm away
stack       0 reach, 1 grasped, 2 lifted (3 cm),         red cube lifted, on the green one, not
            3 stacked                                    held
pickplace4  n = objects placed in the given order        all four placed, in the given order
            (0..4); placing one out of turn freezes it
arrange     n = cubes on their asked spots, red first    both cubes resting on their spots, let go
            (0..2)
=========== ============================================ ==========================================

"grasped" is robosuite's check (both finger pads touch the object); "lifted" is the object's
height above where it started. When success holds the stage is the last one.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from .arrange import ArrangeStages
from .orders import describe_order
from .pickplace import graspable_layout
from .stages import OrderedPlacementStages, SingleObjectStages

if TYPE_CHECKING:
    from .envs import SimEnv


@dataclass(frozen=True)
class Task:
    """One simulated task: which robosuite env to build and how its progress is measured."""

    name: str
    robosuite_env: str
    description: str
    horizon: int  # default episode length limit (steps at 20 Hz)
    stages: Callable[[], Any]  # a new stage tracker (SingleObjectStages / OrderedPlacementStages)
    env_kwargs: dict[str, Any] = field(default_factory=dict)
    layout_ok: Callable[[Any], bool] | None = None  # resample the initial state until True
    reset_options: tuple[str, ...] = ()  # keys ``reset(options=...)`` accepts

    @property
    def stage_names(self) -> tuple[str, ...]:
        return tuple(self.stages().names)

    def task_string(self, reset_info: dict) -> str:
        """The instruction for one episode (pickplace4 names its order)."""
        if "order" in reset_info:
            return describe_order(reset_info["order"], self.name)
        return self.description

    def __call__(self, **kwargs: Any) -> SimEnv:
        from .envs import SimEnv

        return SimEnv(self, **kwargs)


def _single(obj: Callable[[Any], Any], *names: str, lift_dz: float | None = None):
    return lambda: SingleObjectStages(obj=obj, names=names, lift_dz=lift_dz)


ENVS: dict[str, Task] = {
    t.name: t
    for t in (
        Task(
            "lift",
            "Lift",
            "lift the cube",
            horizon=400,
            # success (robosuite): the cube is 4 cm above the table
            stages=_single(lambda e: e.cube, "reach", "grasped", "lifted"),
        ),
        Task(
            "can",
            "PickPlaceCan",
            "put the can in its bin",
            horizon=400,
            # success: the can is in its bin and the gripper has let go (7 cm away)
            stages=_single(
                lambda e: e.objects[e.object_id],
                "reach",
                "grasped",
                "lifted",
                "placed",
                lift_dz=0.05,
            ),
        ),
        Task(
            "square",
            "NutAssemblySquare",
            "put the square nut on its peg",
            horizon=400,
            # success: the nut is around the square peg, low, and the gripper has let go
            stages=_single(
                lambda e: e.nuts[e.nut_id], "reach", "grasped", "lifted", "on peg", lift_dz=0.05
            ),
        ),
        Task(
            "stack",
            "Stack",
            "stack the red cube on the green cube",
            horizon=400,
            # success: cube A lifted, touching cube B, not grasped
            stages=_single(
                lambda e: e.cubeA, "reach", "grasped", "lifted", "stacked", lift_dz=0.03
            ),
        ),
        Task(
            "pickplace4",
            "PickPlace",
            "place milk, bread, cereal, can in their bins",
            horizon=1500,
            stages=OrderedPlacementStages,
            env_kwargs={"single_object_mode": 0},
            # every object can be grasped from above (see pickplace.py)
            layout_ok=graspable_layout(),
            reset_options=("order",),
        ),
        Task(
            "arrange",
            "Stack",
            "put the red cube on one spot, then the green cube on another",
            horizon=450,  # the expert needs 212-341 steps (60 demos)
            stages=ArrangeStages,
            reset_options=("order",),
        ),
    )
}
