"""One error family for the simulation package, raised where bad input enters it."""

from __future__ import annotations


class SimError(Exception):
    """Something the caller asked of the simulator cannot be done; the message says what."""


class UnknownEnvError(SimError, ValueError):
    """An env (or expert) name that is not in the registry; the message lists the valid ones."""


class RendererError(SimError, RuntimeError):
    """The offscreen renderer cannot start; the message names MUJOCO_GL and what to install."""
