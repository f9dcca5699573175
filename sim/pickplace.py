"""The PickPlace scene seen from above: objects, bin walls, and where the open gripper fits.

Shared by the scripted expert (which finger axis to grasp along) and the ``pickplace4`` env:
initial layouts are resampled until every object is within the arm's reach and has a top-down
grasp that clears its neighbours and the bin walls. (robosuite's sampler only keeps objects
from overlapping: a short object can start against a tall one, and the Panda's hand is 21 cm
wide along its fingers; bin 1's far corner is 92 cm from the arm's base.)
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from .control import axis_yaw

OBJECTS = ("milk", "bread", "cereal", "can")  # robosuite's object ids 0..3 (bins 0..3)
SQUARE = (0.0, np.pi / 2)

# The open Panda gripper seen from above, in the frame of the finger axis (half extents along,
# across), and the height of its underside above the grip site: the fingers, then the hand
# (measured from robosuite's collision meshes).
FINGERS_HALF, FINGERTIP_DZ = (0.07, 0.012), -0.012
HAND_HALF, HAND_DZ = (0.105, 0.035), 0.028

# Further from the Panda's base than this (horizontally), a grasp low in bin 1 straightens the
# elbow against its joint limit, a singularity OSC control does not get out of.
PICK_REACH = 0.8

# How to grip each object: how far below its top (metres, a range the expert draws from), and
# the finger axes (radians from the geom's x axis) that hold it: the cereal box only across its
# 3 cm side, milk and bread (4 x 4 and 4 x 4.8 cm) across either side, the can along any line.
GRIP = {
    "milk": ((0.025, 0.035), SQUARE),
    "bread": ((0.02, 0.03), SQUARE),
    "cereal": ((0.02, 0.03), (0.0,)),
    "can": ((0.02, 0.03), tuple(np.arange(8) * np.pi / 8)),
}


def object_geom(raw, name: str) -> int:
    """The object's collision geom. MuJoCo aligns a mesh geom's frame with the mesh's principal
    axes, so this frame (not the body's) says which side is narrow."""
    obj = raw.objects[OBJECTS.index(name)]
    return raw.obj_geom_id[obj.name][0]


def extent(model, geom: int) -> tuple[float, float]:
    """Heights of an upright geom's top and bottom above / below its origin."""
    aabb = model.geom_aabb[geom]  # centre xyz, half sizes xyz, in the geom frame
    return float(aabb[2] + aabb[5]), float(aabb[5] - aabb[2])


def bin_walls(model) -> list[int]:
    """The wall geoms of both bins (boxes standing above the floors)."""
    bins = {model.body_name2id(b) for b in ("bin1", "bin2")}
    return [
        g
        for g in range(model.ngeom)
        if model.geom_bodyid[g] in bins and model.geom_contype[g] and model.geom_size[g][2] > 0.03
    ]


def box_corners(data, model, geom: int) -> np.ndarray:
    """The 4 corners (world xy) of a geom's bounding box seen from above."""
    aabb = model.geom_aabb[geom]  # centre xyz, half sizes xyz, in the geom frame
    rot = data.geom_xmat[geom].reshape(3, 3)[:2, :2]
    return _rect(data.geom_xpos[geom][:2] + rot @ aabb[:2], rot, aabb[3:5])


def _rect(centre: np.ndarray, rot: np.ndarray, half) -> np.ndarray:
    signs = np.array([[-1.0, -1.0], [1.0, -1.0], [1.0, 1.0], [-1.0, 1.0]])
    return centre + (signs * np.asarray(half)) @ rot.T


def rect_gap(a: np.ndarray, b: np.ndarray) -> float:
    """Distance between two convex quadrilaterals given by their corners (0 if they touch)."""
    for poly in (a, b):  # separating axis test on each edge normal
        for i in range(4):
            edge = poly[(i + 1) % 4] - poly[i]
            normal = np.array([-edge[1], edge[0]])
            pa, pb = a @ normal, b @ normal
            if pa.max() < pb.min() or pb.max() < pa.min():
                break
        else:
            continue
        break
    else:
        return 0.0  # no separating axis: they overlap

    def point_to_edges(points: np.ndarray, poly: np.ndarray) -> float:
        best = np.inf
        for i in range(4):
            p0, p1 = poly[i], poly[(i + 1) % 4]
            d = p1 - p0
            t = np.clip((points - p0) @ d / (d @ d), 0.0, 1.0)
            best = min(best, float(np.linalg.norm(points - (p0 + t[:, None] * d), axis=1).min()))
        return best

    return min(point_to_edges(a, b), point_to_edges(b, a))


def gripper_clearance(
    data, model, geom: int, grip_dz: float, axis: float, obstacles: Sequence[int]
) -> float:
    """Metres between the open gripper, lowered to grip ``geom`` ``grip_dz`` above its origin
    with the fingers along ``axis`` (from the geom's x axis), and the nearest obstacle: the
    fingers against anything above the fingertips, the hand against anything taller than its
    underside. 0 when they touch."""
    centre = data.geom_xpos[geom]
    grip_z = centre[2] + grip_dz
    a = axis_yaw(data.geom_xmat[geom].reshape(3, 3)) + axis
    rot = np.array([[np.cos(a), -np.sin(a)], [np.sin(a), np.cos(a)]])  # columns: along, across
    parts = [
        (_rect(centre[:2], rot, FINGERS_HALF), grip_z + FINGERTIP_DZ),
        (_rect(centre[:2], rot, HAND_HALF), grip_z + HAND_DZ),
    ]
    clear = np.inf
    for g in obstacles:
        top = data.geom_xpos[g][2] + extent(model, g)[0]
        corners = box_corners(data, model, g)
        for part, underside in parts:
            if top >= underside:
                clear = min(clear, rect_gap(part, corners))
    return float(clear)


def obstacles_for(raw, name: str) -> list[int]:
    """Everything the gripper must miss when it goes for object ``name``."""
    return [object_geom(raw, o) for o in OBJECTS if o != name] + bin_walls(raw.sim.model)


def graspable_layout(min_clearance: float = 0.01, reach: float = PICK_REACH):
    """A layout check: every object stands within ``reach`` (horizontal metres) of the arm's
    base and has a finger axis whose top-down grasp (at the lowest grip height the expert
    uses) clears everything else by ``min_clearance`` metres."""

    def check(raw) -> bool:
        data, model = raw.sim.data, raw.sim.model
        base = np.asarray(raw.robots[0].base_pos)[:2]
        for name in OBJECTS:
            geom = object_geom(raw, name)
            if np.linalg.norm(data.geom_xpos[geom][:2] - base) > reach:
                return False
            (_, deepest), axes = GRIP[name]
            grip_dz = extent(model, geom)[0] - deepest
            obstacles = obstacles_for(raw, name)
            if not any(
                gripper_clearance(data, model, geom, grip_dz, a, obstacles) >= min_clearance
                for a in axes
            ):
                return False
        return True

    return check
