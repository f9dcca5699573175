"""uvdiff-check and the loader refuse each kind of broken folder, naming file and field."""

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from demos import DemoFolderError, validate
from demos.windows import WindowDataset

CHECK = str(Path(sys.executable).parent / "uvdiff-check")


def run_check(root):
    return subprocess.run([CHECK, str(root)], capture_output=True, text=True)


def rewrite_npz(folder, ep, **changes):
    path = folder.episode_dir(ep) / "lowdim.npz"
    arrays = dict(np.load(path))
    for key, value in changes.items():
        if value is None:
            arrays.pop(key)
        else:
            arrays[key] = value
    np.savez(path, **arrays)


def test_good_folder_passes_with_summary(folder):
    result = run_check(folder.root)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "3 episodes, 75 frames, 7.5 s, cameras: front 32x48" in result.stdout


def test_truncated_mp4(folder):
    video = folder.video_path(1, "front")
    video.write_bytes(video.read_bytes()[: video.stat().st_size // 2])
    result = run_check(folder.root)
    assert result.returncode == 1
    assert "episodes/000001/front.mp4" in result.stdout
    assert "000000" not in result.stdout and "000002" not in result.stdout


def test_npz_missing_key(folder):
    rewrite_npz(folder, 0, pos=None)
    result = run_check(folder.root)
    assert result.returncode == 1
    assert "episodes/000000/lowdim.npz: state key pos is missing" in result.stdout


def test_nan_in_actions(folder):
    a = folder.read_lowdim(2)["action"].copy()
    a[7, 0] = np.nan
    rewrite_npz(folder, 2, action=a)
    result = run_check(folder.root)
    assert result.returncode == 1
    assert "episodes/000002/lowdim.npz: action has 1 non-finite values" in result.stdout
    assert "row 7, col 0" in result.stdout


def test_frame_count_off_by_one(folder):
    low = folder.read_lowdim(0)
    rewrite_npz(
        folder, 0, **{k: np.concatenate([v, v[-1:] + 0.1]) for k, v in low.items() if v.ndim}
    )
    result = run_check(folder.root)
    assert result.returncode == 1
    assert "episodes/000000/front.mp4: has 20 frames, lowdim.npz has 21 actions" in result.stdout


def test_future_format_version(folder):
    path = folder.root / "dataset.json"
    obj = json.loads(path.read_text())
    obj["format_version"] = 2
    path.write_text(json.dumps(obj))
    result = run_check(folder.root)
    assert result.returncode == 1
    assert "dataset.json: format_version 2 is newer than this uvdiff reads (1)" in result.stdout


@pytest.mark.parametrize(
    "field, value, message",
    [
        ("fps", -5, "fps must be a positive number, got -5"),
        ("action", {"dim": 0}, "action.dim must be a positive integer, got 0"),
        ("cameras", {"front": [32]}, "cameras.front must be [height, width], got [32]"),
        ("state", {"action": 3}, "state key 'action' is reserved"),
    ],
)
def test_bad_dataset_json_fields(folder, field, value, message):
    path = folder.root / "dataset.json"
    obj = json.loads(path.read_text())
    obj[field] = value
    path.write_text(json.dumps(obj))
    result = run_check(folder.root)
    assert result.returncode == 1
    assert message in result.stdout


def test_timestamps_must_increase(folder):
    ts = folder.read_lowdim(1)["timestamp"].copy()
    ts[5] = ts[4]
    rewrite_npz(folder, 1, timestamp=ts)
    result = run_check(folder.root)
    assert "episodes/000001/lowdim.npz: timestamp is not increasing: row 5" in result.stdout


def test_camera_size_mismatch_and_missing_video(folder):
    folder.video_path(2, "front").unlink()
    path = folder.root / "dataset.json"
    obj = json.loads(path.read_text())
    obj["cameras"]["front"] = [64, 48]
    path.write_text(json.dumps(obj))
    report = validate(folder.root)
    messages = [str(p) for p in report.problems]
    assert any(
        "000000/front.mp4: frames are 32x48, dataset.json cameras.front says 64x48" in m
        for m in messages
    )
    assert any("000002/front.mp4: missing" in m for m in messages)


def test_not_a_demo_folder(tmp_path):
    result = run_check(tmp_path)
    assert result.returncode == 1
    assert "dataset.json: missing" in result.stdout


def test_training_loader_refuses_a_broken_folder_with_the_same_messages(folder):
    rewrite_npz(folder, 0, pos=None)
    with pytest.raises(DemoFolderError) as err:
        WindowDataset(folder.root, progress=False)
    assert "episodes/000000/lowdim.npz: state key pos is missing" in str(err.value)
    assert not (folder.root / "cache" / "frames").exists()  # stopped before any work
