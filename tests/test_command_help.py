"""Every uvdiff-* command answers --help from its own config: usage lines, then each setting
with its default and comment, then its config groups."""

import subprocess
import sys
from importlib import resources

import pytest
import yaml

from configs.command import command_help

COMMANDS = {
    "train": "policies.train_cli",
    "eval": "sim.eval_cli",
    "collect": "sim.collect_cli",
    "demo": "sim.demo_cli",
    "decompose": "decomposer.cli",
    "deploy": "real.deploy_cli",
    "record": "real.record_cli",
}


@pytest.mark.parametrize("name", COMMANDS)
def test_help_lists_every_setting_of_the_config(name):
    text = command_help(name, f"uvdiff-{name}")
    source = resources.files("configs").joinpath(f"{name}.yaml").read_text()
    assert text.splitlines()[0] == source.splitlines()[0].lstrip("# ")  # the usage first
    settings = yaml.safe_load(source)
    for key in settings:
        if key not in ("defaults", "hydra"):
            line = next((x for x in text.splitlines() if x.split()[:1] == [key]), None)
            assert line is not None, key
            assert len(line.split()) > 2, f"{name}.yaml: setting {key} has no explanation"
    assert "Hydra is" not in text and "powered by Hydra" not in text


def test_help_explains_settings_and_groups():
    text = command_help("train", "uvdiff-train")
    line = next(x for x in text.splitlines() if x.split()[:1] == ["goal"])
    assert "future" in line and "final | future (hindsight) | uvd" in line
    assert "policy" in text and "options: beso_gpt, beso_mlp" in text
    deploy = command_help("deploy", "uvdiff-deploy")
    robots = "panda_dds, panda_dds_fjt, panda_joint_ros2, panda_zenoh, rosbridge, sim"
    assert f"options: {robots}" in deploy
    # a comment continued on the next lines stays with its setting
    relay = deploy.split("\n  relay ")[1].splitlines()
    assert "relative | paper | nearest" in relay[1]


def test_the_command_prints_it_and_exits_0():
    done = subprocess.run(
        [sys.executable, "-m", COMMANDS["eval"], "--help"], capture_output=True, text=True,
        timeout=120,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "uvdiff-eval: roll out a policy checkpoint" in done.stdout
    assert "denoise_steps" in done.stdout and "relay_eps" in done.stdout
