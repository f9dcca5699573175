"""``subgoals.json``: an episode's subgoal frames, read, written and checked in one place.

The decomposer writes it; training (goal labels), evaluation and deployment (the task demo's
subgoals) read it. The frames are strictly ascending indices ending at the episode's last
frame. Files written before the key was settled may name the list ``frame_indices`` or
``indices``; they still read.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .atomic import atomic_write_json, json_safe, read_json_object
from .errors import DemoFolderError
from .folder import DemoFolder

SUBGOALS = "subgoals.json"
_LIST_KEYS = ("subgoals", "frame_indices", "indices")  # the first is written, all are read


@dataclass(frozen=True)
class Subgoals:
    """One episode's decomposition: its frames and how they were made (for provenance)."""

    frames: list[int]
    backbone: str | None = None
    weights_hash: str | None = None
    method: str | None = None
    parameters: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {
            "subgoals": list(self.frames),
            "backbone": self.backbone,
            "weights_hash": self.weights_hash,
            "method": self.method,
            "parameters": dict(self.parameters),
        }


def subgoal_problem(subgoals: Any, T: int) -> str | None:
    """Why ``subgoals`` is not a valid decomposition of a T-frame episode, or None."""
    if not isinstance(subgoals, Sequence | np.ndarray) or isinstance(subgoals, str):
        return f"subgoals must be a list of frame indices, got {subgoals!r}"
    s = np.asarray(subgoals)
    if s.ndim != 1 or len(s) == 0 or not np.issubdtype(s.dtype, np.integer):
        return f"subgoals must be a non-empty list of ints, got {list(subgoals)!r}"
    if (np.diff(s) <= 0).any():
        return f"subgoals must be strictly ascending, got {s.tolist()}"
    if s[0] < 0 or s[-1] != T - 1:
        return f"subgoals must lie in [0, {T - 1}] and end at the last frame {T - 1}: {s.tolist()}"
    return None


def check_subgoals(subgoals: Sequence[int], T: int) -> np.ndarray:
    """Strictly ascending int frames in [0, T-1] ending at T-1 (int64), or a ValueError."""
    if T < 1:
        raise ValueError(f"T must be >= 1, got {T}")
    why = subgoal_problem(subgoals, T)
    if why is not None:
        raise ValueError(why)
    return np.asarray(subgoals, dtype=np.int64)


def has_subgoals(folder: DemoFolder, episode: str | int) -> bool:
    return (folder.episode_dir(episode) / SUBGOALS).is_file()


def read_subgoals(folder: DemoFolder, episode: str | int, T: int | None = None) -> Subgoals:
    """The episode's ``subgoals.json``, checked against its length (``T``, read from
    ``lowdim.npz`` when not given). Raises DemoFolderError naming the file and the fault."""
    rel = folder.rel(episode, SUBGOALS)
    path = folder.root / rel
    doc = read_json_object(path, rel, "run uvdiff-decompose on this folder first")
    frames = next((doc[k] for k in _LIST_KEYS if k in doc), None)
    if frames is None:
        raise DemoFolderError("has no 'subgoals' list of frame indices", rel)
    if T is None:
        T = len(folder.read_lowdim(episode, check=False)["action"])
    if isinstance(frames, list) and any(isinstance(f, bool) for f in frames):
        raise DemoFolderError(f"subgoals must be frame indices (ints), got {frames}", rel)
    why = subgoal_problem(frames, T)
    if why is not None:
        raise DemoFolderError(why, rel)
    params = doc.get("parameters") or {}
    return Subgoals(
        [int(f) for f in frames],
        doc.get("backbone"),
        doc.get("weights_hash"),
        doc.get("method"),
        dict(params) if isinstance(params, dict) else {},
    )


def write_subgoals(folder: DemoFolder, episode: str | int, subgoals: Subgoals) -> None:
    """Write (atomically) the episode's ``subgoals.json``."""
    atomic_write_json(folder.episode_dir(episode) / SUBGOALS, json_safe(subgoals.to_json()))
