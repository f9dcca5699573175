"""Scripted experts: waypoint plans on privileged state, one per task, with seeded variation.

Every expert reads object poses straight from the simulator, plans pick / carry / place
segments (``skills``) and follows them with a P-controller on OSC deltas (``waypoints``). Each
episode draws its own speed, gains, noise, approach heights, grasp offsets, carry paths and
place spots, so a folder of demos is multimodal. The ground-truth stage comes from the env
(``info["stage"]``); ``expert.phase`` names the segment being executed.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

import numpy as np

from .arrange import arrange_plan
from .control import axis_yaw, wrap
from .errors import UnknownEnvError
from .pickplace import GRIP, OBJECTS, SQUARE, extent, gripper_clearance, object_geom, obstacles_for
from .skills import Q7_LIMIT, GraspYaw, Probe, grip_offset, pick, place
from .stages import grasped
from .waypoints import CLOSE, Segment, SegmentRunner, Style

if TYPE_CHECKING:
    from .envs import SimEnv

Vec = np.ndarray


# ---------------------------------------------------------------------- lift, stack
def lift_plan(env: SimEnv, probe: Probe, rng: np.random.Generator) -> list[Segment]:
    cube = env.raw.cube
    table_z = float(env.raw.model.mujoco_arena.table_offset[2])
    return pick(
        probe,
        lambda: probe.pos(cube),
        GraspYaw(probe, lambda: axis_yaw(probe.mat(cube)), SQUARE),
        rng,
        grasp_dz=(-0.004, 0.004),  # the fingertips reach 1.2 cm below the grip site
        carry_z=table_z + rng.uniform(0.12, 0.22),
        mem={},
        held=lambda: grasped(env.raw, cube),
    )


def stack_plan(env: SimEnv, probe: Probe, rng: np.random.Generator) -> list[Segment]:
    raw = env.raw
    table_z = float(raw.table_offset[2])
    half_a, half_b = raw.cubeA.size[2], raw.cubeB.size[2]
    carry_z = table_z + 2 * half_b + 2 * half_a + rng.uniform(0.06, 0.12)
    mem: dict = {}
    segs = pick(
        probe,
        lambda: probe.pos(raw.cubeA),
        GraspYaw(probe, lambda: axis_yaw(probe.mat(raw.cubeA)), SQUARE),
        rng,
        grasp_dz=(-0.004, 0.004),
        carry_z=carry_z,
        mem=mem,
        held=lambda: grasped(raw, raw.cubeA),
    )
    gap = rng.uniform(0.005, 0.015)

    def goal() -> Vec:  # grip site such that cube A's centre is above cube B's
        return probe.pos(raw.cubeB) + grip_offset(probe, probe.pos(raw.cubeA))

    def release_z() -> float:
        b_top = probe.pos(raw.cubeB)[2] + half_b
        return b_top + half_a + gap + (probe.eef()[0][2] - probe.pos(raw.cubeA)[2])

    return segs + place(probe, goal, lambda: mem["yaw"], rng, carry_z=carry_z, release_z=release_z)


# ---------------------------------------------------------------------- square
def square_plan(env: SimEnv, probe: Probe, rng: np.random.Generator) -> list[Segment]:
    raw = env.raw
    nut = raw.nuts[raw.nut_id]
    table_z = float(raw.table_offset[2])
    peg = raw.sim.data.body_xpos[raw.peg1_body_id].copy()
    peg_top = peg[2] + 0.1
    carry_z = peg_top + rng.uniform(0.08, 0.12)
    mem: dict = {}
    segs = pick(
        probe,
        lambda: probe.site(f"{nut.name}_handle_site"),
        # the handle runs along the nut's x axis: close the fingers across it
        GraspYaw(probe, lambda: axis_yaw(probe.mat(nut)) + np.pi / 2),
        rng,
        grasp_dz=(0.002, 0.006),  # the handle is 2 cm thick, the fingertips above the table
        carry_z=carry_z,
        mem=mem,
        xy_jitter=0.003,
        held=lambda: grasped(raw, nut),
    )

    def centre() -> Vec:
        return probe.site(f"{nut.name}_center_site")

    def goal() -> Vec:  # grip site such that the nut's centre is above the peg
        return peg + grip_offset(probe, centre())

    handle: dict = {}

    def choose_handle_direction() -> None:
        handle["dir"] = square_handle_direction(axis_yaw(probe.mat(nut)), probe.q7())

    def yaw() -> float:  # turn the gripper until the handle points the chosen way
        return probe.yaw() + wrap(handle["dir"] - axis_yaw(probe.mat(nut)))

    settle = rng.uniform(0.015, 0.035)

    def release_z() -> float:
        return table_z + settle + (probe.eef()[0][2] - centre()[2])

    # turn the nut where it was lifted, then carry it: a nut swinging round over the pegs
    # can catch on one
    turn = Segment(
        "turn",
        lambda: np.append(mem["grasp_pos"][:2], carry_z),
        yaw,
        CLOSE,
        tol=0.03,
        yaw_tol=0.05,
        on_enter=choose_handle_direction,
    )
    return [*segs, turn, *place(probe, goal, yaw, rng, carry_z=carry_z, release_z=release_z)]


def square_handle_direction(handle_yaw: float, q7: float) -> float:
    """Where the nut's handle should point over the peg. The sides line up with the square
    peg at any multiple of 90 degrees; the handle towards the robot (-x) keeps the grip site
    within reach, sideways is next best, away from the robot last; the wrist must allow it."""
    best = None
    for direction, score in ((np.pi, 0), (np.pi / 2, 1), (-np.pi / 2, 1), (0.0, 3)):
        turn = wrap(direction - handle_yaw)
        if abs(q7 - turn) > Q7_LIMIT - 0.2:
            continue
        key = (score, abs(turn))
        if best is None or key < best[0]:
            best = (key, direction)
    return handle_yaw if best is None else best[1]


# ---------------------------------------------------------------------- can, pickplace4
BIN_FLOOR_DZ = 0.02  # a PickPlace bin's floor top is 2 cm above its body position
LIFTED_DZ = 0.05  # metres an object must rise with the gripper to count as held
TALLEST = 0.15  # the cereal box standing (the bin walls are 8 cm above the floor)
# Horizontal distance from the Panda's base within which the straight-down grip site keeps the
# elbow bent: further out the elbow straightens into a singularity OSC cannot leave.
REACH = 0.75
# Spots further out than this (the can's bin quadrant) are reached with the gripper tilted
# outwards by TILT radians, which keeps the wrist 7 cm nearer and the elbow bent.
TILT_BEYOND, TILT = 0.74, 0.35


def _place_spot(raw, idx: int, radius: float, rng: np.random.Generator) -> Vec:
    """A random spot in object ``idx``'s bin quadrant, where an object of horizontal ``radius``
    in any orientation clears the walls, pulled within the arm's reach."""
    lo = raw.bin2_pos[:2] - raw.bin_size[:2] / 2 * np.array([idx in (0, 2), idx < 2])
    hi = lo + raw.bin_size[:2] / 2
    margin = min(radius + 0.02, 0.08)  # the object, half a wall, a little room
    spot = rng.uniform(lo + margin, hi - margin)
    base = np.asarray(raw.robots[0].base_pos)[:2]
    d = spot - base
    if np.linalg.norm(d) > REACH:
        spot = np.clip(base + d * (REACH / np.linalg.norm(d)), lo + margin, hi - margin)
    return np.append(spot, raw.bin2_pos[2])


def pick_and_place_object(
    env: SimEnv, probe: Probe, rng: np.random.Generator, name: str
) -> list[Segment]:
    """Segments that move PickPlace object ``name`` from bin 1 into its own bin."""
    raw = env.raw
    idx = OBJECTS.index(name)
    (below_lo, below_hi), axes = GRIP[name]
    geom = object_geom(raw, name)
    top, bottom = extent(probe.model, geom)
    grip_below_top = rng.uniform(below_lo, below_hi)
    grip_dz = top - grip_below_top  # grip site above the geom origin
    hang = grip_dz + bottom  # the object's depth under the grip site
    floor = float(raw.bin2_pos[2]) + BIN_FLOOR_DZ
    clear_z = floor + TALLEST + 0.04  # above every standing object and every bin wall
    carry_z = clear_z + hang + rng.uniform(0.01, 0.05)

    def centre() -> Vec:
        return probe.data.geom_xpos[geom].copy()

    obstacles = obstacles_for(raw, name)
    mem: dict = {}

    def held() -> bool:
        # robosuite's check wants both finger pads on the object; a carton pinched by a
        # fingertip's side rises with the gripper all the same, and opening to retry drops it
        return grasped(raw, raw.objects[idx]) or centre()[2] - mem["where_z"] > LIFTED_DZ

    segs = pick(
        probe,
        centre,
        GraspYaw(
            probe,
            lambda: axis_yaw(probe.data.geom_xmat[geom].reshape(3, 3)),
            axes,
            clearance=lambda axis: gripper_clearance(
                probe.data, probe.model, geom, grip_dz, axis, obstacles
            ),
            q7_pref=0.0,
        ),
        rng,
        grasp_dz=(grip_dz - 0.002, grip_dz + 0.002),
        carry_z=carry_z,
        mem=mem,
        approach_z=clear_z + rng.uniform(0.02, 0.06),
        held=held,
    )
    spot = _place_spot(raw, idx, float(np.hypot(*probe.model.geom_aabb[geom][3:5])), rng)
    # let go just above the floor: a tall, thin box dropped from higher tips over
    drop = rng.uniform(0.003, 0.012) if top + bottom > 0.1 else rng.uniform(0.01, 0.025)

    def goal() -> Vec:  # grip site such that the object's centre is above the spot
        return spot + grip_offset(probe, centre())

    def release_z() -> float:
        return floor + drop + bottom + (probe.eef()[0][2] - centre()[2])

    tilt = None
    out = spot[:2] - np.asarray(raw.robots[0].base_pos)[:2]
    if np.linalg.norm(out) > TILT_BEYOND:  # tip the fingers outwards: the wrist stays nearer
        out /= np.linalg.norm(out)
        tilt = np.array([out[1], -out[0], 0.0]) * TILT  # about (radial x up): tips go outwards
    via = None
    if rng.random() < 0.5:  # half the demos arc through a random point between the bins
        via = np.array([rng.uniform(-0.05, 0.25), 0.0, carry_z + rng.uniform(0.0, 0.06)])
    return segs + place(
        probe,
        goal,
        lambda: mem["yaw"],
        rng,
        carry_z=carry_z,
        release_z=release_z,
        via=via,
        release_tol=0.015,
        tilt=tilt,
        retreat_z=clear_z + 0.03,
    )


def can_plan(env: SimEnv, probe: Probe, rng: np.random.Generator) -> list[Segment]:
    return pick_and_place_object(env, probe, rng, "can")


def pickplace4_plan(env: SimEnv, probe: Probe, rng: np.random.Generator) -> list[Segment]:
    order = env.episode_info["order"]
    return [s for name in order for s in pick_and_place_object(env, probe, rng, name)]


# ---------------------------------------------------------------------- the registry
Plan = Callable[["SimEnv", Probe, np.random.Generator], list[Segment]]

EXPERTS: dict[str, Plan] = {
    "lift": lift_plan,
    "stack": stack_plan,
    "can": can_plan,
    "square": square_plan,
    "pickplace4": pickplace4_plan,
    "arrange": arrange_plan,
}


class Expert:
    """A scripted demonstrator for one env: ``reset(env, rng)`` after ``env.reset``, then
    ``act()`` every step. All its randomness comes from ``rng``."""

    def __init__(self, env_name: str):
        plan = EXPERTS.get(env_name)
        if plan is None:
            raise UnknownEnvError(
                f"no scripted expert for env {env_name!r}; experts: {', '.join(EXPERTS)}"
            )
        self.env_name = env_name
        self._plan = plan
        self._runner: SegmentRunner | None = None

    def reset(self, env: SimEnv, rng: np.random.Generator) -> None:
        probe = Probe(env.raw)
        style = Style.sample(rng)
        self._runner = SegmentRunner(self._plan(env, probe, rng), probe.eef, style, rng)

    def act(self) -> np.ndarray:
        if self._runner is None:
            raise RuntimeError("Expert.act before Expert.reset")
        return self._runner.act()

    @property
    def phase(self) -> str:
        """The name of the segment being executed ("approach", "grasp", "carry", ...)."""
        return "" if self._runner is None else self._runner.phase
