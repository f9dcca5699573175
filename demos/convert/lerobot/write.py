"""Demo folder -> LeRobot v3.0 dataset: ``export_lerobot``.

Builds the data Parquet, meta/episodes, meta/tasks, meta/stats.json and meta/info.json as
LeRobot 0.4 writes them, and the per-camera videos through ``mp4``, in a staging folder.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
from tqdm import tqdm

from ...atomic import staging_dir
from ...errors import DemoFolderError
from ...folder import DemoFolder
from ...schema import DATASET_JSON, DatasetInfo
from .features import _features, _info_json
from .files import _write_json, _write_parquet
from .layout import DATA_PATH, EPISODES_PATH, INFO
from .mp4 import _codec_name, _Mp4, _video_rel
from .stats import _aggregate, _image_stats, _jsonable, _stats

ENV_STATE_KEYS = ("object",)  # state keys that describe the scene, not the robot
EMBEDDING_SUFFIX = "_emb"  # a camera's frozen embedding (policies.embeddings), scene too


def policy_groups(info: DatasetInfo, scene: bool = True) -> dict[str, list[str]]:
    """The layout LeRobot's policies read: the robot's state keys concatenated as
    ``observation.state``, the scene's (``ENV_STATE_KEYS``, and frozen camera embeddings
    ``<camera>_emb``) as ``observation.environment_state`` (``scene=False``: without the
    object poses, for camera-only policies; pass them as ``drop``)."""
    seen = [k for k in info.state if k.endswith(EMBEDDING_SUFFIX)]
    robot = [k for k in info.state if k not in ENV_STATE_KEYS and k not in seen]
    objects = [k for k in info.state if k in ENV_STATE_KEYS] if scene else []
    groups = {"observation.state": robot} if robot else {}
    return groups | ({"observation.environment_state": objects + seen} if objects + seen else {})


def scene_keys(info: DatasetInfo) -> list[str]:
    """The state keys that describe the scene (what a real arm has no sensor for)."""
    return [k for k in info.state if k in ENV_STATE_KEYS]


def export_lerobot(
    demo_dir: str | Path,
    out: str | Path,
    *,
    groups: dict[str, list[str]] | None = None,
    drop: Sequence[str] = (),
    progress: bool = True,
) -> Path:
    """Write demo folder ``demo_dir`` as a new LeRobot v3.0 dataset ``out``.

    LeRobot assumes a constant rate and finds frames by timestamp, so timestamps are written
    as t / fps; each camera gets one H.264 mp4 holding all episodes back to back.
    State key ``k`` becomes ``observation.k``, camera ``c`` becomes ``observation.images.c``;
    ``groups`` (feature -> state keys, e.g. ``policy_groups(info)``) concatenates keys into one
    feature instead, its names ``<key>_<i>`` saying which values came from where. State keys
    in ``drop`` are left out (a camera-only export has no object poses).
    """
    folder = DemoFolder(demo_dir)
    info, ids = folder.info, folder.episode_ids
    _check_exportable(info, ids)
    rate = Fraction(info.fps).limit_denominator(1001)
    keys = _state_features(info, groups or {}, drop)
    cams = {cam: f"observation.images.{cam}" for cam in info.cameras}
    tasks: dict[str, int] = {}  # task -> task_index, in order of first use as LeRobot does
    columns: dict[str, list[np.ndarray]] = {}
    episodes: list[dict[str, Any]] = []  # rows of meta/episodes, stats included
    with staging_dir(out) as tmp:
        videos = {
            cam: _Mp4(tmp / _video_rel(key), rate, info.cameras[cam]) for cam, key in cams.items()
        }
        try:
            for e, ep in enumerate(
                tqdm(ids, desc="export lerobot", unit="episode", disable=not progress)
            ):
                start = sum(r["length"] for r in episodes)
                cols = _episode_columns(folder, ep, e, start, keys, tasks, rate)
                for name, value in cols.items():
                    columns.setdefault(name, []).append(value)
                row = _episode_row(e, start, cols, task=list(tasks)[cols["task_index"][0]])
                for cam, key in cams.items():
                    row |= _episode_video(folder, ep, cam, key, videos[cam], start, row["length"])
                episodes.append(
                    row | {"meta/episodes/chunk_index": 0, "meta/episodes/file_index": 0}
                )
        finally:
            for video in videos.values():
                video.close()
        features = _features(info, keys, cams, _codec_name())
        _write_data(tmp, {name: np.concatenate(parts) for name, parts in columns.items()}, features)
        _write_episodes(tmp, episodes)
        _write_tasks(tmp, tasks)
        stats = {name: _aggregate(episodes, name) for name in features}
        _write_json(tmp / "meta/stats.json", _jsonable(stats))
        _write_json(tmp / INFO, _info_json(info, rate, episodes, tasks, features))
    return Path(out)


def _state_features(
    info: DatasetInfo, groups: dict[str, list[str]], drop: Sequence[str] = ()
) -> dict[str, list[str]]:
    """Feature name -> the state keys it holds, in order: the groups, then every other key
    not in ``drop``."""
    grouped = [k for ks in groups.values() for k in ks]
    unknown = sorted(set(grouped) - set(info.state))
    if unknown or len(grouped) != len(set(grouped)):
        raise DemoFolderError(f"state keys {unknown or grouped} cannot be grouped "
                              f"(keys: {list(info.state)})", DATASET_JSON)  # fmt: skip
    unknown = sorted(set(drop) - set(info.state))
    if unknown or set(drop) & set(grouped):
        raise DemoFolderError(f"state keys {unknown or sorted(set(drop) & set(grouped))} cannot "
                              f"be left out (keys: {list(info.state)})", DATASET_JSON)  # fmt: skip
    rest = {f"observation.{k}": [k] for k in info.state if k not in grouped and k not in drop}
    return {**{feat: list(ks) for feat, ks in groups.items() if ks}, **rest}


def _check_exportable(info: DatasetInfo, ids: list[str]) -> None:
    if not ids:
        raise DemoFolderError("holds no episode", "episodes/")
    for cam, (h, w) in info.cameras.items():
        if h % 2 or w % 2:
            raise DemoFolderError(
                f"cameras.{cam} is {h}x{w}: H.264 in yuv420p needs even sizes", DATASET_JSON
            )


def _episode_columns(
    folder: DemoFolder, ep: str, e: int, start: int, keys: dict, tasks: dict, rate: Fraction
) -> dict[str, np.ndarray]:
    """One episode's rows of the data Parquet, column by column."""
    a = folder.read_lowdim(ep)
    T = len(a["action"])
    task = folder.info.tasks[int(a["task_index"])] if "task_index" in a else ""
    return {feat: np.concatenate([a[k] for k in ks], axis=1) for feat, ks in keys.items()} | {
        "action": a["action"],
        "timestamp": (np.arange(T) / float(rate)).astype(np.float32),
        "frame_index": np.arange(T, dtype=np.int64),
        "episode_index": np.full(T, e, np.int64),
        "index": np.arange(start, start + T, dtype=np.int64),
        "task_index": np.full(T, tasks.setdefault(task, len(tasks)), np.int64),
    }


def _episode_row(e: int, start: int, cols: dict[str, np.ndarray], task: str) -> dict[str, Any]:
    """The episode's row of meta/episodes, before its videos."""
    T = len(cols["action"])
    row = {
        "episode_index": e,
        "tasks": [task],
        "length": T,
        "data/chunk_index": 0,
        "data/file_index": 0,
        "dataset_from_index": start,
        "dataset_to_index": start + T,
    }
    return row | {f"stats/{n}/{s}": v for n, c in cols.items() for s, v in _stats(c).items()}


def _episode_video(
    folder: DemoFolder, ep: str, cam: str, key: str, video: _Mp4, start: int, T: int
) -> dict[str, Any]:
    """Append the episode's frames to the camera's mp4; return its meta/episodes columns."""
    frames = folder.read_frames(ep, cam)
    if len(frames) != T:
        raise DemoFolderError(
            f"has {len(frames)} frames, lowdim.npz has {T} actions", folder.rel(ep, f"{cam}.mp4")
        )
    video.write(frames)
    row = {
        f"videos/{key}/chunk_index": 0,
        f"videos/{key}/file_index": 0,
        f"videos/{key}/from_timestamp": float(start / video.rate),
        f"videos/{key}/to_timestamp": float((start + T) / video.rate),
    }
    return row | {f"stats/{key}/{s}": v for s, v in _image_stats(frames).items()}


def _list_type(leaf: pa.DataType, depth: int = 1, size: int = -1) -> pa.DataType:
    """``depth`` nested lists of ``leaf``, the innermost of fixed ``size`` if given."""
    t = pa.list_(leaf, size)
    for _ in range(depth - 1):
        t = pa.list_(t)
    return t


def _write_data(root: Path, data: dict[str, np.ndarray], features: dict[str, dict]) -> None:
    """The frames' rows; the huggingface metadata tells `datasets` the feature types."""
    arrays, hf = {}, {}
    for name, ft in features.items():
        if ft["dtype"] == "video":
            continue
        if ft["shape"] == [1]:  # a plain column: LeRobot reads shape (1,) as a scalar Value
            arrays[name] = pa.array(data[name].reshape(-1).astype(ft["dtype"]))
            hf[name] = {"dtype": ft["dtype"], "_type": "Value"}
        else:
            dim = ft["shape"][0]
            flat = pa.array(data[name].astype(np.float32).reshape(-1))
            arrays[name] = pa.FixedSizeListArray.from_arrays(
                flat, type=_list_type(pa.float32(), size=dim)
            )
            value = {"dtype": "float32", "_type": "Value"}
            hf[name] = {"feature": value, "length": dim, "_type": "List"}
    meta = {"huggingface": json.dumps({"info": {"features": hf}})}
    _write_parquet(root / DATA_PATH.format(chunk_index=0, file_index=0), pa.table(arrays), meta)


def _write_episodes(root: Path, episodes: list[dict[str, Any]]) -> None:
    columns = {}
    for name in episodes[0]:
        values = [r[name] for r in episodes]
        if name.startswith("stats/"):
            a = np.asarray(values)
            leaf = pa.int64() if a.dtype.kind in "iu" else pa.float64()
            columns[name] = pa.array([v.tolist() for v in values], _list_type(leaf, a.ndim - 1))
        else:
            columns[name] = pa.array(values, pa.float64() if isinstance(values[0], float) else None)
    _write_parquet(root / EPISODES_PATH, pa.table(columns))


def _write_tasks(root: Path, tasks: dict[str, int]) -> None:
    """The task strings as the pandas index, as LeRobot's ``DataFrame.to_parquet`` writes it."""

    def column(name: str | None, field: str | None, kind: str, dtype: str) -> dict:
        return {"name": name, "field_name": field, "pandas_type": kind, "numpy_type": dtype}

    index = "__index_level_0__"
    pandas = {
        "index_columns": [index],
        "column_indexes": [
            column(None, None, "unicode", "object") | {"metadata": {"encoding": "UTF-8"}}
        ],
        "columns": [
            column("task_index", "task_index", "int64", "int64") | {"metadata": None},
            column(None, index, "unicode", "object") | {"metadata": None},
        ],
        "attributes": {},
        "creator": {"library": "pyarrow", "version": pa.__version__},
    }
    table = pa.table(
        {
            "task_index": pa.array(list(tasks.values()), pa.int64()),
            index: pa.array(list(tasks), pa.large_string()),
        }
    )
    _write_parquet(root / "meta/tasks.parquet", table, {"pandas": json.dumps(pandas)})
