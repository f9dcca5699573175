"""One path from a task demo to goals (decomposer.task) and the subgoals.json format
(demos.subgoals), on demos whose subgoals are known by construction."""

import json
import warnings

import numpy as np
import pytest

from decomposer.task import (
    FixedGoal,
    RelayGoal,
    RelaySettings,
    read_task_demo,
    relay_settings,
    state_embedder,
    task_goals,
)
from demos import DatasetInfo, DemoFolder, DemoFolderError, Episode
from demos.subgoals import SUBGOALS, Subgoals, read_subgoals, write_subgoals


def line_demo(root, T=100, turn=50):
    """x goes out to 1 at frame ``turn`` and back: UVD cuts at the turn."""
    info = DatasetInfo(fps=20, action_dim=2, state={"pos": 2}, robot="test")
    folder = DemoFolder.create(root, info)
    u = np.arange(T, dtype=np.float32)
    x = np.where(u <= turn, u / turn, 1 - (u - turn) / (T - 1 - turn))
    pos = np.stack([x, u / T], 1).astype(np.float32)
    folder.add_episode(Episode(action=np.zeros((T, 2), np.float32), state={"pos": pos}))
    return folder, pos


def test_subgoals_file_round_trip_and_old_key_names(tmp_path):
    folder, _ = line_demo(tmp_path / "d")
    write_subgoals(folder, 0, Subgoals([np.int64(49), 99], "state", "abc", "uvd", {"g": np.nan}))
    doc = json.loads((folder.episode_dir(0) / SUBGOALS).read_text())
    assert doc["subgoals"] == [49, 99] and doc["parameters"] == {"g": None}
    sub = read_subgoals(folder, 0)
    assert sub.frames == [49, 99] and sub.backbone == "state" and sub.method == "uvd"
    for old in ("frame_indices", "indices"):  # files of earlier writers still read
        (folder.episode_dir(0) / SUBGOALS).write_text(json.dumps({old: [20, 99]}))
        assert read_subgoals(folder, 0).frames == [20, 99]


@pytest.mark.parametrize(
    "text,match",
    [
        ("{", "not valid JSON"),
        ("[1, 2]", "must hold a JSON object"),
        ('{"backbone": "x"}', "no 'subgoals' list"),
        ('{"subgoals": [50, 40, 99]}', "strictly ascending"),
        ('{"subgoals": [10, 98]}', "end at the last frame 99"),
        ('{"subgoals": [true, 99]}', "frame indices"),
        ('{"subgoals": [1.5, 99]}', "list of ints"),
    ],
)
def test_a_bad_subgoals_file_is_named(tmp_path, text, match):
    folder, _ = line_demo(tmp_path / "d")
    (folder.episode_dir(0) / SUBGOALS).write_text(text)
    with pytest.raises(DemoFolderError, match=rf"episodes/000000/subgoals.json: .*{match}"):
        read_subgoals(folder, 0)


def test_task_goals_from_the_file_or_cut_here(tmp_path):
    folder, pos = line_demo(tmp_path / "d")
    embed = state_embedder(["pos"])
    task = read_task_demo(folder, 0, ["pos"])
    assert task.subgoals is None and task.fps == 20
    # no subgoals.json: UVD cuts at the turn (min interval 0.9 s = 18 frames at 20 fps)
    cut = task_goals(task.rows, relay=RelaySettings(), embed=embed, fps=task.fps)
    assert isinstance(cut, RelayGoal) and len(cut.subgoals) == 2
    assert abs(cut.subgoals[0] - 50) <= 2 and cut.subgoals[-1] == 99
    # a subgoals.json (here another decomposition) is used as it is, whatever UVD would cut
    write_subgoals(folder, 0, Subgoals([30, 70, 99], method="equal"))
    task = read_task_demo(folder, 0, ["pos"])
    given = task_goals(task.rows, relay=RelaySettings(), embed=embed, subgoals=task.subgoals)
    assert given.subgoals == [30, 70, 99]
    np.testing.assert_array_equal(given.goals[1]["pos"], pos[70])
    # the relay walks them: a rollout that replays the demo reaches each in turn
    given.reset()
    active = [given.relay.update(embed({"pos": p})) for p in pos] and given.active
    assert active == 2 and given.done
    # no relay: the last frame throughout
    fixed = task_goals(task.rows, relay=None)
    assert isinstance(fixed, FixedGoal) and fixed.active == 0 and not fixed.done
    np.testing.assert_array_equal(fixed({})["pos"], pos[-1])


def test_task_goals_refuse_what_cannot_work(tmp_path):
    folder, _ = line_demo(tmp_path / "d")
    rows = read_task_demo(folder, 0, ["pos"]).rows
    with pytest.raises(ValueError, match="needs an embed function"):
        task_goals(rows, relay=RelaySettings())
    with pytest.raises(ValueError, match="needs its fps"):
        task_goals(rows, relay=RelaySettings(), embed=state_embedder(["pos"]))
    with pytest.raises(ValueError, match="end at the last frame 99"):
        task_goals(rows, relay=RelaySettings(), embed=state_embedder(["pos"]), subgoals=[10])
    with pytest.raises(ValueError, match=r"goal keys \['grip'\]"):
        read_task_demo(folder, 0, ["grip"])


def test_relay_settings_in_seconds_and_renamed_keys_warn():
    s = relay_settings({"relay": "nearest", "relay_eps": 0.3, "min_interval_s": 0.5}, fps=30)
    assert s == RelaySettings(rule="nearest", eps=0.3, min_interval_s=0.5)
    assert s.min_interval(30) == 15 and RelaySettings().min_interval(20) == 18
    with pytest.warns(FutureWarning, match="min_interval_s=0.6"):
        old = relay_settings({"min_interval": 12}, fps=20)
    assert old.min_interval(20) == 12
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with pytest.raises(ValueError, match="not also min_interval"):
            relay_settings({"min_interval": 12, "min_interval_s": 1.0}, fps=20)
    for bad, match in [({"rule": "x"}, "rule='x'"), ({"eps": 0}, "eps must be > 0"),
                       ({"gamma": -1}, "gamma must be > 0"),
                       ({"min_interval_s": -1}, ">= 0 seconds")]:  # fmt: skip
        with pytest.raises(ValueError, match=match):
            RelaySettings(**bad)


def test_deploy_relay_takes_a_rule_and_the_old_boolean_with_a_warning():
    from omegaconf import OmegaConf

    from real.deploy_cli import deploy_relay

    base = OmegaConf.load("configs/deploy.yaml")
    base.pop("defaults")
    assert deploy_relay(base, fps=20) == RelaySettings()
    assert deploy_relay(OmegaConf.merge(base, {"relay": "none"}), fps=20) is None
    assert deploy_relay(OmegaConf.merge(base, {"relay": "nearest"}), fps=20).rule == "nearest"
    with pytest.warns(FutureWarning, match="relay=false is now relay=none"):
        assert deploy_relay(OmegaConf.merge(base, {"relay": False}), fps=20) is None
    with pytest.warns(FutureWarning, match="relay=true is now relay=relative"):
        assert deploy_relay(OmegaConf.merge(base, {"relay": True}), fps=20) == RelaySettings()
