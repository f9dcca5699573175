"""Where Debian's ROS 1 Python packages are, for processes that must speak ROS natively.

The deploy loop never needs rospy: it reaches the arm through rosbridge (roslibpy, pure
Python). Only ROS *peers* do (the tests' rosmaster-side nodes and rosbridge server). Those run
with this venv's interpreter and call ``use_ros_python()`` first: it *appends* the ROS
dist-packages folder to ``sys.path``, so the venv's packages (numpy, robosuite, ...) still win
and nothing of Debian's Python leaks into the venv itself (no ``.pth`` file). Debian bookworm's
Python is 3.11 like the venv, so its pure-Python ROS packages import unchanged.

``UVDIFF_ROS_PYTHONPATH`` overrides the folder (e.g. /opt/ros/noetic/lib/python3/dist-packages).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

CANDIDATES = ("/opt/ros/noetic/lib/python3/dist-packages", "/usr/lib/python3/dist-packages")


def ros_python_path() -> str | None:
    """The folder holding ``rospy``, or None when ROS 1 is not installed."""
    env = os.environ.get("UVDIFF_ROS_PYTHONPATH")
    for folder in ([env] if env else []) + list(CANDIDATES):
        if (Path(folder) / "rospy" / "__init__.py").is_file():
            return folder
    return None


def use_ros_python() -> str:
    """Make ``import rospy`` work in this process; the folder added. Raises ImportError."""
    folder = ros_python_path()
    if folder is None:
        raise ImportError(
            "rospy not found: apt-get install python3-rospy python3-rosmaster (or set "
            "UVDIFF_ROS_PYTHONPATH to the folder holding rospy)"
        )
    if folder not in sys.path:
        sys.path.append(folder)
    return folder
