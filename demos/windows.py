"""Training windows over a demo folder: observation history, action sequence and a goal.

Everything comes from memory-mapped caches (``demos.cache``), so sampling a window is a few
array slices: no video decoding, no npz parsing, no allocation beyond the window itself.
"""

from __future__ import annotations

import os
import random
from collections.abc import Mapping, Sequence
from typing import Literal

import numpy as np

from .cache import frame_cache, lowdim_cache, validate_once
from .errors import DemoFolderError
from .folder import DemoFolder
from .stats import load_stats

GoalMode = Literal["final", "future", "subgoal", "none"]

try:  # a torch Dataset when torch is there; the class works as a plain sequence without it
    from torch.utils.data import Dataset as _Base
except ImportError:  # pragma: no cover
    _Base = object


class WindowDataset(_Base):
    """Windows ending at every step t of every episode.

    Item keys: ``obs.<key>`` float32 (n_obs, d) for state keys and embeddings, ``obs.<camera>``
    uint8 (n_obs, h, w, 3); ``action`` float32 (horizon, A) starting at t, with
    ``action_is_pad`` marking steps past the episode end (those repeat the last action); for
    goal modes other than "none", ``goal.<key>`` / ``goal.<camera>`` at ``goal_index`` (an
    embedding's row at the goal frame). Steps before the start repeat the first observation,
    as Diffusion Policy does.

    Goal modes: ``final`` (the episode's last frame), ``future`` (a uniformly drawn later frame,
    hindsight relabelling), ``subgoal`` (per-step goal indices from ``goal_indices``, e.g. the
    first UVD subgoal at or after t), ``none``.

    ``embeddings``: {key: per-episode (T, D) arrays}, one row per frame, e.g. a frozen
    backbone's embeddings of a camera memory-mapped from the decomposer's cache (the caller
    computes them: ``demos`` does not import the decomposer).
    """

    def __init__(
        self,
        root: str | os.PathLike | DemoFolder,
        *,
        n_obs: int = 2,
        horizon: int = 16,
        state_keys: Sequence[str] | None = None,
        cameras: Sequence[str] | None = None,
        image_size: tuple[int, int] | None = None,
        goal: GoalMode = "future",
        goal_indices: Mapping[str, np.ndarray] | None = None,
        embeddings: Mapping[str, Sequence[np.ndarray]] | None = None,
        check: bool = True,
        progress: bool = True,
    ):
        folder = root if isinstance(root, DemoFolder) else DemoFolder(root)
        if check:
            validate_once(folder)
        info = folder.info
        self.folder = folder
        self.n_obs, self.horizon, self.goal = n_obs, horizon, goal
        self.state_keys = list(info.state if state_keys is None else state_keys)
        self.cameras = list(info.cameras if cameras is None else cameras)
        for key in self.state_keys:
            if key not in info.state:
                raise DemoFolderError(
                    f"state key {key!r} is not in {sorted(info.state)}", "dataset.json"
                )
        for cam in self.cameras:
            if cam not in info.cameras:
                raise DemoFolderError(
                    f"camera {cam!r} is not in {sorted(info.cameras)}", "dataset.json"
                )
        if goal not in ("final", "future", "subgoal", "none"):
            raise ValueError(f"goal={goal!r}: use final, future, subgoal or none")

        low = lowdim_cache(folder)
        self.episode_ids = low.episode_ids
        self.starts, self.ends = low.starts, low.ends
        self.lowdim = {k: low.arrays[k] for k in ["action", *self.state_keys]}
        self.frames = {
            cam: frame_cache(folder, cam, image_size, progress=progress) for cam in self.cameras
        }
        self.embeddings = self._check_embeddings(dict(embeddings or {}))
        self.stats = load_stats(folder)
        n = int(self.ends[-1])
        # row -> (episode, first row, last row): one lookup per item instead of a search
        self._episode = np.repeat(np.arange(len(self.ends)), self.ends - self.starts)
        self._goal_row = self._subgoal_rows(goal_indices, n) if goal == "subgoal" else None
        self._len = n

    def _subgoal_rows(self, goal_indices: Mapping[str, np.ndarray] | None, n: int) -> np.ndarray:
        if goal_indices is None:
            raise ValueError("goal='subgoal' needs goal_indices {episode id: (T,) frame index}")
        rows = np.empty(n, dtype=np.int64)
        for e, ep in enumerate(self.episode_ids):
            s, t_end = int(self.starts[e]), int(self.ends[e])
            idx = np.asarray(goal_indices[ep])
            if idx.shape != (t_end - s,) or idx.min() < 0 or idx.max() >= t_end - s:
                raise DemoFolderError(
                    f"goal indices have shape {idx.shape} / range [{idx.min()}, {idx.max()}], "
                    f"the episode has {t_end - s} steps",
                    f"episodes/{ep}",
                )
            rows[s:t_end] = s + idx
        return rows

    def _check_embeddings(self, embeddings: dict[str, Sequence[np.ndarray]]) -> dict:
        for key, arrays in embeddings.items():
            if key in self.lowdim or key in self.frames:
                raise ValueError(f"embedding key {key!r} is also a state key or camera")
            if len(arrays) != len(self.episode_ids):
                raise ValueError(
                    f"embedding {key!r} has {len(arrays)} episodes, the folder {len(self.ends)}"
                )
            for e, (ep, a) in enumerate(zip(self.episode_ids, arrays, strict=True)):
                steps = int(self.ends[e] - self.starts[e])
                if a.ndim != 2 or len(a) != steps:
                    raise DemoFolderError(
                        f"embedding {key!r} has shape {a.shape}, the episode {steps} steps",
                        f"episodes/{ep}",
                    )
        return embeddings

    def __len__(self) -> int:
        return self._len

    def __getitem__(self, row: int) -> dict[str, np.ndarray | int]:
        if not 0 <= row < self._len:
            raise IndexError(row)
        e = self._episode[row]
        first, end = int(self.starts[e]), int(self.ends[e])
        t = row - first
        obs_rows = np.arange(row - self.n_obs + 1, row + 1).clip(first, None)
        act_rows = np.arange(row, row + self.horizon)
        pad = act_rows >= end
        act_rows = act_rows.clip(None, end - 1)

        item: dict[str, np.ndarray | int] = {"episode": int(e), "t": t}
        for key in self.state_keys:
            item[f"obs.{key}"] = self.lowdim[key][obs_rows]
        local = obs_rows - first
        for cam in self.cameras:
            item[f"obs.{cam}"] = self.frames[cam][e][local]
        for key, arrays in self.embeddings.items():
            item[f"obs.{key}"] = arrays[e][local]
        item["action"] = self.lowdim["action"][act_rows]
        item["action_is_pad"] = pad

        if self.goal != "none":
            if self.goal == "final":
                g = end - 1
            elif self.goal == "future":
                g = random.randint(row, end - 1)
            else:
                g = int(self._goal_row[row])
            item["goal_index"] = g - first
            for key in self.state_keys:  # np.array: a writable copy, not a view of the map
                item[f"goal.{key}"] = np.array(self.lowdim[key][g])
            for cam in self.cameras:
                item[f"goal.{cam}"] = np.array(self.frames[cam][e][g - first])
            for key, arrays in self.embeddings.items():
                item[f"goal.{key}"] = np.array(arrays[e][g - first])
        return item
