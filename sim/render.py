"""Offscreen camera frames for a MuJoCo model, upright, with an optional cheap look.

robosuite's own camera observables render upside down (OpenGL convention) with shadows,
reflections and 4x multisampling, which costs most of an env step on a CPU (llvmpipe).
This renderer owns its GL context, so ``fast`` can turn those three off for this model only.
"""

from __future__ import annotations

import os
import sys

import numpy as np

from .errors import RendererError

# MUJOCO_GL is read once, when mujoco is first imported: EGL is the backend that works headless.
os.environ.setdefault("MUJOCO_GL", "egl")

_INSTALL_HINT = {
    "egl": "install EGL and Mesa (Debian: apt-get install libegl1 libgl1 libgl1-mesa-dri)",
    "osmesa": "install OSMesa (Debian: apt-get install libosmesa6) or use MUJOCO_GL=egl "
    "(apt-get install libegl1 libgl1)",
    "glfw": "GLFW needs a display (DISPLAY is unset on a headless machine); "
    "use MUJOCO_GL=egl and apt-get install libegl1 libgl1",
}


def gl_backend() -> str:
    """The MUJOCO_GL value mujoco was (or will be) imported with. (robosuite rewrites the
    variable after mujoco has read it, so ask mujoco first.)"""
    used = getattr(sys.modules.get("mujoco.gl_context"), "_MUJOCO_GL", None)
    if used is None:
        used = os.environ.get("MUJOCO_GL", "")
    return used or "glfw"


def renderer_error(cause: BaseException, what: str = "the offscreen renderer") -> RendererError:
    """A RendererError naming the backend tried, the cause, and what to install."""
    gl = gl_backend()
    hint = _INSTALL_HINT.get(gl.lower(), "set MUJOCO_GL=egl and apt-get install libegl1 libgl1")
    return RendererError(
        f"{what} could not start with MUJOCO_GL={gl} ({type(cause).__name__}: {cause}); {hint}"
    )


def import_mujoco():
    """Import mujoco; a GL backend that cannot load turns into a RendererError."""
    if "mujoco" in sys.modules:
        return sys.modules["mujoco"]
    try:
        import mujoco
    except (ImportError, AttributeError, OSError, RuntimeError) as e:
        raise renderer_error(e, "mujoco (imported with its GL backend)") from e
    return mujoco


class FrameRenderer:
    """Renders named cameras of one model at one size to upright RGB uint8 frames."""

    def __init__(self, model, height: int, width: int, *, fast: bool = True):
        mujoco = import_mujoco()
        if fast:
            # Shadow maps and multisample buffers are allocated with the GL context: off first.
            model.vis.quality.shadowsize = 0
            model.vis.quality.offsamples = 0
        # The framebuffer must hold the image.
        model.vis.global_.offwidth = max(model.vis.global_.offwidth, width)
        model.vis.global_.offheight = max(model.vis.global_.offheight, height)
        # A Renderer whose __init__ fails still runs __del__ -> close(), which trips over the
        # contexts __init__ never set; set them first so a failed start stays one clear error.
        renderer = mujoco.Renderer.__new__(mujoco.Renderer)
        renderer._gl_context = renderer._mjr_context = None
        try:
            renderer.__init__(model, height, width)
        except Exception as e:  # mujoco.FatalError, GLFW/EGL errors: all mean "no GL here"
            raise renderer_error(e) from e
        self._renderer = renderer
        # robosuite keeps collision geoms in group 0 and visual meshes in group 1: show the latter
        self._option = mujoco.MjvOption()
        self._option.geomgroup[0] = 0
        if fast:
            flags = self._renderer.scene.flags
            flags[mujoco.mjtRndFlag.mjRND_SHADOW] = 0
            flags[mujoco.mjtRndFlag.mjRND_REFLECTION] = 0
        self.size = (height, width)

    def render(self, data, camera: str) -> np.ndarray:
        """One (H, W, 3) uint8 frame of ``camera``, row 0 at the top of the picture."""
        self._renderer.update_scene(data, camera=camera, scene_option=self._option)
        return self._renderer.render()  # mujoco.Renderer flips OpenGL's bottom-up rows

    def close(self) -> None:
        self._renderer.close()
