"""LeRobot dataset -> demo folder: ``import_lerobot``.

Locates each episode's rows and frames (v3.0 through meta/episodes, v2.1 one file per episode),
reads and checks them, and writes them into a new demo folder through a staging folder.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
from tqdm import tqdm

from ...atomic import staging_dir
from ...episode import Episode
from ...errors import DemoFolderError, Problem
from ...folder import DemoFolder
from ...schema import DatasetInfo
from ...video import read_video_pts
from .features import _read_source, _Source
from .files import _read_jsonl, _read_parquet
from .layout import _VIDEO_COLUMNS, INFO


@dataclass
class _EpisodeRef:
    """Where one episode's rows and frames are."""

    index: int
    length: int
    tasks: list[str]
    data: str  # Parquet file, relative to the dataset root
    videos: dict[str, tuple[str, float, float]]  # key -> (mp4, from_timestamp, to_timestamp)


def import_lerobot(src: str | Path, out: str | Path, *, progress: bool = True) -> DemoFolder:
    """Convert a LeRobot dataset (codebase v3.0 or v2.1) into a new demo folder ``out``.

    ``action`` becomes the action, float features the state (``observation.`` stripped),
    video and image features the cameras. Raises DemoFolderError naming file and field.
    """
    source = _read_source(Path(src))
    refs = _episodes_v3(source) if source.version == "v3.0" else _episodes_v21(source)
    tasks = _read_tasks(source)
    info = DatasetInfo(
        fps=source.fps,
        action_dim=source.action_dim,
        state={name: dim for name, dim in source.state.values()},
        cameras={cam: hw for cam, hw, _ in source.cameras.values()},
        robot=source.robot,
        tasks=[tasks[i] for i in sorted(tasks) if tasks[i]],
    )
    cache: dict[str, tuple[str, Any]] = {}  # the last file read per slot: each is read once
    with staging_dir(out) as tmp:
        try:
            folder = DemoFolder.create(tmp, info)
        except DemoFolderError as e:
            problems = [
                Problem(INFO, f"no demo folder can hold this: {p.message}") for p in e.problems
            ]
            raise DemoFolderError(problems) from None
        for ref in tqdm(refs, desc="import lerobot", unit="episode", disable=not progress):
            episode = _read_episode(source, ref, tasks, cache)
            try:
                folder.add_episode(episode)
            except DemoFolderError as e:
                where = f"{ref.data} (episode {ref.index})"
                raise DemoFolderError([Problem(where, p.message) for p in e.problems]) from None
    return DemoFolder(out)


def _episodes_v3(source: _Source) -> list[_EpisodeRef]:
    files = sorted((source.root / "meta" / "episodes").glob("*/*.parquet"))
    if not files:
        raise DemoFolderError("missing: no Parquet file of episode metadata", "meta/episodes/")
    videos = [k for k, (_, _, dtype) in source.cameras.items() if dtype == "video"]
    columns = ["episode_index", "length", "tasks", "data/chunk_index", "data/file_index"]
    for key in videos:
        columns += [f"videos/{key}/{c}" for c in _VIDEO_COLUMNS]
    refs = []
    for path in files:
        rel = str(path.relative_to(source.root))
        rows = _read_parquet(path, rel, columns).to_pylist()
        for r in rows:
            data = source.data_path.format(
                chunk_index=r["data/chunk_index"], file_index=r["data/file_index"]
            )
            refs.append(
                _EpisodeRef(r["episode_index"], r["length"], list(r["tasks"] or []), data, {})
            )
            for key in videos:
                c = {n: r[f"videos/{key}/{n}"] for n in _VIDEO_COLUMNS}
                mp4 = source.video_path.format(
                    video_key=key, chunk_index=c["chunk_index"], file_index=c["file_index"]
                )
                refs[-1].videos[key] = (mp4, c["from_timestamp"], c["to_timestamp"])
    return sorted(refs, key=lambda r: r.index)


def _episodes_v21(source: _Source) -> list[_EpisodeRef]:
    refs = []
    rel = "meta/episodes.jsonl"
    for n, row in enumerate(_read_jsonl(source.root / rel, rel), 1):
        missing = [k for k in ("episode_index", "length") if k not in row]
        if missing:
            raise DemoFolderError(f"line {n}: {', '.join(missing)} missing", rel)
        ep = row["episode_index"]
        where = dict(episode_chunk=ep // source.chunks_size, episode_index=ep)
        videos = {
            key: (source.video_path.format(video_key=key, **where), 0.0, math.inf)
            for key, (_, _, dtype) in source.cameras.items()
            if dtype == "video"
        }
        tasks = list(row.get("tasks") or [])
        refs.append(_EpisodeRef(ep, row["length"], tasks, source.data_path.format(**where), videos))
    return sorted(refs, key=lambda r: r.index)


def _read_tasks(source: _Source) -> dict[int, str]:
    """task_index -> task string, from meta/tasks.parquet (v3.0) or meta/tasks.jsonl (v2.1)."""
    if source.version != "v3.0":
        rows = _read_jsonl(source.root / "meta/tasks.jsonl", "meta/tasks.jsonl")
        return {int(r["task_index"]): r["task"] for r in rows}
    rel = "meta/tasks.parquet"
    table = _read_parquet(source.root / rel, rel, ["task_index"], ["task", "__index_level_0__"])
    name = next((c for c in ("task", "__index_level_0__") if c in table.column_names), None)
    if name is None:
        raise DemoFolderError("has no task column (task or the pandas index)", rel)
    return dict(zip(table["task_index"].to_pylist(), table[name].to_pylist(), strict=True))


def _read_episode(source: _Source, ref: _EpisodeRef, tasks: dict[int, str], cache: dict) -> Episode:
    data = _cached(cache, "data", ref.data, lambda rel: _load_data(source, rel))
    rows = np.flatnonzero(data["episode_index"] == ref.index)
    if len(rows) != ref.length:
        raise DemoFolderError(
            f"has {len(rows)} rows of episode {ref.index}, its metadata says length {ref.length}",
            ref.data,
        )
    lowdim = {key: data[key][rows] for key in ("action", *source.state)}
    for key, a in lowdim.items():
        _check_finite(a, ref, key)
    ts = data["timestamp"][rows].astype(np.float64)
    task = tasks.get(int(data["task_index"][rows[0]])) if "task_index" in data else None
    if task is None and ref.tasks:
        task = ref.tasks[0]
    frames = {}
    for key, (cam, hw, dtype) in source.cameras.items():
        if dtype == "video":
            video, where = _video_frames(source, ref, key, cache), ref.videos[key][0]
        else:
            video, where = _image_frames(data[key][rows], ref.data, key), ref.data
        if video.shape[1:3] != hw:
            raise DemoFolderError(
                f"{key}: frames are {video.shape[1]}x{video.shape[2]}, "
                f"meta/info.json features.{key}.shape says {hw[0]}x{hw[1]}",
                where,
            )
        frames[cam] = video
    return Episode(
        action=lowdim["action"],
        state={name: lowdim[key] for key, (name, _) in source.state.items()},
        frames=frames,
        timestamp=ts - ts[0] if len(ts) else ts,
        task=task or None,  # LeRobot needs a task string; "" stands for none
    )


def _cached(cache: dict, slot: str, rel: str, load: Callable[[str], Any]) -> Any:
    """Keep only the last file per slot: episodes come in file order, so each is read once."""
    if cache.get(slot, (None,))[0] != rel:
        cache.pop(slot, None)  # free the previous file before reading the next
        cache[slot] = (rel, load(rel))
    return cache[slot][1]


def _load_data(source: _Source, rel: str) -> dict[str, np.ndarray]:
    images = [k for k, (_, _, dtype) in source.cameras.items() if dtype == "image"]
    required = ["action", "timestamp", "episode_index", *source.state, *images]
    table = _read_parquet(source.root / rel, rel, required, optional=["task_index"])
    out = {
        name: table[name].to_numpy()
        for name in ("timestamp", "episode_index", "task_index")
        if name in table.column_names
    }
    out["action"] = _floats(table["action"], source.action_dim, rel, "action")
    for key, (_, dim) in source.state.items():
        out[key] = _floats(table[key], dim, rel, key)
    for key in images:
        out[key] = table[key].combine_chunks().field("bytes").to_numpy(zero_copy_only=False)
    return out


def _floats(column: pa.ChunkedArray, dim: int, rel: str, key: str) -> np.ndarray:
    """A (nested) list column as float32 (rows, dim); its size must agree with info.json."""
    arr = column.combine_chunks()
    rows = len(arr)
    lists = (pa.types.is_list, pa.types.is_large_list, pa.types.is_fixed_size_list)
    while any(is_list(arr.type) for is_list in lists):
        arr = arr.flatten()
    if not (pa.types.is_floating(arr.type) or pa.types.is_integer(arr.type)):
        raise DemoFolderError(f"column {key!r} holds {arr.type}, expected numbers", rel)
    values = arr.to_numpy(zero_copy_only=False)
    if values.size != rows * dim:
        per_row = values.size / rows if rows else 0
        raise DemoFolderError(
            f"column {key!r} holds {per_row:g} values per row, "
            f"meta/info.json features.{key}.shape says {dim}",
            rel,
        )
    return values.astype(np.float32).reshape(rows, dim)


def _check_finite(a: np.ndarray, ref: _EpisodeRef, key: str) -> None:
    bad = ~np.isfinite(a)
    if bad.any():
        row = int(np.argwhere(bad)[0][0])
        raise DemoFolderError(
            f"column {key!r} has {int(bad.sum())} non-finite values in episode {ref.index} "
            f"(first at frame {row}: {a[row].tolist()})",
            ref.data,
        )


def _video_frames(source: _Source, ref: _EpisodeRef, key: str, cache: dict) -> np.ndarray:
    """The frames of one episode: those whose presentation time lies in [from, to)."""
    rel, start, stop = ref.videos[key]
    frames, pts = _cached(cache, key, rel, lambda r: _decode(source.root / r, r, key))
    half = 0.5 / source.fps  # tolerate pts rounding by the muxer, up to half a frame
    picked = frames[(pts >= start - half) & (pts < stop - half)]
    if len(picked) != ref.length:
        short = " (the video is shorter than the episode)" if len(picked) < ref.length else ""
        raise DemoFolderError(
            f"{key}: {len(picked)} frames lie in [{start:g}, {stop:g}) s, episode {ref.index} "
            f"has {ref.length} rows{short}",
            rel,
        )
    return picked


def _decode(path: Path, rel: str, key: str) -> tuple[np.ndarray, np.ndarray]:
    if not path.is_file():
        raise DemoFolderError(f"{key}: missing", rel)
    try:
        return read_video_pts(path)
    except DemoFolderError as e:
        raise DemoFolderError([Problem(rel, f"{key}: {p.message}") for p in e.problems]) from None


def _image_frames(encoded: np.ndarray, rel: str, key: str) -> np.ndarray:
    """Frames stored in Parquet as PNG/JPEG bytes (LeRobot's ``image`` dtype)."""
    import cv2

    frames = []
    for i, blob in enumerate(encoded):
        bgr = cv2.imdecode(np.frombuffer(blob or b"", np.uint8), cv2.IMREAD_COLOR)
        if bgr is None:
            raise DemoFolderError(f"column {key!r}: row {i} is not a decodable image", rel)
        frames.append(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB))
    return np.stack(frames) if frames else np.zeros((0, 0, 0, 3), np.uint8)
