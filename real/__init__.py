"""Real robot: the Robot protocol, ROS bridge, control loop and safety shield."""

from .config import ActionSpec, ConfigError, RobotSpec, ShieldSpec
from .deploy import deploy, make_robot
from .loop import LoopConfig, LoopReport, run_loop
from .record import RecordResult, record
from .robot import EStopped, Observation, Robot, RobotError
from .rosbridge import RosbridgeRobot
from .shield import Shield

__all__ = [
    "ActionSpec",
    "ConfigError",
    "EStopped",
    "LoopConfig",
    "LoopReport",
    "Observation",
    "RecordResult",
    "Robot",
    "RobotError",
    "RobotSpec",
    "RosbridgeRobot",
    "Shield",
    "ShieldSpec",
    "deploy",
    "make_robot",
    "record",
    "run_loop",
]
