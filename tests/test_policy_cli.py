"""uvdiff-train: the hydra config maps onto train(), and the entry point runs end to end."""

import os
import subprocess
import sys
from pathlib import Path

import pytest
from hydra import compose, initialize_config_module

from demos.synthetic import make_folder
from policies import Policy
from policies.train_cli import train_from_config

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    return make_folder(tmp_path_factory.mktemp("cli") / "d", episodes=3, T=30, size=(32, 32))


FAST = ["train_steps=2", "batch_size=8", "warmup_steps=1", "progress=false"]


@pytest.mark.parametrize("policy,network", [("beso_mlp", "mlp"), ("beso_gpt", "gpt")])
def test_config_groups_compose_into_a_run(demo, tmp_path, policy, network):
    small = (
        ["policy.network_kwargs.hidden=32", "policy.network_kwargs.blocks=1"]
        if network == "mlp"
        else ["policy.network_kwargs.d_model=48", "policy.network_kwargs.n_heads=4"]
    )
    with initialize_config_module("configs", version_base="1.3"):
        cfg = compose(
            "train",
            [f"data={demo.root}", f"out_dir={tmp_path / 'run'}", f"policy={policy}", "goal=final"]
            + FAST
            + small,
        )
    result = train_from_config(cfg)
    policy = Policy.from_pretrained(result.checkpoint)
    assert policy.config.network == network and policy.config.goal == "final"
    assert policy.settings["steps"] == 3 and policy.settings["sampler"] == "ddim"


def test_console_entry_point(demo, tmp_path):
    out = tmp_path / "run"
    cmd = [sys.executable, "-m", "policies.train_cli", f"data={demo.root}", f"out_dir={out}"]
    cmd += FAST + ["policy.network_kwargs.hidden=32"]
    env = {**os.environ, "HYDRA_FULL_ERROR": "1", "OMP_NUM_THREADS": "1"}
    done = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=120, cwd=Path.cwd())
    assert done.returncode == 0, done.stderr[-2000:]
    assert "checkpoint:" in done.stdout
    assert (out / "checkpoints" / "000002" / "ema.safetensors").is_file()
    assert (out / ".hydra" / "config.yaml").is_file()
    bad = subprocess.run(
        [sys.executable, "-m", "policies.train_cli", f"out_dir={tmp_path / 'x'}"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert bad.returncode != 0 and "data" in bad.stderr
