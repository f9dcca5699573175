"""P-control of the Panda's grip site on OSC_POSE delta actions, and the yaw arithmetic for it.

The gripper points straight down in every target pose; only its yaw varies. Yaw 0 is the pose
the Panda starts in: fingers closing along world y.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

# Grip-site orientation at yaw 0: columns are the site's x (finger axis), y and z (approach).
R_DOWN = np.array([[0.0, 1.0, 0.0], [1.0, 0.0, 0.0], [0.0, 0.0, -1.0]])


def rot_z(yaw: float) -> np.ndarray:
    c, s = np.cos(yaw), np.sin(yaw)
    return np.array([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]])


def rotation(rv: np.ndarray) -> np.ndarray:
    """Rotation matrix of an axis-angle vector (Rodrigues)."""
    angle = float(np.linalg.norm(rv))
    if angle < 1e-9:
        return np.eye(3)
    k = np.asarray(rv) / angle
    kx = np.array([[0.0, -k[2], k[1]], [k[2], 0.0, -k[0]], [-k[1], k[0], 0.0]])
    return np.eye(3) + np.sin(angle) * kx + (1.0 - np.cos(angle)) * kx @ kx


def wrap(angle: float, period: float = 2 * np.pi) -> float:
    """``angle`` mapped into [-period/2, period/2)."""
    return float((angle + period / 2) % period - period / 2)


def axis_yaw(mat: np.ndarray) -> float:
    """World yaw of a frame's x axis."""
    return float(np.arctan2(mat[1, 0], mat[0, 0]))


def gripper_yaw(site_mat: np.ndarray) -> float:
    """The gripper's yaw (0 at the start pose), from the grip site's rotation matrix."""
    return wrap(float(np.arctan2(site_mat[1, 0], site_mat[0, 0])) - np.pi / 2)


def rotvec(mat: np.ndarray) -> np.ndarray:
    """Axis-angle vector of a rotation matrix (angle < pi)."""
    cos = np.clip((np.trace(mat) - 1.0) / 2.0, -1.0, 1.0)
    angle = np.arccos(cos)
    if angle < 1e-6:
        return np.zeros(3)
    axis = np.array([mat[2, 1] - mat[1, 2], mat[0, 2] - mat[2, 0], mat[1, 0] - mat[0, 1]])
    return axis * (angle / (2.0 * np.sin(angle)))


@dataclass
class PController:
    """Maps a target grip-site pose to a 7-D OSC delta action.

    ``gain`` and ``max_speed`` (action units, 1.0 = 5 cm commanded per step) set how fast the arm
    moves; ``noise`` is the std of Gaussian noise added to the six pose components.
    """

    gain: float = 10.0
    rot_gain: float = 2.0
    max_speed: float = 1.0
    noise: float = 0.0
    max_turn: float = 0.4  # rotation action cap (0.2 rad/step): fast turns swing the arm off

    def action(
        self,
        pos: np.ndarray,
        mat: np.ndarray,
        target_pos: np.ndarray,
        target_yaw: float,
        grip: float,
        rng: np.random.Generator | None = None,
        tilt: np.ndarray | None = None,
    ) -> np.ndarray:
        """The action towards the pose at ``target_yaw``, pointing straight down or, with
        ``tilt`` (a world-frame rotation vector), tilted from there."""
        a = np.empty(7)
        dp = self.gain * (target_pos - pos)
        norm = np.linalg.norm(dp)
        if norm > self.max_speed:
            dp *= self.max_speed / norm
        a[:3] = dp
        target = rot_z(target_yaw) @ R_DOWN
        if tilt is not None:
            target = rotation(tilt) @ target
        err = rotvec(target @ mat.T)  # world-frame rotation still to go
        a[3:6] = np.clip(self.rot_gain * err, -self.max_turn, self.max_turn)
        if self.noise > 0 and rng is not None:
            a[:6] += rng.normal(0.0, self.noise, 6)
        a[6] = grip
        return np.clip(a, -1.0, 1.0)
