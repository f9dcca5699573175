"""uvdiff-decompose end to end on a small synthetic folder: subgoals.json that training reads,
plots, the summary, and one-line errors for bad input."""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from decomposer import boundary_scores
from decomposer.cli import run
from demos import DemoFolder
from demos.synthetic import make_folder
from policies.goals import uvd_goal_indices

PNG = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def base(tmp_path_factory):
    return make_folder(tmp_path_factory.mktemp("syn") / "demo", 3, T=60, size=(40, 40)).root


@pytest.fixture
def data(base, tmp_path):
    """A fresh copy per test (the command writes into the folder)."""
    return Path(shutil.copytree(base, tmp_path / "demo"))


def cfg(**overrides):
    from hydra import compose, initialize_config_module

    with initialize_config_module("configs", version_base="1.3"):
        args = [f"{k}={v}" for k, v in overrides.items()]
        return compose("decompose", overrides=[*args, "progress=false"])


def test_end_to_end_subgoals_plots_summary(data, capsys):
    assert run(cfg(data=data, backbone="state", min_interval_s=0.5)) == 0
    out = capsys.readouterr().out
    folder = DemoFolder(data)
    goals = uvd_goal_indices(folder)  # what uvdiff-train goal=uvd reads
    assert sorted(goals) == folder.episode_ids
    for ep in folder.episode_ids:
        doc = json.loads((folder.episode_dir(ep) / "subgoals.json").read_text())
        T = len(folder.read_lowdim(ep)["action"])
        assert doc["subgoals"][-1] == T - 1 and doc["subgoals"] == sorted(set(doc["subgoals"]))
        assert doc["backbone"] == "state" and len(doc["weights_hash"]) == 16
        assert doc["method"] == "uvd"
        assert doc["parameters"]["min_interval"] == 10  # 0.5 s at 20 fps
        assert doc["parameters"]["gamma"] == 0.08
        assert len(goals[ep]) == T and goals[ep][-1] == T - 1
        assert (folder.episode_dir(ep) / "decomposition.png").read_bytes()[:8] == PNG

    summary = json.loads((data / "decomposition_summary.json").read_text())
    assert [e["episode"] for e in summary["episodes"]] == folder.episode_ids
    pooled = summary["pooled"]
    assert pooled["n_true"] == 6  # three stages: two ends per episode
    assert 0 <= pooled["precision"] <= 1 and 0 < pooled["recall"] <= 1
    md = (data / "decomposition_summary.md").read_text()
    assert "| all |" in md and "precision" in md
    assert "| all |" in out  # printed too


def test_image_backbone_and_baselines(data):
    assert run(cfg(data=data, backbone="pixels", min_interval=8, gamma=0.1)) == 0
    ep = DemoFolder(data).episode_ids[0]
    doc = json.loads((data / "episodes" / ep / "subgoals.json").read_text())
    assert doc["backbone"] == "pixels" and doc["parameters"]["camera"] == "agentview"
    assert doc["parameters"]["min_interval"] == 8

    assert run(cfg(data=data, method="equal", **{"+method_args.n_subgoals": 3})) == 0
    doc = json.loads((data / "episodes" / ep / "subgoals.json").read_text())
    assert len(doc["subgoals"]) == 3 and doc["backbone"] is None and doc["method"] == "equal"

    assert run(cfg(data=data, method="oracle")) == 0
    s = json.loads((data / "decomposition_summary.json").read_text())["pooled"]
    assert s["precision"] == 1.0 and s["recall"] == 1.0 and s["mean_offset_s"] == 0.0


def test_embeddings_are_cached_between_runs(data):
    assert run(cfg(data=data, backbone="pixels")) == 0
    cached = sorted((data / "cache" / "embeddings").glob("pixels-*/agentview/*.npy"))
    assert len(cached) == 3
    stamp = [p.stat().st_mtime_ns for p in cached]
    assert run(cfg(data=data, backbone="pixels", gamma=0.05)) == 0
    assert [p.stat().st_mtime_ns for p in cached] == stamp


def one_line_error(capsys, **overrides) -> str:
    assert run(cfg(**overrides)) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("uvdiff-decompose: ") and "\n" not in err and "Traceback" not in err
    return err


def test_bad_input_is_one_line(data, tmp_path, capsys):
    assert "dataset.json" in one_line_error(capsys, data=tmp_path / "nowhere", backbone="state")
    assert "unknown backbone 'nope'" in one_line_error(capsys, data=data, backbone="nope")
    assert "unknown decomposition method" in one_line_error(capsys, data=data, method="magic")
    assert "needs a backbone" in one_line_error(capsys, data=data)
    err = one_line_error(capsys, data=data, backbone="vip", weights=tmp_path / "none.pt")
    assert "none.pt does not exist" in err
    assert "not both" in one_line_error(
        capsys, data=data, backbone="state", min_interval=3, min_interval_s=1.0
    )
    assert "gamma" in one_line_error(capsys, data=data, backbone="state", gamma=-1)

    # a damaged video: the message names it
    ep = DemoFolder(data).episode_ids[1]
    video = data / "episodes" / ep / "agentview.mp4"
    video.write_bytes(b"\x00" * 100)
    err = one_line_error(capsys, data=data, backbone="pixels")
    assert f"episodes/{ep}/agentview.mp4" in err


def test_nan_state_is_named(data, capsys):
    ep = DemoFolder(data).episode_ids[0]
    path = data / "episodes" / ep / "lowdim.npz"
    arrays = dict(np.load(path))
    arrays["eef_pos"][3, 1] = np.nan
    np.savez(path, **arrays)
    err = one_line_error(capsys, data=data, backbone="state")
    assert f"episodes/{ep}/lowdim.npz" in err and "eef_pos" in err


def test_final_stage_end_counts_as_the_final_goal():
    stage = np.array([0] * 30 + [1] * 25 + [2] * 5)  # the last stage starts 0.25 s before the end
    strict = boundary_scores([29, 54, 59], stage, fps=20)
    lenient = boundary_scores([29, 54, 59], stage, fps=20, final_within_s=0.5)
    assert (strict["n_true"], strict["recall"], strict["precision"]) == (2, 1.0, 1.0)
    assert (lenient["n_true"], lenient["n_pred"], lenient["recall"]) == (1, 1, 1.0)
    lenient = boundary_scores([29, 59], stage, fps=20, final_within_s=0.5)
    assert (lenient["n_true"], lenient["recall"], lenient["precision"]) == (1, 1.0, 1.0)


def test_console_script(base, tmp_path):
    """The installed entry point: hydra parses, errors come out as one line and exit 2 (the
    successful path through the same ``run`` is covered above)."""
    data = shutil.copytree(base, tmp_path / "demo")
    exe = Path(sys.executable).with_name("uvdiff-decompose")
    env = {**os.environ, "UVDIFF_OFFLINE": "1", "UVDIFF_CACHE": str(tmp_path / "cache")}
    bad = subprocess.run(
        [exe, f"data={data}", "backbone=r3m"], capture_output=True, text=True, env=env, timeout=120
    )
    assert bad.returncode == 2, bad.stderr
    assert bad.stderr.count("\n") == 1 and "drive.google.com" in bad.stderr
    assert str(tmp_path / "cache" / "weights" / "r3m" / "model.pt") in bad.stderr


def test_the_default_min_interval_is_seconds_at_the_folders_fps():
    from decomposer.pipeline import frames_from_seconds

    # one default, 0.9 s (UVD's 18 frames at 20 fps), whatever the folder's rate
    assert frames_from_seconds(20, None, None) == 18
    assert frames_from_seconds(10, None, None) == 9 and frames_from_seconds(30, None, None) == 27
    assert frames_from_seconds(10, 5, None) == 5 and frames_from_seconds(10, None, 2.0) == 20
