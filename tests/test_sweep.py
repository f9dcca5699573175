"""uvdiff-eval with lists: every checkpoint on every env, one report comparing them."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from sim.testing import TINY_MLP, expert_folder, train_checkpoint


@pytest.fixture(scope="module")
def checkpoints(tmp_path_factory, one_torch_thread):
    root = tmp_path_factory.mktemp("sweep")
    folder = expert_folder(root / "lift", "lift", range(2))
    return [
        train_checkpoint(
            folder.root, root / name, "final", policy=TINY_MLP, steps=steps, batch_size=16
        )  # fmt: skip
        for name, steps in (("short", 2), ("long", 4))
    ]


def test_a_sweep_evaluates_each_pair_and_compares_them(checkpoints, tmp_path):
    exe = Path(sys.executable).with_name("uvdiff-eval")
    out = tmp_path / "out"
    a, b = (str(c) for c in checkpoints)
    proc = subprocess.run(
        [str(exe), f"checkpoint=[{a},{b}]", "env=[lift]", "episodes=2", "seed=5", "workers=0",
         "videos=0", "max_steps=6", "progress=false", f"out_dir={out}"],
        capture_output=True, text=True, timeout=600, env={**os.environ, "MUJOCO_GL": "egl"},
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-2000:]
    rows = json.loads((out / "sweep.json").read_text())
    assert [(r["label"], r["env"]) for r in rows] == [
        ("short@000002", "lift"),
        ("long@000004", "lift"),
    ]
    table = (out / "sweep.md").read_text()
    for r in rows:
        info = json.loads((Path(r["out_dir"]) / "eval_info.json").read_text())
        assert info["episodes"] == 2 and info["seed"] == 5
        assert f"| {r['label']} | lift | {info['pc_success']:.0f}%" in table
    assert (out / "sweep.png").stat().st_size > 1000
    assert "short@000002 on lift:" in proc.stdout and "sweep report:" in proc.stdout
