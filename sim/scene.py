"""Scene variants for robustness checks: the fixed cameras moved, the lights changed.

Why: a policy that sees cameras meets a camera bumped by a few centimetres and another room's
light on its first real day. Evaluating it under such a change of look (never under a change
of the task) says how much of its success survives. A variant changes the MuJoCo model in
place, from the values the model was built with, so applying one twice is applying it once;
the wrist camera (attached to the hand) and the physics are never touched.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from .errors import SimError


@dataclass(frozen=True)
class SceneVariant:
    """``camera_shift``: metres (x, y, z, world frame) added to every camera fixed in the
    world; ``light_scale``: every light's diffuse, ambient and specular colour and the
    head light multiplied by it (0.5: half as bright)."""

    camera_shift: tuple[float, float, float] = (0.0, 0.0, 0.0)
    light_scale: float = 1.0

    def __post_init__(self) -> None:
        shift = tuple(float(v) for v in self.camera_shift)
        if len(shift) != 3 or not np.all(np.isfinite(shift)):
            raise SimError(f"camera_shift must be 3 finite metres [x, y, z], got {shift}")
        if not (np.isfinite(self.light_scale) and self.light_scale >= 0):
            raise SimError(f"light_scale must be >= 0, got {self.light_scale}")
        object.__setattr__(self, "camera_shift", shift)

    @property
    def is_default(self) -> bool:
        return self == SceneVariant()

    def describe(self) -> dict[str, Any]:
        return {"camera_shift": list(self.camera_shift), "light_scale": self.light_scale}


LIGHT_FIELDS = ("light_diffuse", "light_ambient", "light_specular")
HEADLIGHT_FIELDS = ("diffuse", "ambient", "specular")


class SceneLook:
    """A model's look as built, and how to set a variant of it."""

    def __init__(self, model):
        self.model = model
        self.fixed = np.flatnonzero(np.asarray(model.cam_bodyid) == 0)  # world-fixed cameras
        self.cam_pos = np.array(model.cam_pos, copy=True)
        self.lights = {f: np.array(getattr(model, f), copy=True) for f in LIGHT_FIELDS}
        head = model.vis.headlight
        self.headlight = {f: np.array(getattr(head, f), copy=True) for f in HEADLIGHT_FIELDS}

    def set(self, variant: SceneVariant) -> None:
        m = self.model
        m.cam_pos[:] = self.cam_pos
        m.cam_pos[self.fixed] += np.asarray(variant.camera_shift)
        for f, base in self.lights.items():
            getattr(m, f)[:] = np.clip(base * variant.light_scale, 0.0, 1.0)
        for f, base in self.headlight.items():
            getattr(m.vis.headlight, f)[:] = np.clip(base * variant.light_scale, 0.0, 1.0)
