"""Writes that never leave a half-written file behind: temporary name, fsync, rename."""

from __future__ import annotations

import contextlib
import fcntl
import json
import math
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def json_safe(x: Any) -> Any:
    """A JSON-safe copy: numpy scalars and arrays become Python values, NaN and Inf None."""
    if isinstance(x, dict):
        return {k: json_safe(v) for k, v in x.items()}
    if isinstance(x, list | tuple):
        return [json_safe(v) for v in x]
    if hasattr(x, "tolist") and not isinstance(x, str):  # numpy scalars and arrays
        return json_safe(x.tolist())
    if isinstance(x, float) and not math.isfinite(x):
        return None
    return x


def read_json_object(path: Path, rel: str, missing: str) -> dict[str, Any]:
    """The JSON object in ``path``, or a DemoFolderError naming ``rel``: ``missing`` when the
    file is not there, else why it is not a JSON object."""
    from .errors import DemoFolderError

    if not path.is_file():
        raise DemoFolderError(f"missing: {missing}", rel)
    try:
        obj = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise DemoFolderError(f"not valid JSON ({e})", rel) from None
    if not isinstance(obj, dict):
        raise DemoFolderError(f"must hold a JSON object, got {type(obj).__name__}", rel)
    return obj


def atomic_write_json(path: str | os.PathLike, obj: Any) -> None:
    atomic_write_bytes(path, (json.dumps(obj, indent=2, sort_keys=False) + "\n").encode())


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; rename it into place only if the block succeeds.

    For writers that need a file name (OpenCV, h5py, pyarrow) rather than bytes.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp{path.suffix}")
    try:
        yield tmp
        os.replace(tmp, path)
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)


@contextlib.contextmanager
def locked(lock_file: str | os.PathLike) -> Iterator[None]:
    """An exclusive advisory lock, so parallel writers appending to one folder take turns."""
    with open(lock_file, "a") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


@contextlib.contextmanager
def staging_dir(final: str | os.PathLike) -> Iterator[Path]:
    """A fresh folder beside ``final`` that becomes ``final`` only if the block succeeds.

    Converters write a whole demo folder here, so a failure halfway leaves nothing behind.
    ``final`` must not exist yet (we never merge into, or overwrite, someone's data).
    """
    final = Path(final)
    if final.exists():
        raise FileExistsError(f"{final} already exists; choose a new output folder")
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=final.parent, prefix=f".{final.name}.tmp-"))
    try:
        yield tmp
        os.rename(tmp, final)
    finally:
        if tmp.exists():
            import shutil

            shutil.rmtree(tmp, ignore_errors=True)
