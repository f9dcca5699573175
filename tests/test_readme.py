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
