"""`accelerate launch` runs uvdiff-train in several processes (CPU, gloo): the multi-GPU path."""

import json
import os
import shutil
import socket
import subprocess
import sys

import pytest
from safetensors.torch import load_file

from demos.synthetic import make_folder
from policies import Policy


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    return make_folder(tmp_path_factory.mktemp("ddp") / "d", episodes=3, T=30, size=(32, 32))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def launch(processes: int, *args: str):
    # --multi_gpu is accelerate's torchrun launcher; device=cpu keeps the processes on gloo
    cmd = [sys.executable, "-m", "accelerate.commands.launch", "--multi_gpu"]
    cmd += ["--num_processes", str(processes), "--num_machines", "1"]
    cmd += ["--mixed_precision", "no", "--dynamo_backend", "no"]
    cmd += ["--main_process_port", str(free_port()), "-m", "policies.train_cli", *args]
    cmd += ["device=cpu"]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "HYDRA_FULL_ERROR": "1"}
    done = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    return done


def test_two_processes_train_checkpoint_once_and_resume_exactly(demo, tmp_path):
    out = tmp_path / "run"
    args = [f"data={demo.root}", f"out_dir={out}", "goal=future", "train_steps=6", "batch_size=8"]
    args += ["warmup_steps=1", "checkpoint_every=3", "log_every=1", "progress=false"]
    args += ["policy.network_kwargs.hidden=32", "policy.network_kwargs.blocks=1"]
    launch(2, *args)

    ckpts = out / "checkpoints"
    assert sorted(p.name for p in ckpts.iterdir() if p.name.isdigit()) == ["000003", "000006"]
    state = json.loads((ckpts / "000006" / "training_state" / "state.json").read_text())
    assert state == {"step": 6, "samples": 48, "processes": 2, "mixed_precision": "no"}
    rows = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows] == [1, 2, 3, 4, 5, 6]  # the main process logs, once
    assert Policy.from_pretrained(ckpts / "000006").config.goal == "future"

    # kill-and-resume: drop the last checkpoint, resume in two processes, land on the same weights
    first = load_file(ckpts / "000006" / "model.safetensors")
    shutil.rmtree(ckpts / "000006")
    launch(2, *args, "resume=true")
    again = load_file(ckpts / "000006" / "model.safetensors")
    assert first.keys() == again.keys()
    assert all((first[k] == again[k]).all() for k in first), "resumed run drifted"


def test_bf16_mixed_precision_trains_through_accelerate(demo, tmp_path):
    """accelerate's mixed precision (here bf16 autocast on the CPU) reaches the training loop."""
    out = tmp_path / "bf16"
    cmd = [sys.executable, "-m", "policies.train_cli", f"data={demo.root}", f"out_dir={out}"]
    cmd += ["steps=3", "batch_size=8", "warmup_steps=1", "log_every=1", "progress=false"]
    cmd += ["policy.network_kwargs.hidden=32", "policy.network_kwargs.blocks=1"]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "ACCELERATE_MIXED_PRECISION": "bf16"}
    done = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    rows = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert len(rows) == 3 and all(0 < r["loss"] < 100 for r in rows)
    ckpt = out / "checkpoints" / "000003"
    state = json.loads((ckpt / "training_state" / "state.json").read_text())
    assert state["mixed_precision"] == "bf16" and state["processes"] == 1
    weights = load_file(ckpt / "ema.safetensors")
    assert all(w.dtype.is_floating_point and w.isfinite().all() for w in weights.values())
