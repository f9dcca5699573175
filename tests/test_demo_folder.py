import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
from conftest import make_episode

from demos import DatasetInfo, DemoFolder, DemoFolderError, Episode, validate


def test_round_trip_arrays_frames_and_tasks(folder):
    assert folder.episode_ids == ["000000", "000001", "000002"]
    assert folder.info.tasks == ["reach", "push"]
    ep = folder.read_episode(1)
    src = make_episode(25, seed=1)
    np.testing.assert_array_equal(ep.action, src.action)
    np.testing.assert_array_equal(ep.state["pos"], src.state["pos"])
    np.testing.assert_allclose(ep.timestamp, np.arange(25) / 10)
    np.testing.assert_array_equal(ep.stage, src.stage)
    assert ep.success is True and ep.task == "reach"
    assert folder.read_episode(2).task == "push"
    frames = ep.frames["front"]
    assert frames.shape == (25, 32, 48, 3)
    red = frames[..., 0].mean(axis=(1, 2))
    np.testing.assert_allclose(red, (9 * np.arange(25)) % 255, atol=6)  # lossy mp4v


def test_reopen_and_append_never_rewrites(folder, info):
    before = {p: p.stat().st_mtime_ns for p in folder.root.rglob("*") if p.is_file()}
    again = DemoFolder.create(folder.root, info)
    assert again.add_episode(make_episode(12, seed=7)) == "000003"
    for path, mtime in before.items():
        if path.name != "dataset.json":
            assert path.stat().st_mtime_ns == mtime, path
    assert validate(folder.root).ok


def test_append_with_another_schema_is_refused(folder, info):
    other = DatasetInfo(**{**info.__dict__, "action_dim": 4})
    with pytest.raises(DemoFolderError, match="action_dim is 3 in the folder, 4"):
        DemoFolder.create(folder.root, other)


def test_add_episode_with_wrong_dims_writes_nothing(folder):
    ep = make_episode(10)
    ep.state["pos"] = ep.state["pos"][:, :1]
    with pytest.raises(DemoFolderError, match=r"pos has shape \(10, 1\), expected \(10, 2\)"):
        folder.add_episode(ep)
    ep = make_episode(10)
    ep.frames["front"] = ep.frames["front"][:9]
    with pytest.raises(DemoFolderError, match="has 9 frames, the episode has 10"):
        folder.add_episode(ep)
    assert len(folder) == 3
    assert not [p for p in (folder.root / "episodes").iterdir() if p.name.startswith(".")]


def test_nan_action_is_refused_on_write(folder):
    ep = make_episode(10)
    ep.action[4, 1] = np.nan
    with pytest.raises(DemoFolderError, match=r"action has 1 non-finite values .*row 4, col 1"):
        folder.add_episode(ep)


WRITER = """
import sys, numpy as np
sys.path.insert(0, {tests!r})
from conftest import make_episode
from demos import DemoFolder
folder = DemoFolder({root!r})
for i in range(100):
    folder.add_episode(make_episode(300, seed=i, size=(240, 320)))
    print(i, flush=True)
"""


def test_killed_writer_leaves_only_complete_episodes(tmp_path, info):
    info.cameras = {"front": (240, 320)}
    root = tmp_path / "demo"
    DemoFolder.create(root, info)
    code = WRITER.format(tests=os.path.dirname(__file__), root=str(root))
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "0"
    assert proc.stdout.readline().strip() == "1"
    time.sleep(0.1)  # most likely in the middle of the third episode
    proc.send_signal(signal.SIGKILL)
    printed = 2 + len(proc.stdout.read().split())
    proc.wait()
    folder = DemoFolder(root)
    # every episode the writer finished is there; the one it was writing is there whole or not
    assert printed <= len(folder) <= printed + 1
    report = validate(root)
    assert report.ok, report.problems
    # the next writer goes on after the last complete episode
    n = len(folder)
    assert folder.add_episode(make_episode(10, size=(240, 320))) == f"{n:06d}"


def test_parallel_writers_get_distinct_episodes(tmp_path, info):
    root = tmp_path / "demo"
    DemoFolder.create(root, info)
    tests = os.path.dirname(__file__)
    code = (
        f"import sys; sys.path.insert(0, {tests!r}); from conftest import make_episode;"
        f"from demos import DemoFolder; f = DemoFolder({str(root)!r});"
        "[f.add_episode(make_episode(15, seed=i, task=f't{i % 3}')) for i in range(6)]"
    )
    procs = [subprocess.Popen([sys.executable, "-c", code]) for _ in range(2)]
    assert [p.wait() for p in procs] == [0, 0]
    folder = DemoFolder(root)
    assert len(folder) == 12
    assert sorted(folder.info.tasks) == ["t0", "t1", "t2"]
    assert validate(root).ok


def test_episode_defaults_timestamps_from_fps(tmp_path):
    info = DatasetInfo(fps=4, action_dim=1)
    folder = DemoFolder.create(tmp_path / "d", info)
    folder.add_episode(Episode(action=np.zeros((3, 1))))
    np.testing.assert_allclose(folder.read_lowdim(0)["timestamp"], [0, 0.25, 0.5])
    assert json.loads((tmp_path / "d" / "dataset.json").read_text())["format_version"] == 1
