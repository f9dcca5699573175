"""Building blocks of the scripted experts: privileged reads, grasp-yaw choice, pick, place.

Each returns ``waypoints.Segment`` lists whose targets are evaluated live on the simulator,
with the episode's random draws (heights, offsets, pauses) taken from the expert's generator.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

from .control import gripper_yaw, wrap
from .waypoints import CLOSE, OPEN, Segment

Vec = np.ndarray
Q7_LIMIT = 2.9  # the Panda's wrist joint (the one that turns the gripper) stops at +-2.9 rad
Q7_SAFE = 2.0  # a grasp leaves this much room either way for the carry to swing the arm
MAX_GRIP_OFFSET = 0.15  # metres from the grip site to any point of a held object
CLEAR_ENOUGH = 0.03  # metres between gripper and obstacles that need no more
RETREAT_UP, RETREAT_BACK = 0.05, 0.12  # metres: up clear of the object, then back


class Probe:
    """Privileged reads of a robosuite env: grip site, wrist joint, bodies, geoms, sites."""

    def __init__(self, raw):
        self.raw = raw
        self.data = raw.sim.data
        self.model = raw.sim.model
        self._site = raw.robots[0].eef_site_id["right"]
        self._q7 = raw.robots[0]._ref_joint_pos_indexes[-1]

    def eef(self) -> tuple[Vec, Vec]:
        return self.data.site_xpos[self._site].copy(), self.data.site_xmat[self._site].reshape(3, 3)

    def yaw(self) -> float:
        return gripper_yaw(self.data.site_xmat[self._site].reshape(3, 3))

    def q7(self) -> float:
        """The wrist joint; turning the gripper to +yaw lowers it by about as much."""
        return float(self.data.qpos[self._q7])

    def base_xy(self) -> Vec:
        return np.asarray(self.raw.robots[0].base_pos)[:2]

    def pos(self, obj) -> Vec:
        return self.data.body_xpos[self.model.body_name2id(obj.root_body)].copy()

    def mat(self, obj) -> Vec:
        return self.data.body_xmat[self.model.body_name2id(obj.root_body)].reshape(3, 3)

    def site(self, name: str) -> Vec:
        return self.data.site_xpos[self.model.site_name2id(name)].copy()


class GraspYaw:
    """The gripper yaw for one grasp: chosen once when the approach starts, then followed.

    The fingers may close along ``object_yaw() + a`` for each ``a`` in ``axes`` (and, the
    gripper being two-fingered, the same line turned by pi). Among those, ``clearance(a)``
    (metres from the open gripper to any obstacle, up to ``CLEAR_ENOUGH``) ranks first when
    given, then the wrist
    joint's distance from ``q7_pref`` (or, without it, the smallest turn). Choices that would
    leave the wrist beyond +-``Q7_SAFE`` (nearer its stops) are dropped. Following the
    choice, the gripper turns the way the wrist can go (not always the short way) and tracks
    the object if it rotates.
    """

    def __init__(
        self,
        probe: Probe,
        object_yaw: Callable[[], float],
        axes: Sequence[float] = (0.0,),
        *,
        clearance: Callable[[float], float] | None = None,
        q7_pref: float | None = None,
    ):
        self.probe = probe
        self.object_yaw = object_yaw
        self.axes = tuple(axes)
        self.clearance = clearance
        self.q7_pref = q7_pref
        self._goal: tuple[float, float, float] | None = None  # world yaw, q7 there, object yaw

    def choose(self) -> None:
        yaw, q7, obj = self.probe.yaw(), self.probe.q7(), self.object_yaw()
        best = None
        for a in self.axes:
            clear = 0.0
            if self.clearance is not None:  # beyond CLEAR_ENOUGH, comfort decides
                clear = -round(min(self.clearance(a), CLEAR_ENOUGH), 2)
            for flip in (0.0, np.pi):
                target = obj + a - np.pi / 2 + flip
                for turn in (wrap(target - yaw) + k * 2 * np.pi for k in (-1, 0, 1)):
                    q7_goal = q7 - turn
                    if abs(q7_goal) > Q7_SAFE:
                        continue
                    comfort = abs(turn) if self.q7_pref is None else abs(q7_goal - self.q7_pref)
                    key = (clear, comfort)
                    if best is None or key < best[0]:
                        best = (key, (yaw + turn, q7_goal, obj))
        if best is None:  # no turn keeps the safety margin: take the short one
            self._goal = (yaw + wrap(obj + self.axes[0] - np.pi / 2 - yaw, np.pi), q7, obj)
        else:
            self._goal = best[1]

    def __call__(self) -> float:
        if self._goal is None:
            self.choose()
        goal_yaw, q7_goal, obj0 = self._goal  # type: ignore[misc]
        yaw = self.probe.yaw()
        target = goal_yaw + wrap(self.object_yaw() - obj0)
        est = self.probe.q7() - q7_goal  # the turn still to go, as the wrist sees it
        turn = est + wrap(target - yaw - est)  # ... corrected to land exactly on target
        return yaw + float(np.clip(turn, -1.0, 1.0))


def grip_offset(probe: Probe, part: Vec, limit: float = MAX_GRIP_OFFSET) -> Vec:
    """Grip site minus a point of the held object, capped at ``limit`` metres: targets built
    from it ("put the object's centre there") then stay in the workspace if the object falls."""
    offset = probe.eef()[0] - part
    norm = float(np.linalg.norm(offset))
    return offset if norm <= limit else offset * (limit / norm)


def pick(
    probe: Probe,
    where: Callable[[], Vec],
    yaw: GraspYaw,
    rng: np.random.Generator,
    *,
    grasp_dz: tuple[float, float],
    carry_z: float,
    mem: dict,
    xy_jitter: float = 0.004,
    close_steps: tuple[int, int] = (10, 15),
    approach_z: float = 0.0,
    held: Callable[[], bool] | None = None,
) -> list[Segment]:
    """Approach above ``where()`` (at least at world height ``approach_z``, clear of
    obstacles), descend to ``grasp_dz`` above it at ``yaw``, close, and lift to ``carry_z``;
    if ``held()`` is false after the lift, open and start over. Remembers the grasp pose in
    ``mem`` ("grasp_pos", "yaw")."""
    above = rng.uniform(0.05, 0.12)
    jit = np.append(rng.uniform(-xy_jitter, xy_jitter, 2), 0.0)
    dz = rng.uniform(*grasp_dz)

    def latch() -> None:
        mem["grasp_pos"], mem["yaw"] = probe.eef()[0], probe.yaw()
        mem["where_z"] = float(where()[2])  # for ``held`` checks that ask whether it rose

    def high(p: Vec) -> Vec:
        return np.append(p[:2], max(p[2] + dz + above, approach_z))

    def hold_wrist() -> None:
        pref = yaw.q7_pref
        mem["q7"] = probe.q7() if pref is None else pref

    def wrist_yaw() -> float:  # let the gripper's yaw follow the arm, the wrist joint stay put
        return probe.yaw() + float(np.clip(probe.q7() - mem["q7"], -0.5, 0.5))

    return [
        # travel with the wrist still (turning while the base swings runs it into its stops),
        # then choose the grasp yaw above the object and turn there
        Segment(
            "approach",
            lambda: high(where() + jit),
            wrist_yaw,
            OPEN,
            0.012,
            np.inf,
            on_enter=hold_wrist,
        ),  # fmt: skip
        Segment("align", lambda: high(where() + jit), yaw, OPEN, 0.012, 0.1, on_enter=yaw.choose),
        # a descent that stops (fingertips on the table, say) grasps where it is
        Segment(
            "descend", lambda: where() + jit + [0, 0, dz], yaw, OPEN, 0.007, 0.08, stall_steps=8
        ),
        Segment(
            "grasp",
            lambda: mem["grasp_pos"],
            lambda: mem["yaw"],
            CLOSE,
            tol=np.inf,
            yaw_tol=np.inf,
            min_steps=int(rng.integers(*close_steps)),
            on_enter=latch,
        ),
        Segment(
            "lift",
            lambda: np.append(mem["grasp_pos"][:2], carry_z),
            lambda: mem["yaw"],
            CLOSE,
            tol=0.02,
            yaw_tol=np.inf,
            check=held,
            retry_from="approach",
        ),
    ]


def place(
    probe: Probe,
    eef_goal: Callable[[], Vec],
    yaw: Callable[[], float],
    rng: np.random.Generator,
    *,
    carry_z: float,
    release_z: Callable[[], float],
    via: Vec | None = None,
    release_tol: float = 0.01,
    on_carry: Callable[[], None] | None = None,
    tilt: Vec | None = None,
    retreat_z: float = 0.0,
) -> list[Segment]:
    """Carry to above ``eef_goal()`` (through ``via`` if given), lower to ``release_z()``
    (or until blocked), open, rise clear of the object, then back off towards the robot (to
    world height ``retreat_z`` at least). ``on_carry`` runs when the carry starts; ``tilt``
    tilts the gripper from the carry on (see ``PController``)."""
    segs = []
    if via is not None:
        segs.append(Segment("carry via", lambda: via, yaw, CLOSE, 0.05, np.inf, on_enter=on_carry))
    segs += [
        Segment(
            "carry",
            lambda: np.append(eef_goal()[:2], carry_z),
            yaw,
            CLOSE,
            tol=0.015,
            yaw_tol=0.1,
            on_enter=on_carry if via is None else None,
            tilt=tilt,
        ),
        Segment(
            "lower",
            lambda: np.append(eef_goal()[:2], release_z()),
            yaw,
            CLOSE,
            tol=release_tol,
            yaw_tol=0.1,
            stall_steps=6,
            tilt=tilt,
        ),
    ]
    mem: dict = {}

    def latch() -> None:
        mem["pos"] = probe.eef()[0]

    def back_off() -> Vec:  # towards the robot, so the elbow bends again, and up
        back = probe.base_xy() - mem["pos"][:2]
        back *= RETREAT_BACK / max(float(np.linalg.norm(back)), 1e-6)
        z = max(mem["pos"][2] + RETREAT_UP, retreat_z)
        return np.array([mem["pos"][0] + back[0], mem["pos"][1] + back[1], z])

    segs += [
        Segment(
            "release",
            lambda: mem["pos"],
            yaw,
            OPEN,
            tol=np.inf,
            yaw_tol=np.inf,
            min_steps=int(rng.integers(4, 8)),
            on_enter=latch,
            tilt=tilt,
        ),
        Segment(
            "retreat", lambda: mem["pos"] + [0, 0, RETREAT_UP], yaw, OPEN, 0.02, np.inf, tilt=tilt
        ),
        Segment("back off", back_off, yaw, OPEN, 0.03, np.inf, tilt=tilt),
    ]
    return segs
