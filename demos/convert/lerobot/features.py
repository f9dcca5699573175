"""LeRobot features <-> demo-folder keys, both ways, and the meta/info.json that says them.

Reading: which LeRobot feature becomes the action, which a state key, which a camera, and their
sizes. Writing: the ``features`` and the rest of meta/info.json for a demo folder's keys.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any

from ...errors import DemoFolderError, Problem
from ...schema import DatasetInfo
from .files import _read_json
from .layout import DATA_PATH, FLOAT_DTYPES, INDEX_KEYS, INFO, VERSIONS, VIDEO_PATH


@dataclass
class _Source:
    """What meta/info.json says: where the files are, and which feature becomes what."""

    root: Path
    version: str
    fps: float
    robot: str
    data_path: str
    video_path: str
    chunks_size: int
    action_dim: int
    state: dict[str, tuple[str, int]]  # LeRobot key -> (state key, dim)
    cameras: dict[str, tuple[str, tuple[int, int], str]]  # key -> (camera, (h, w), dtype)


def _read_source(root: Path) -> _Source:
    info = _read_json(root / INFO, INFO)
    version = info.get("codebase_version")
    if version not in VERSIONS:
        raise DemoFolderError(
            f"codebase_version {version!r} is not supported (this reads {', '.join(VERSIONS)})",
            INFO,
        )
    missing = [k for k in ("fps", "data_path", "features") if k not in info]
    if missing:
        raise DemoFolderError([Problem(INFO, f"{k} is missing") for k in missing])
    features = info["features"]
    if "action" not in features:
        raise DemoFolderError("features.action is missing", INFO)
    state, cameras = {}, {}
    for key, ft in features.items():
        dtype = ft.get("dtype")
        if key == "action" or key in INDEX_KEYS:
            continue
        if dtype in ("video", "image"):
            cameras[key] = (_strip(key, "observation.images.", "observation."), _hw(key, ft), dtype)
        elif dtype in FLOAT_DTYPES:
            state[key] = (_strip(key, "observation.").replace(".", "_"), _dim(key, ft))
    state_names = [name for name, _ in state.values()]
    for kind, names in (("state key", state_names), ("camera", [c[0] for c in cameras.values()])):
        dups = sorted({n for n in names if names.count(n) > 1})
        if dups:
            raise DemoFolderError(f"features map to the same {kind} {dups}", INFO)
    return _Source(
        root=root,
        version=version,
        fps=float(info["fps"]),
        robot=info.get("robot_type") or "unknown",
        data_path=info["data_path"],
        video_path=info.get("video_path") or "",
        chunks_size=int(info.get("chunks_size", 1000)),
        action_dim=_dim("action", features["action"]),
        state=state,
        cameras=cameras,
    )


def _strip(key: str, *prefixes: str) -> str:
    return next((key[len(p) :] for p in prefixes if key.startswith(p)), key)


def _dim(key: str, ft: dict) -> int:
    shape = ft.get("shape")
    if not isinstance(shape, list) or not all(isinstance(s, int) and s > 0 for s in shape):
        raise DemoFolderError(f"features.{key}.shape must be a list of sizes, got {shape!r}", INFO)
    return math.prod(shape)


def _hw(key: str, ft: dict) -> tuple[int, int]:
    """Height and width; ``names`` tells whether the shape is (h, w, c) or (c, h, w)."""
    shape, names = ft.get("shape"), ft.get("names") or []
    _dim(key, ft)
    if len(shape) != 3:
        raise DemoFolderError(f"features.{key}.shape must be 3 sizes, got {shape!r}", INFO)
    channels_first = bool(names) and names[0] in ("channel", "channels")
    return (shape[1], shape[2]) if channels_first else (shape[0], shape[1])


def _features(info: DatasetInfo, keys: dict, cams: dict, codec: str) -> dict[str, dict]:
    """features of meta/info.json, in the order LeRobot writes them."""

    def vector(dim: int, prefix: str) -> dict:
        return {"dtype": "float32", "shape": [dim], "names": [f"{prefix}_{i}" for i in range(dim)]}

    fps = int(info.fps) if float(info.fps).is_integer() else info.fps
    feats = {}
    for key, names in keys.items():  # feature -> the state keys it concatenates
        dims = [(n, info.state[n]) for n in names]
        feats[key] = {"dtype": "float32", "shape": [sum(d for _, d in dims)],
                      "names": [f"{n}_{i}" for n, d in dims for i in range(d)]}  # fmt: skip
    for cam, key in cams.items():
        h, w = info.cameras[cam]
        video = {"video.height": h, "video.width": w, "video.codec": codec}
        video |= {"video.pix_fmt": "yuv420p", "video.is_depth_map": False, "video.fps": fps}
        video |= {"video.channels": 3, "has_audio": False}
        names = ["height", "width", "channels"]
        feats[key] = {"dtype": "video", "shape": [h, w, 3], "names": names, "info": video}
    feats["action"] = vector(info.action_dim, info.action_name)
    feats["timestamp"] = {"dtype": "float32", "shape": [1], "names": None}
    return feats | {key: {"dtype": "int64", "shape": [1], "names": None} for key in INDEX_KEYS[1:]}


def _info_json(
    info: DatasetInfo, rate: Fraction, episodes: list, tasks: dict, features: dict
) -> dict[str, Any]:
    n = len(episodes)
    return {
        "codebase_version": "v3.0",
        "robot_type": info.robot,
        "total_episodes": n,
        "total_frames": sum(r["length"] for r in episodes),
        "total_tasks": len(tasks),
        "chunks_size": 1000,
        "data_files_size_in_mb": 100,
        "video_files_size_in_mb": 200,
        "fps": int(rate) if rate.denominator == 1 else float(rate),
        "splits": {"train": f"0:{n}"},
        "data_path": DATA_PATH,
        "video_path": VIDEO_PATH if any(f["dtype"] == "video" for f in features.values()) else None,
        "features": features,
    }
