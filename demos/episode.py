"""One episode in memory, and the invariants its low-dim arrays must satisfy."""

from __future__ import annotations

import zipfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .errors import DemoFolderError, Problem
from .schema import RESERVED_KEYS, DatasetInfo

LOWDIM = "lowdim.npz"


@dataclass
class Episode:
    """An episode as written to / read from a demo folder.

    ``frames`` maps camera name to RGB uint8 frames (T, H, W, 3), or any sequence of such frames.
    ``timestamp`` defaults to t / fps when writing.
    """

    action: np.ndarray
    state: dict[str, np.ndarray] = field(default_factory=dict)
    frames: dict[str, np.ndarray | Sequence[np.ndarray]] = field(default_factory=dict)
    timestamp: np.ndarray | None = None
    stage: np.ndarray | None = None
    success: bool | None = None
    task: str | None = None

    @property
    def length(self) -> int:
        return int(np.asarray(self.action).shape[0])

    def lowdim_arrays(self, info: DatasetInfo) -> dict[str, np.ndarray]:
        """The arrays stored in lowdim.npz (task as an index into ``info.tasks``)."""
        T = self.length
        ts = np.arange(T) / info.fps if self.timestamp is None else self.timestamp
        arrays = {
            "timestamp": np.asarray(ts, dtype=np.float64),
            "action": np.asarray(self.action, dtype=np.float32),
        }
        for key, value in self.state.items():
            arrays[key] = np.asarray(value, dtype=np.float32)
        if self.stage is not None:
            arrays["stage"] = np.asarray(self.stage, dtype=np.int64)
        if self.success is not None:
            arrays["success"] = np.asarray(bool(self.success))
        if self.task is not None:
            arrays["task_index"] = np.asarray(info.tasks.index(self.task), dtype=np.int64)
        return arrays


def load_lowdim(path: Path, rel: str) -> dict[str, np.ndarray]:
    """Read every array of a lowdim.npz eagerly, turning any decoding failure into a Problem."""
    if not path.is_file():
        raise DemoFolderError("missing", rel)
    try:
        with np.load(path, allow_pickle=False) as z:
            return {k: z[k] for k in z.files}
    except (zipfile.BadZipFile, ValueError, OSError, EOFError, KeyError) as e:
        raise DemoFolderError(f"cannot be read as npz ({type(e).__name__}: {e})", rel) from None


def check_lowdim(info: DatasetInfo, arrays: Mapping[str, np.ndarray], rel: str) -> list[Problem]:
    """Every broken invariant of one episode's low-dim arrays, named by ``rel`` and field."""
    out: list[Problem] = []

    def bad(msg: str) -> None:
        out.append(Problem(rel, msg))

    action = arrays.get("action")
    if action is None:
        bad("action is missing")
        return out
    if action.ndim != 2 or action.shape[1] != info.action_dim:
        bad(f"action has shape {action.shape}, dataset.json says (T, {info.action_dim})")
        return out
    T = action.shape[0]
    if T == 0:
        bad("action has 0 rows (empty episode)")
        return out

    def check_numeric(name: str, a: np.ndarray) -> None:
        if not (np.issubdtype(a.dtype, np.floating) or np.issubdtype(a.dtype, np.integer)):
            bad(f"{name} has dtype {a.dtype}, expected numbers")
            return
        if np.issubdtype(a.dtype, np.floating):
            finite = np.isfinite(a)
            if not finite.all():
                bad_idx = np.argwhere(~finite)[0]
                value = a[tuple(bad_idx)]
                where = "row " + ", col ".join(str(int(i)) for i in bad_idx)
                bad(
                    f"{name} has {int((~finite).sum())} non-finite values "
                    f"(first: {value} at {where})"
                )

    check_numeric("action", action)

    ts = arrays.get("timestamp")
    if ts is None:
        bad("timestamp is missing")
    elif ts.shape != (T,):
        bad(f"timestamp has shape {ts.shape}, action has {T} rows")
    else:
        check_numeric("timestamp", ts)
        steps = np.diff(ts.astype(np.float64))
        if np.isfinite(steps).all() and (steps <= 0).any():
            i = int(np.argmax(steps <= 0))
            bad(f"timestamp is not increasing: row {i + 1} ({ts[i + 1]}) <= row {i} ({ts[i]})")

    for key, dim in info.state.items():
        a = arrays.get(key)
        if a is None:
            bad(f"state key {key} is missing (dataset.json lists it)")
        elif a.shape != (T, dim):
            bad(
                f"{key} has shape {a.shape}, expected ({T}, {dim}) "
                "from action rows and dataset.json"
            )
        else:
            check_numeric(key, a)

    stage = arrays.get("stage")
    if stage is not None and (stage.shape != (T,) or not np.issubdtype(stage.dtype, np.integer)):
        bad(f"stage must be integer (T,) = ({T},), got {stage.dtype} {stage.shape}")
    success = arrays.get("success")
    if success is not None and (success.shape != () or success.dtype != np.bool_):
        bad(f"success must be a single bool, got {success.dtype} {success.shape}")
    task = arrays.get("task_index")
    if task is not None:
        ok = task.shape == () and np.issubdtype(task.dtype, np.integer)
        if not ok or not 0 <= int(task) < len(info.tasks):
            bad(f"task_index {task!r} is not an index into dataset.json tasks ({len(info.tasks)})")

    extra = sorted(set(arrays) - set(info.state) - RESERVED_KEYS)
    if extra:
        bad(f"arrays {extra} are not state keys of dataset.json")
    return out
