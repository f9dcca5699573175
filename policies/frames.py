"""Camera frames at the size a checkpoint was trained on, whatever size the camera delivers.

A policy records each camera's training size; at evaluation or on the arm the same camera may
deliver another resolution. A frame of the same aspect ratio is resized to the training size
(area averaging when shrinking, bilinear when growing: what ``uvdiff-train image_size=``
does to the demo frames); another aspect ratio would stretch the scene, so it is refused with
the camera's name and both shapes.
"""

from __future__ import annotations

from typing import Any

import numpy as np

ASPECT_TOLERANCE = 0.01  # relative: 84x84 against 480x480 is the same, 640x480 is not


class FrameShapeError(ValueError):
    """A camera frame that cannot become the trained size (wrong type or aspect ratio)."""


def fit_frame(frame: Any, size: tuple[int, int], camera: str, what: str = "observation"):
    """``frame`` as uint8 (h, w, 3) RGB at ``size`` = (h, w)."""
    a = np.asarray(frame)
    h, w = int(size[0]), int(size[1])
    if a.ndim != 3 or a.shape[-1] != 3 or a.dtype != np.uint8:
        raise FrameShapeError(
            f"{what} {camera!r} is {a.dtype} {a.shape}, the checkpoint expects uint8 "
            f"(H, W, 3) RGB ({h}, {w} when trained)"
        )
    if a.shape[:2] == (h, w):
        return a
    src_h, src_w = a.shape[:2]
    if abs((src_w / src_h) / (w / h) - 1) > ASPECT_TOLERANCE:
        raise FrameShapeError(
            f"{what} {camera!r} is {src_h}x{src_w} (height x width), the checkpoint was trained "
            f"on {h}x{w}: another aspect ratio ({src_w / src_h:.3f} against {w / h:.3f}); crop "
            "the camera image to the trained aspect ratio first"
        )
    import cv2

    shrink = src_h * src_w > h * w
    return cv2.resize(a, (w, h), interpolation=cv2.INTER_AREA if shrink else cv2.INTER_LINEAR)
