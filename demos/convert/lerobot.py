"""LeRobot datasets on disk <-> demo folders.

``import_lerobot`` reads codebase v3.0 (many episodes share one Parquet and one mp4 per camera,
located through meta/episodes) and v2.1 (one Parquet and one mp4 per episode).
``export_lerobot`` writes v3.0 laid out as LeRobot 0.4 writes it, so LeRobot loads it as is.
Both build the result in a staging folder beside ``out``: a failure leaves nothing at ``out``.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from tqdm import tqdm

from ..atomic import staging_dir
from ..episode import Episode
from ..errors import DemoFolderError, Problem
from ..folder import DemoFolder
from ..schema import DATASET_JSON, DatasetInfo
from ..video import read_video_pts

INFO = "meta/info.json"
VERSIONS = ("v3.0", "v2.1")
INDEX_KEYS = ("timestamp", "frame_index", "episode_index", "index", "task_index")
FLOAT_DTYPES = ("float16", "float32", "float64")
QUANTILES = {"q01": 0.01, "q10": 0.10, "q50": 0.50, "q90": 0.90, "q99": 0.99}
DATA_PATH = "data/chunk-{chunk_index:03d}/file-{file_index:03d}.parquet"
VIDEO_PATH = "videos/{video_key}/chunk-{chunk_index:03d}/file-{file_index:03d}.mp4"
EPISODES_PATH = "meta/episodes/chunk-000/file-000.parquet"
_VIDEO_COLUMNS = ("chunk_index", "file_index", "from_timestamp", "to_timestamp")
IMAGE_STATS_FRAMES = 100  # image stats are computed on at most this many frames per episode


# ====================================================================== import


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


def _read_json(path: Path, rel: str) -> dict:
    if not path.is_file():
        raise DemoFolderError(f"missing: {path.parent.parent} is not a LeRobot dataset", rel)
    try:
        obj = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise DemoFolderError(f"not valid JSON ({e})", rel) from None
    if not isinstance(obj, dict):
        raise DemoFolderError(f"must be a JSON object, got {type(obj).__name__}", rel)
    return obj


def _read_jsonl(path: Path, rel: str) -> list[dict]:
    if not path.is_file():
        raise DemoFolderError("missing", rel)
    try:
        return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise DemoFolderError(f"not valid JSON lines ({e})", rel) from None


def _read_parquet(
    path: Path, rel: str, required: list[str], optional: tuple | list = ()
) -> pa.Table:
    """Only the named columns; every missing required column is reported."""
    if not path.is_file():
        raise DemoFolderError("missing", rel)
    try:
        names = pq.read_schema(path).names
        missing = [c for c in required if c not in names]
        if missing:
            raise DemoFolderError([Problem(rel, f"column {c!r} is missing") for c in missing])
        return pq.read_table(path, columns=[*required, *(c for c in optional if c in names)])
    except (pa.ArrowException, OSError) as e:
        raise DemoFolderError(f"cannot be read as Parquet ({e})", rel) from None


# ====================================================================== export


def export_lerobot(demo_dir: str | Path, out: str | Path, *, progress: bool = True) -> Path:
    """Write demo folder ``demo_dir`` as a new LeRobot v3.0 dataset ``out``.

    LeRobot assumes a constant rate and finds frames by timestamp, so timestamps are written
    as t / fps; each camera gets one H.264 mp4 holding all episodes back to back.
    State key ``k`` becomes ``observation.k``, camera ``c`` becomes ``observation.images.c``.
    """
    folder = DemoFolder(demo_dir)
    info, ids = folder.info, folder.episode_ids
    _check_exportable(info, ids)
    rate = Fraction(info.fps).limit_denominator(1001)
    keys = {name: f"observation.{name}" for name in info.state}
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
    return {keys[k]: a[k] for k in folder.info.state} | {
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


def _video_rel(key: str) -> str:
    return VIDEO_PATH.format(video_key=key, chunk_index=0, file_index=0)


def _codec() -> str:
    """libx264 where PyAV has it (its wheels do); MPEG-4 Part 2 otherwise."""
    import av

    return "libx264" if "libx264" in av.codecs_available else "mpeg4"


def _codec_name() -> str:
    return {"libx264": "h264"}.get(_codec(), _codec())


class _Mp4:
    """One growing mp4; frame n has pts n / fps, so episodes follow one another."""

    def __init__(self, path: Path, rate: Fraction, hw: tuple[int, int]):
        import av

        path.parent.mkdir(parents=True, exist_ok=True)
        self.rate, self.n, self.open = rate, 0, True
        self.container = av.open(str(path), "w")
        self.stream = self.container.add_stream(_codec(), rate=rate)
        self.stream.height, self.stream.width = hw
        self.stream.pix_fmt = "yuv420p"
        self.stream.codec_context.time_base = 1 / rate
        if _codec() == "libx264":  # GOP 2 as LeRobot: cheap random access when training
            self.stream.options = {"crf": "20", "g": "2", "bf": "0"}

    def write(self, frames: np.ndarray) -> None:
        import av

        for frame in frames:
            vf = av.VideoFrame.from_ndarray(np.ascontiguousarray(frame), format="rgb24")
            vf.pts, vf.time_base = self.n, 1 / self.rate
            self.container.mux(self.stream.encode(vf))
            self.n += 1

    def close(self) -> None:
        if self.open:
            self.open = False
            try:
                self.container.mux(self.stream.encode())
            finally:
                self.container.close()


def _stats(x: np.ndarray) -> dict[str, np.ndarray]:
    """Per-dimension min/max/mean/std/count/quantiles of (T, ...) values."""
    x = x.reshape(len(x), -1)
    f = x.astype(np.float64)
    out = {"min": x.min(0), "max": x.max(0), "mean": f.mean(0), "std": f.std(0)}
    out["count"] = np.array([len(x)], np.int64)
    return out | {name: np.quantile(f, q, axis=0) for name, q in QUANTILES.items()}


def _image_stats(frames: np.ndarray) -> dict[str, np.ndarray]:
    """Per-channel stats in [0, 1], shaped (3, 1, 1) as LeRobot stores them."""
    step = max(1, len(frames) // IMAGE_STATS_FRAMES)
    stats = _stats(frames[::step].reshape(-1, 3) / 255.0)
    stats = {k: v.reshape(3, 1, 1) for k, v in stats.items() if k != "count"}
    return stats | {"count": np.array([len(frames)], np.int64)}


def _aggregate(episodes: list[dict[str, Any]], name: str) -> dict[str, np.ndarray]:
    """Dataset stats from per-episode stats: exact min/max/mean/std, count-weighted quantiles."""

    def get(stat: str) -> np.ndarray:
        return np.stack([np.asarray(r[f"stats/{name}/{stat}"]) for r in episodes])

    n = get("count")[:, 0].astype(np.float64)
    w = (n / n.sum()).reshape(-1, *[1] * (get("mean").ndim - 1))
    mean = (w * get("mean")).sum(0)
    var = (w * (get("std") ** 2 + (get("mean") - mean) ** 2)).sum(0)
    out = {"min": get("min").min(0), "max": get("max").max(0), "mean": mean, "std": np.sqrt(var)}
    out["count"] = np.array([int(n.sum())], np.int64)
    return out | {q: (w * get(q)).sum(0) for q in QUANTILES}


def _features(info: DatasetInfo, keys: dict, cams: dict, codec: str) -> dict[str, dict]:
    """features of meta/info.json, in the order LeRobot writes them."""

    def vector(dim: int, prefix: str) -> dict:
        return {"dtype": "float32", "shape": [dim], "names": [f"{prefix}_{i}" for i in range(dim)]}

    fps = int(info.fps) if float(info.fps).is_integer() else info.fps
    feats = {key: vector(info.state[name], name) for name, key in keys.items()}
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


def _write_parquet(path: Path, table: pa.Table, metadata: dict | None = None) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(table.replace_schema_metadata(metadata) if metadata else table, path)


def _write_json(path: Path, obj: Any) -> None:
    path.write_text(json.dumps(obj, indent=4) + "\n")


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


def _jsonable(stats: dict[str, dict[str, np.ndarray]]) -> dict:
    return {name: {k: v.tolist() for k, v in st.items()} for name, st in stats.items()}
