"""The README's examples run as written."""

import re
import subprocess
import sys
from pathlib import Path

import numpy as np

README = (Path(__file__).parents[1] / "README.md").read_text()
BIN = Path(sys.executable).parent


def python_blocks() -> list[str]:
    return re.findall(r"```python\n(.*?)```", README, re.S)


def test_bring_your_own_demos_example_writes_a_valid_folder(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (block,) = [b for b in python_blocks() if "DemoFolder.create" in b]
    exec(compile(block, "README.md", "exec"), {})
    result = subprocess.run([BIN / "uvdiff-check", "demos/lift"], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout
    assert "1 episodes, 120 frames" in result.stdout
    # and the dataset.json shown in the README is a valid schema
    from demos.schema import check_dataset_json

    shown = re.search(r"`dataset.json`:\n\n```json\n(.*?)```", README, re.S).group(1)
    import json

    assert check_dataset_json(json.loads(shown)) == []
    np.testing.assert_array_equal(
        np.load(tmp_path / "demos/lift/episodes/000000/lowdim.npz")["action"], np.zeros((120, 7))
    )


def test_commands_answer_help():
    for cmd in ("uvdiff-check", "uvdiff-convert"):
        out = subprocess.run([BIN / cmd, "--help"], capture_output=True, text=True)
        assert out.returncode == 0 and "usage:" in out.stdout


HYDRA_APPS = {
    f"uvdiff-{name}": name
    for name in ("demo", "collect", "decompose", "train", "eval", "deploy", "record")
}


def readme_commands() -> list[list[str]]:
    """Every ``uvdiff-*`` command line of the README's bash blocks, split as a shell would."""
    import shlex

    lines = []
    for block in re.findall(r"```bash\n(.*?)```", README, re.S):
        block = re.sub(r"\\\n", " ", block)  # a continued line is one command, as in a shell
        for line in block.splitlines():
            words = shlex.split(line, comments=True)
            if words[:2] == ["accelerate", "launch"]:  # the training script it launches
                at = words.index("-m")
                words = [{"policies.train_cli": "uvdiff-train"}[words[at + 1]], *words[at + 2 :]]
            if words and words[0].startswith("uvdiff-"):
                lines.append(words)
    return lines


def test_every_hydra_command_in_the_readme_composes_with_its_config():
    """Each shown override names a real config key or group option (hydra's own check)."""
    from hydra import compose, initialize_config_module
    from omegaconf import OmegaConf

    commands = [c for c in readme_commands() if c[0] in HYDRA_APPS]
    shown = {c[0] for c in commands}
    assert shown >= {"uvdiff-demo", "uvdiff-decompose", "uvdiff-train", "uvdiff-eval"}
    for words in commands:
        overrides = ["dry_run=true" if w == "--dry-run" else w for w in words[1:]]
        overrides = [f"{k}='{v}'" if " " in v else w
                     for w in overrides for k, _, v in [w.partition("=")]]  # fmt: skip
        with initialize_config_module(config_module="configs", version_base="1.3"):
            cfg = compose(config_name=HYDRA_APPS[words[0]], overrides=overrides)
        for o in overrides:
            key, _, value = o.partition("=")
            if (
                "/" not in key
                and "." not in key
                and key in cfg
                and not OmegaConf.is_config(cfg[key])
            ):
                got = str(cfg[key]).lower()
                assert got == value.strip("'").lower() or value.startswith("["), (words, key)


def test_every_other_command_in_the_readme_parses(tmp_path):
    """uvdiff-check / uvdiff-convert lines: the flags exist (the paths are the user's)."""
    others = [c for c in readme_commands() if c[0] not in HYDRA_APPS]
    assert {c[0] for c in others} == {"uvdiff-check", "uvdiff-convert"}
    for words in others:
        out = subprocess.run(
            [BIN / words[0], *words[1:]], capture_output=True, text=True, cwd=tmp_path
        )
        assert "unrecognized arguments" not in out.stderr and "invalid choice" not in out.stderr
        assert (
            out.returncode != 0 and words[1].rstrip("/") in out.stdout + out.stderr
        )  # names the input
