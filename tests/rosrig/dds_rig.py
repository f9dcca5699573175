"""What the DDS tests share: a random domain per test, waiting on a condition, and test nodes
started in their own processes (each prints a ready line, then writes a JSON status file)."""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path


def random_domain() -> int:
    """A DDS domain of its own, so tests running side by side never hear each other."""
    return random.Random(os.getpid() + time.time_ns()).randrange(100, 200)


@contextmanager
def node_starter(script: Path, ready: str, tmp_path: Path) -> Iterator[Callable]:
    """Yields ``start(*args) -> (domain, status reader)``; every node started is killed after."""
    procs = []

    def start(*extra):
        domain = random_domain()
        status = tmp_path / f"{script.stem}_{domain}.json"
        env = {**os.environ, "MUJOCO_GL": os.environ.get("MUJOCO_GL", "egl")}
        p = subprocess.Popen(
            [sys.executable, str(script), "--domain", str(domain), "--status", str(status), *extra],
            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )  # fmt: skip
        procs.append(p)
        assert p.stdout.readline().strip() == ready, p.stderr.read()[-2000:]
        return domain, lambda: json.loads(status.read_text())

    try:
        yield start
    finally:
        for p in procs:
            p.kill()
            p.wait(timeout=10)
