"""arrange: two cubes, three spots; each episode's order says which spot each cube goes to.

A compositional task for goal-conditioned policies. The red and the green cube start near the
robot (within a centimetre, turned a little); the three spots lie in a row further out. An
order ("left,right") sends red to its spot first, then green to another. Its last frame shows
where each cube went, so a final-frame goal does identify the task; the held-out orders pair
subtasks that the training orders show only in other company (``sim.orders``).

Built on robosuite's Stack scene (red cube A, 2 cm half size; green cube B, 2.5 cm); the
tracker places the cubes itself at reset, so the layout is ours, not Stack's sampler.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from .control import axis_yaw
from .orders import SPOTS, task_orders
from .pickplace import SQUARE
from .skills import GraspYaw, Probe, grip_offset, pick, place
from .stages import body_pos, grasped
from .waypoints import Segment

if TYPE_CHECKING:
    from .envs import SimEnv

# Table coordinates (metres from the table's centre; the robot's base is at x = -0.56).
SPOT_XY = {"left": (0.06, 0.16), "middle": (0.06, 0.0), "right": (0.06, -0.16)}
START_XY = {"red": (-0.12, 0.09), "green": (-0.12, -0.09)}
# metres either way; radians either way. The task is where the cubes go: with 1.5 cm and 0.3 rad,
# 60 demos and 3,000 steps grasped too rarely to compare goals (BENCHMARKS.md, arrange)
START_NOISE, START_TURN = 0.008, 0.15
PLACED_XY = 0.04  # a cube within this of its spot's centre, resting and let go, is placed
RESTING_DZ = 0.01  # its centre at most this above where it rests on the table


def _cubes(raw) -> dict[str, object]:
    return {"red": raw.cubeA, "green": raw.cubeB}


def _spot(raw, name: str) -> np.ndarray:
    return np.append(np.asarray(SPOT_XY[name]) + raw.table_offset[:2], raw.table_offset[2])


class ArrangeStages:
    """Stage = cubes placed as asked, in order: 0, 1 (red on its spot), 2 (then green on its).

    A cube counts as placed when it rests on the table within ``PLACED_XY`` of its spot and the
    gripper does not hold it. Success (the current state) is both placed. Reset also lays the
    cubes out: each at its start, moved and turned a little by the episode's rng.
    """

    names = ("none placed", "red placed", "both placed")
    num_stages = 3

    def reset(self, env, options: dict, rng: np.random.Generator) -> dict:
        orders = task_orders("arrange")
        order = options.get("order")
        self.order = orders.parse(order) if order is not None else orders.draw(rng)
        for colour, cube in _cubes(env).items():
            xy = np.asarray(START_XY[colour]) + env.table_offset[:2]
            xy = xy + rng.uniform(-START_NOISE, START_NOISE, 2)
            z = env.table_offset[2] + cube.size[2]
            turn = rng.uniform(-START_TURN, START_TURN)
            quat_wxyz = [np.cos(turn / 2), 0.0, 0.0, np.sin(turn / 2)]
            env.sim.data.set_joint_qpos(cube.joints[0], np.concatenate([xy, [z], quat_wxyz]))
        env.sim.forward()
        self._stage = 0
        return {"order": self.order}

    def placed(self, env, colour: str, spot: str) -> bool:
        cube = _cubes(env)[colour]
        pos = body_pos(env, cube)
        target = _spot(env, spot)
        resting = pos[2] < target[2] + cube.size[2] + RESTING_DZ
        near = np.linalg.norm(pos[:2] - target[:2]) < PLACED_XY
        return bool(near and resting and not grasped(env, cube))

    def update(self, env) -> tuple[int, bool]:
        red = self.placed(env, "red", self.order[0])
        green = self.placed(env, "green", self.order[1])
        if self._stage == 0 and red:
            self._stage = 1
        if self._stage == 1 and red and green:
            self._stage = 2
        return self._stage, red and green


def arrange_plan(env: SimEnv, probe: Probe, rng: np.random.Generator) -> list[Segment]:
    """Pick red, set it on its spot; pick green, set it on its own."""
    raw = env.raw
    red_spot, green_spot = env.episode_info["order"]
    table_z = float(raw.table_offset[2])
    segs: list[Segment] = []
    for cube, spot_name in ((raw.cubeA, red_spot), (raw.cubeB, green_spot)):
        half = float(cube.size[2])
        carry_z = table_z + 2 * half + rng.uniform(0.08, 0.14)
        mem: dict = {}
        segs += pick(
            probe,
            lambda c=cube: probe.pos(c),
            GraspYaw(probe, lambda c=cube: axis_yaw(probe.mat(c)), SQUARE),
            rng,
            grasp_dz=(-0.004, 0.004),
            carry_z=carry_z,
            mem=mem,
            held=lambda c=cube: grasped(raw, c),
        )
        spot = _spot(raw, spot_name) + np.append(rng.uniform(-0.01, 0.01, 2), 0.0)
        drop = rng.uniform(0.003, 0.01)

        def goal(c=cube, s=spot) -> np.ndarray:  # grip site such that the cube is above the spot
            return s + grip_offset(probe, probe.pos(c))

        def release_z(c=cube, h=half, d=drop) -> float:
            return table_z + h + d + (probe.eef()[0][2] - probe.pos(c)[2])

        segs += place(
            probe, goal, lambda m=mem: m["yaw"], rng, carry_z=carry_z, release_z=release_z
        )
    return segs


__all__ = ["SPOTS", "ArrangeStages", "arrange_plan"]
