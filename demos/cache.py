"""Derived data kept beside a demo folder so training never decodes video or parses npz twice.

``DEMO_DIR/cache/`` holds, each keyed by a fingerprint of its sources (names, sizes, mtimes):
- ``lowdim/``: every low-dim key of all episodes concatenated into one .npy, memory-mapped;
- ``frames/<h>x<w>/<episode>/<camera>.npy``: decoded, resized uint8 frames, memory-mapped;
- ``validated.json``: the fingerprint of the last folder that passed ``validate``.
Delete the folder at will: everything in it is rebuilt on demand.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from tqdm.auto import tqdm

from .atomic import atomic_path, atomic_write_json
from .episode import LOWDIM
from .folder import DemoFolder
from .validate import validate
from .video import iter_frames, resize_center_crop

CACHE = "cache"


def fingerprint(paths: list[Path]) -> str:
    """Cheap identity of a set of files: names, sizes and modification times."""
    h = hashlib.sha1()
    for p in paths:
        st = p.stat()
        h.update(f"{p.name}:{p.parent.name}:{st.st_size}:{st.st_mtime_ns};".encode())
    return h.hexdigest()[:16]


def _all_files(folder: DemoFolder) -> list[Path]:
    files = [folder.root / "dataset.json"]
    for ep in folder.episode_ids:
        files.append(folder.episode_dir(ep) / LOWDIM)
        files.extend(folder.video_path(ep, cam) for cam in folder.info.cameras)
    return files


def validate_once(folder: DemoFolder) -> None:
    """Run the full ``validate`` unless this exact set of files already passed it."""
    stamp = folder.root / CACHE / "validated.json"
    try:
        key = fingerprint(_all_files(folder))
    except FileNotFoundError:
        key = None  # a file is missing: validate() will name it
    if key is not None and stamp.is_file() and json.loads(stamp.read_text()).get("key") == key:
        return
    validate(folder.root).raise_if_bad()
    atomic_write_json(stamp, {"key": key})


@dataclass
class LowdimCache:
    """All episodes' low-dim arrays, concatenated along time and memory-mapped."""

    arrays: dict[str, np.ndarray]  # key -> (N, d); "stage" -> (N,) when every episode has it
    episode_ids: list[str]
    starts: np.ndarray  # (E,) first row of each episode
    ends: np.ndarray  # (E,) one past the last row


def lowdim_cache(folder: DemoFolder) -> LowdimCache:
    ids = folder.episode_ids
    key = fingerprint(
        [folder.root / "dataset.json"] + [folder.episode_dir(e) / LOWDIM for e in ids]
    )
    root = folder.root / CACHE / "lowdim"
    manifest = root / "manifest.json"
    if not (manifest.is_file() and json.loads(manifest.read_text()).get("key") == key):
        _build_lowdim(folder, ids, root)
        atomic_write_json(manifest, {"key": key, "episodes": ids})
    ends = np.load(root / "ends.npy")
    arrays = {
        p.stem: np.load(p, mmap_mode="r")
        for p in sorted(root.glob("*.npy"))
        if p.stem not in ("ends",)
    }
    starts = np.concatenate([[0], ends[:-1]]).astype(np.int64)
    return LowdimCache(arrays, ids, starts, ends)


def _build_lowdim(folder: DemoFolder, ids: list[str], root: Path) -> None:
    keys = ["action", "timestamp", *folder.info.state]
    parts: dict[str, list[np.ndarray]] = {k: [] for k in [*keys, "stage"]}
    lengths = []
    for ep in ids:
        a = folder.read_lowdim(ep)
        lengths.append(len(a["action"]))
        for k in keys:
            parts[k].append(a[k])
        parts["stage"].append(a.get("stage"))
    if any(s is None for s in parts["stage"]):
        parts.pop("stage")
    root.mkdir(parents=True, exist_ok=True)
    for stale in root.glob("*.npy"):
        stale.unlink()
    for k, chunks in parts.items():
        with atomic_path(root / f"{k}.npy") as tmp:
            np.save(tmp, np.concatenate(chunks))
    with atomic_path(root / "ends.npy") as tmp:
        np.save(tmp, np.cumsum(lengths).astype(np.int64))


def frame_cache(
    folder: DemoFolder,
    camera: str,
    size: tuple[int, int] | None = None,
    *,
    progress: bool = True,
) -> list[np.ndarray]:
    """Per-episode uint8 (T, h, w, 3) frames of ``camera``, decoded once and memory-mapped."""
    h, w = size or folder.info.cameras[camera]
    root = folder.root / CACHE / "frames" / f"{h}x{w}"
    out = []
    todo = []
    for ep in folder.episode_ids:
        path = root / ep / f"{camera}.npy"
        key = fingerprint([folder.video_path(ep, camera)])
        out.append((ep, path, key))
        if not _fresh(path, key):
            todo.append((ep, path, key))
    for ep, path, key in tqdm(
        todo, desc=f"caching {camera} frames {h}x{w}", disable=not progress or not todo
    ):
        frames = [resize_center_crop(f, (h, w)) for f in iter_frames(folder.video_path(ep, camera))]
        path.parent.mkdir(parents=True, exist_ok=True)
        with atomic_path(path) as tmp:
            np.save(tmp, np.stack(frames))
        atomic_write_json(path.with_suffix(".json"), {"key": key, "frames": len(frames)})
    return [np.load(path, mmap_mode="r") for _, path, _ in out]


def _fresh(path: Path, key: str) -> bool:
    meta = path.with_suffix(".json")
    if not (path.is_file() and meta.is_file()):
        return False
    try:
        return json.loads(meta.read_text()).get("key") == key
    except (json.JSONDecodeError, OSError):
        return False


def remove_cache(folder: DemoFolder | os.PathLike | str) -> None:
    import shutil

    root = folder.root if isinstance(folder, DemoFolder) else Path(folder)
    shutil.rmtree(root / CACHE, ignore_errors=True)
