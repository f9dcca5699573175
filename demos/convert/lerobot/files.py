"""Reading and writing LeRobot's JSON, JSON lines and Parquet files.

One place for the checks that turn an unreadable or incomplete file into a DemoFolderError
naming that file, so every reader reports problems the same way.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from ...atomic import read_json_object
from ...errors import DemoFolderError, Problem


def _read_json(path: Path, rel: str) -> dict:
    return read_json_object(path, rel, f"{path.parent.parent} is not a LeRobot dataset")


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


def _write_parquet(path: Path, table: pa.Table, metadata: dict | None = None) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(table.replace_schema_metadata(metadata) if metadata else table, path)


def _write_json(path: Path, obj: Any) -> None:
    path.write_text(json.dumps(obj, indent=4) + "\n")
