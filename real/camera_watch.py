"""Camera watchdog for the shield: a dark or frozen camera stream holds the arm.

A policy that sees the world only through cameras acts blind when a camera goes dark (a lens
cap, a dead driver publishing zeros) or freezes (a stalled driver republishing its last image,
whose messages stay fresh, so the shield's state staleness check cannot see it). Either way the
arm is held and the intervention counted, never silently acted on.

- dark: the frame's mean brightness (0..255, on a 1-in-8 subsample) is below ``dark_level``;
- frozen: the frame has not changed while the arm's state has, for more than
  ``frozen_periods`` control periods. A still scene with a still arm (a simulator renders it
  identically) is not a frozen camera; a moving arm in an unchanging picture is.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

DARK, FROZEN = "camera_dark", "camera_frozen"


class CameraWatch:
    def __init__(self, dark_level: float, frozen_periods: float, period: float):
        self.dark_level, self.frozen_after = float(dark_level), frozen_periods * period
        self.reset()

    def reset(self) -> None:
        # camera -> [frame fingerprint, state fingerprint when it last changed, when the arm
        #            first moved away from that state since (None: not yet)]
        self._seen: dict[str, list] = {}

    def check(
        self, frames: Mapping[str, np.ndarray], state: Mapping[str, np.ndarray], now: float
    ) -> tuple[str, str] | None:
        """(intervention kind, detail) for the first bad camera, or None."""
        if not frames:
            return None
        state_key = hash(b"".join(np.asarray(v).tobytes() for v in state.values()))
        for cam, frame in frames.items():
            f = np.asarray(frame)
            sample = f[::8, ::8]
            brightness = float(sample.mean()) if sample.size else 0.0
            if brightness < self.dark_level:
                return DARK, f"{cam}: mean brightness {brightness:.1f} < {self.dark_level:g}"
            key = hash(f[::4, ::4].tobytes())
            seen = self._seen.get(cam)
            if seen is None or seen[0] != key:  # a new picture: the camera is alive
                self._seen[cam] = [key, state_key, None]
                continue
            if seen[2] is None and state_key != seen[1]:
                seen[2] = now  # the arm has moved since the picture last changed
            if seen[2] is not None and now - seen[2] > self.frozen_after:
                moving = (now - seen[2]) * 1e3
                return FROZEN, f"{cam}: unchanged while the arm moved for {moving:.0f} ms"
        return None
