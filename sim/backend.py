"""Importing robosuite: the GL backend chosen first, its known-harmless start-up chatter muted."""

from __future__ import annotations

import logging
import sys

from .render import import_mujoco

# Lines robosuite logs on every import or env build that need no action here: no private macro
# file, the optional robosuite_models / mink packages, and which controller file it loaded.
_HARMLESS = (
    "private macro file",
    "setup_macros.py",
    "robosuite_models",
    "mink-based whole-body IK",
    "Loading controller configuration",
)


class _MuteHarmless(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        msg = record.getMessage()
        return not any(s in msg for s in _HARMLESS)


def import_robosuite():
    """robosuite, imported after mujoco (so a broken GL backend raises RendererError)."""
    if "robosuite" in sys.modules:
        return sys.modules["robosuite"]
    import_mujoco()
    logger = logging.getLogger("robosuite_logs")
    if not any(isinstance(f, _MuteHarmless) for f in logger.filters):
        logger.addFilter(_MuteHarmless())
    import robosuite

    return robosuite
