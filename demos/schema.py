"""dataset.json: what every episode of a demo folder shares (format version 1)."""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .atomic import read_json_object
from .errors import DemoFolderError, Problem

FORMAT_VERSION = 1
DATASET_JSON = "dataset.json"
ACTION_KINDS = ("delta_ee", "absolute_ee", "joint_position", "joint_velocity", "other")
# Arrays in lowdim.npz that are not state keys.
RESERVED_KEYS = frozenset({"timestamp", "action", "stage", "success", "task_index"})
_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_.\-]*$")


@dataclass
class DatasetInfo:
    """The schema of a demo folder, as stored in dataset.json."""

    fps: float
    action_dim: int
    state: dict[str, int] = field(default_factory=dict)
    cameras: dict[str, tuple[int, int]] = field(default_factory=dict)
    robot: str = "unknown"
    action_name: str = "action"
    action_kind: str = "other"
    tasks: list[str] = field(default_factory=list)
    format_version: int = FORMAT_VERSION

    def to_json(self) -> dict[str, Any]:
        return {
            "format_version": self.format_version,
            "fps": self.fps,
            "robot": self.robot,
            "action": {"name": self.action_name, "dim": self.action_dim, "kind": self.action_kind},
            "state": dict(self.state),
            "cameras": {k: [int(h), int(w)] for k, (h, w) in self.cameras.items()},
            "tasks": list(self.tasks),
        }

    @classmethod
    def from_json(cls, obj: Any, path: str = DATASET_JSON) -> DatasetInfo:
        problems = check_dataset_json(obj, path)
        if problems:
            raise DemoFolderError(problems)
        return cls(
            format_version=obj["format_version"],
            fps=float(obj["fps"]),
            robot=obj.get("robot", "unknown"),
            action_name=obj["action"].get("name", "action"),
            action_dim=int(obj["action"]["dim"]),
            action_kind=obj["action"].get("kind", "other"),
            state={k: int(v) for k, v in obj.get("state", {}).items()},
            cameras={k: (int(v[0]), int(v[1])) for k, v in obj.get("cameras", {}).items()},
            tasks=list(obj.get("tasks", [])),
        )

    @classmethod
    def load(cls, folder: str | Path) -> DatasetInfo:
        path = Path(folder) / DATASET_JSON
        missing = f"{Path(folder)} is not a demo folder"
        return cls.from_json(read_json_object(path, DATASET_JSON, missing))

    def check_compatible(self, other: DatasetInfo) -> list[str]:
        """Differences that forbid appending episodes of ``other`` to a folder of ``self``."""
        diffs = []
        for name in ("fps", "action_dim", "state", "cameras", "action_kind"):
            a, b = getattr(self, name), getattr(other, name)
            if a != b:
                diffs.append(f"{name} is {a!r} in the folder, {b!r} in the new data")
        return diffs


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def check_dataset_json(obj: Any, path: str = DATASET_JSON) -> list[Problem]:
    """Every schema fault of a parsed dataset.json, each naming the field and value."""
    if not isinstance(obj, dict):
        return [Problem(path, f"must be a JSON object, got {type(obj).__name__}")]
    out: list[Problem] = []

    def bad(msg: str) -> None:
        out.append(Problem(path, msg))

    version = obj.get("format_version")
    if version is None:
        bad("format_version is missing")
    elif not _is_int(version):
        bad(f"format_version must be an integer, got {version!r}")
    elif version > FORMAT_VERSION:
        bad(
            f"format_version {version} is newer than this uvdiff reads ({FORMAT_VERSION}); "
            "upgrade uvdiff"
        )
        return out  # a future schema: the other fields may mean something else
    elif version < 1:
        bad(f"format_version {version} is not a valid version (1 is the first)")

    fps = obj.get("fps")
    is_number = isinstance(fps, int | float) and not isinstance(fps, bool)
    if not is_number or not math.isfinite(fps) or fps <= 0:
        bad(f"fps must be a positive number, got {fps!r}")

    action = obj.get("action")
    if not isinstance(action, dict):
        bad(f"action must be an object {{name, dim, kind}}, got {action!r}")
    else:
        dim = action.get("dim")
        if not _is_int(dim) or dim < 1:
            bad(f"action.dim must be a positive integer, got {dim!r}")
        kind = action.get("kind", "other")
        if kind not in ACTION_KINDS:
            bad(f"action.kind {kind!r} is not one of {', '.join(ACTION_KINDS)}")

    state = obj.get("state", {})
    if not isinstance(state, dict):
        bad(f"state must map key -> dim, got {state!r}")
    else:
        for key, dim in state.items():
            if key in RESERVED_KEYS or not _NAME.match(key):
                bad(f"state key {key!r} is reserved or not a valid name")
            if not _is_int(dim) or dim < 1:
                bad(f"state.{key} must be a positive integer dim, got {dim!r}")

    cameras = obj.get("cameras", {})
    if not isinstance(cameras, dict):
        bad(f"cameras must map name -> [h, w], got {cameras!r}")
    else:
        for cam, hw in cameras.items():
            if not _NAME.match(cam):
                bad(f"camera name {cam!r} is not a valid file name")
            ok = isinstance(hw, list | tuple) and len(hw) == 2 and all(_is_int(v) for v in hw)
            if not ok or min(hw) < 1:
                bad(f"cameras.{cam} must be [height, width], got {hw!r}")

    tasks = obj.get("tasks", [])
    if not isinstance(tasks, list) or not all(isinstance(t, str) for t in tasks):
        bad(f"tasks must be a list of strings, got {tasks!r}")
    return out
