"""The demo folder: create, append episodes atomically, read them back."""

from __future__ import annotations

import errno
import os
import re
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from .atomic import atomic_write_json, locked
from .episode import LOWDIM, Episode, check_lowdim, load_lowdim
from .errors import DemoFolderError, Problem
from .schema import DATASET_JSON, DatasetInfo
from .video import VideoError, iter_frames, read_video, write_video

EPISODES = "episodes"
_EPISODE_ID = re.compile(r"^\d{6}$")


class DemoFolder:
    """A folder of demonstrations in format version 1 (see README, "Bring your own demos")."""

    def __init__(self, root: str | os.PathLike):
        self.root = Path(root)
        self.info = DatasetInfo.load(self.root)
        self._next_index: int | None = None  # where this writer's next episode goes

    @classmethod
    def create(cls, root: str | os.PathLike, info: DatasetInfo) -> DemoFolder:
        """Make a new folder, or open an existing one whose schema matches ``info``."""
        root = Path(root)
        if (root / DATASET_JSON).exists():
            folder = cls(root)
            diffs = folder.info.check_compatible(info)
            if diffs:
                raise DemoFolderError([Problem(DATASET_JSON, f"cannot append: {d}") for d in diffs])
            return folder
        DatasetInfo.from_json(info.to_json())  # refuse a bad schema before writing anything
        (root / EPISODES).mkdir(parents=True, exist_ok=True)
        atomic_write_json(root / DATASET_JSON, info.to_json())
        return cls(root)

    # ------------------------------------------------------------------ reading
    @property
    def episode_ids(self) -> list[str]:
        """Complete episodes, in order; temporary folders of unfinished writes are not listed."""
        ep_dir = self.root / EPISODES
        if not ep_dir.is_dir():
            return []
        with os.scandir(ep_dir) as entries:
            return sorted(e.name for e in entries if _EPISODE_ID.match(e.name) and e.is_dir())

    def __len__(self) -> int:
        return len(self.episode_ids)

    def episode_dir(self, episode: str | int) -> Path:
        return self.root / EPISODES / _episode_name(episode)

    def rel(self, episode: str | int, name: str) -> str:
        return f"{EPISODES}/{_episode_name(episode)}/{name}"

    def video_path(self, episode: str | int, camera: str) -> Path:
        return self.episode_dir(episode) / f"{camera}.mp4"

    def read_lowdim(self, episode: str | int, *, check: bool = True) -> dict[str, np.ndarray]:
        rel = self.rel(episode, LOWDIM)
        arrays = load_lowdim(self.episode_dir(episode) / LOWDIM, rel)
        if check:
            problems = check_lowdim(self.info, arrays, rel)
            if problems:
                raise DemoFolderError(problems)
        return arrays

    def iter_frames(self, episode: str | int, camera: str) -> Iterator[np.ndarray]:
        self._check_camera(camera)
        return iter_frames(self.video_path(episode, camera))

    def read_frames(self, episode: str | int, camera: str) -> np.ndarray:
        self._check_camera(camera)
        return read_video(self.video_path(episode, camera))

    def read_episode(self, episode: str | int, *, frames: bool = True) -> Episode:
        a = self.read_lowdim(episode)
        task = self.info.tasks[int(a["task_index"])] if "task_index" in a else None
        ep = Episode(
            action=a["action"],
            state={k: a[k] for k in self.info.state},
            timestamp=a["timestamp"],
            stage=a.get("stage"),
            success=bool(a["success"]) if "success" in a else None,
            task=task,
        )
        if frames:
            for cam in self.info.cameras:
                video = self.read_frames(episode, cam)
                if len(video) != ep.length:
                    raise DemoFolderError(
                        f"has {len(video)} frames, {LOWDIM} has {ep.length} actions",
                        self.rel(episode, f"{cam}.mp4"),
                    )
                ep.frames[cam] = video
        return ep

    def __iter__(self) -> Iterator[Episode]:
        for ep in self.episode_ids:
            yield self.read_episode(ep)

    # ------------------------------------------------------------------ writing
    def add_episode(self, episode: Episode) -> str:
        """Write one episode; return its id. Nothing becomes visible until it is complete."""
        info = self.info
        if episode.task is not None and episode.task not in info.tasks:
            info = DatasetInfo.from_json({**info.to_json(), "tasks": [*info.tasks, episode.task]})
        arrays = episode.lowdim_arrays(info)
        problems = check_lowdim(info, arrays, f"new episode {LOWDIM}")
        missing = set(info.cameras) - set(episode.frames)
        extra = set(episode.frames) - set(info.cameras)
        if missing or extra:
            problems.append(
                Problem(
                    "new episode", f"cameras {sorted(episode.frames)} != {sorted(info.cameras)}"
                )
            )
        if problems:
            raise DemoFolderError(problems)

        ep_root = self.root / EPISODES
        ep_root.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(dir=ep_root, prefix=".tmp-"))
        try:
            np.savez(tmp / LOWDIM, **arrays)
            for cam, (h, w) in info.cameras.items():
                frames = episode.frames[cam]
                if len(frames) and np.asarray(frames[0]).shape[:2] != (h, w):
                    shape = np.asarray(frames[0]).shape
                    raise DemoFolderError(
                        f"frames have shape {shape}, dataset.json says [{h}, {w}]",
                        f"new episode {cam}.mp4",
                    )
                n = write_video(tmp / f"{cam}.mp4", frames, info.fps)
                if n != episode.length:
                    raise VideoError(
                        f"has {n} frames, the episode has {episode.length} actions",
                        f"new episode {cam}.mp4",
                    )
            with locked(self.root / ".lock"):
                if info is not self.info:  # a new task: merge with tasks added meanwhile
                    self.info = DatasetInfo.load(self.root)
                    if episode.task not in self.info.tasks:
                        self.info.tasks.append(episode.task)
                        atomic_write_json(self.root / DATASET_JSON, self.info.to_json())
                    if episode.task is not None:
                        np.savez(tmp / LOWDIM, **episode.lowdim_arrays(self.info))
                return self._move_into_place(tmp)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise

    def _move_into_place(self, tmp: Path) -> str:
        """Rename a finished episode to the next free id (a scan only when another writer
        took it), so appending n episodes does not cost n directory listings."""
        while True:
            if self._next_index is None:
                ids = self.episode_ids
                self._next_index = int(ids[-1]) + 1 if ids else 0
            name = _episode_name(self._next_index)
            try:
                os.rename(tmp, self.root / EPISODES / name)  # fails onto a non-empty episode
            except OSError as e:
                if e.errno not in (errno.ENOTEMPTY, errno.EEXIST):
                    raise
                self._next_index = None
                continue
            self._next_index += 1
            return name

    def _check_camera(self, camera: str) -> None:
        if camera not in self.info.cameras:
            raise DemoFolderError(
                f"camera {camera!r} is not in dataset.json (cameras: {sorted(self.info.cameras)})",
                DATASET_JSON,
            )


def _episode_name(episode: str | int) -> str:
    return f"{int(episode):06d}"
