"""Scripted experts and uvdiff-collect on real MuJoCo: demos succeed, vary from seed to seed,
land in a valid demo folder, and a worker that dies does not take the others' demos with it."""

import json
import multiprocessing as mp
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from demos import DemoFolder, validate
from sim import EXPERTS, Expert, SimError, collect, make_env, run_expert
from sim.perturb import Perturbation


@pytest.fixture(scope="module")
def lift():
    with make_env("lift") as env:
        yield env


def test_lift_expert_succeeds_with_monotone_stages(lift):
    expert = Expert("lift")
    runs = [run_expert(lift, expert, seed) for seed in (0, 1)]
    for r in runs:
        ep = r.episode
        assert r.success and ep.success and r.stages == 2
        assert ep.length == r.length and ep.state["eef_pos"].shape == (r.length, 3)
        # reach, grasped, then lifted for the last rows (success must hold a few steps)
        assert (np.diff(ep.stage) >= 0).all() and ep.stage[0] == 0 and set(ep.stage) == {0, 1, 2}
        assert np.abs(ep.action).max() <= 1.0 and set(ep.action[:, 6]) <= {-1.0, 1.0}
        assert ep.task == "lift the cube"
    # different seeds: different scenes and different ways of moving
    a, b = (r.episode.action for r in runs)
    assert a.shape != b.shape or not np.allclose(a, b)


def test_an_episode_is_a_function_of_its_seed(lift):
    expert = Expert("lift")
    first = run_expert(lift, expert, 7).episode
    run_expert(lift, expert, 8)  # whatever ran in between
    again = run_expert(lift, expert, 7).episode
    np.testing.assert_array_equal(first.action, again.action)
    np.testing.assert_array_equal(first.state["object"], again.state["object"])


class StepLog:
    """The real env, with every executed action kept."""

    def __init__(self, env):
        self.env, self.executed = env, []

    def __getattr__(self, name):
        return getattr(self.env, name)

    def step(self, action):
        self.executed.append(np.array(action, dtype=np.float64))
        return self.env.step(action)


def test_pushes_are_executed_but_the_expert_action_is_recorded(lift):
    env, expert = StepLog(lift), Expert("lift")
    r = run_expert(env, expert, 3, perturbation=Perturbation(0.5, rate=0.2))
    recorded, executed = r.episode.action.astype(np.float64), np.stack(env.executed)
    pushed = ~np.isclose(recorded, executed, atol=1e-6).all(axis=1)
    assert r.success and r.info["pushed_steps"] == pushed.sum() > 10
    push = executed[pushed] - recorded[pushed]
    np.testing.assert_allclose(np.linalg.norm(push[:, :3], axis=1), 0.5, rtol=1e-5)
    assert (
        np.abs(push[:, 3:]).max() < 1e-6
    )  # only the hand's position: never rotation or the gripper
    # the demo differs from the unpushed one of the same seed, and is itself reproducible
    clean = run_expert(lift, expert, 3).episode
    assert clean.length != r.length or not np.allclose(clean.action, r.episode.action)
    again = run_expert(lift, expert, 3, perturbation=Perturbation(0.5, rate=0.2)).episode
    np.testing.assert_array_equal(again.action, r.episode.action)


def test_unknown_expert_and_misplaced_orders_are_refused(tmp_path):
    with pytest.raises(ValueError, match="no scripted expert for env 'lifft'; experts: lift, "):
        Expert("lifft")
    with pytest.raises(SimError, match="orders apply to pickplace4, arrange only, not lift"):
        collect("lift", 2, tmp_path / "x", orders="train", progress=False)
    with pytest.raises(SimError, match="not a split"):
        collect("pickplace4", 2, tmp_path / "y", orders="trian", progress=False)
    assert not (tmp_path / "x").exists() and not (tmp_path / "y").exists()


def test_collect_writes_a_valid_demo_folder_with_frames(tmp_path):
    out = tmp_path / "lift"
    stats = collect(
        "lift", 3, out, seed=10, workers=2, cameras=("agentview",), image_size=(32, 32),
        progress=False,
    )  # fmt: skip
    assert stats.attempted == 3 and stats.succeeded == 3 and stats.success_rate == 1.0
    assert stats.written == ["000000", "000001", "000002"] and not stats.failed
    report = validate(out)
    assert report.ok, report.problems
    assert report.cameras == {"agentview": (32, 32)} and report.episodes == 3
    folder = DemoFolder(out)
    assert folder.info.state == {"eef_pos": 3, "eef_quat": 4, "gripper_qpos": 2, "object": 12}
    for ep_id in folder.episode_ids:
        ep = folder.read_episode(ep_id)
        assert ep.success and ep.task == "lift the cube"
        assert ep.frames["agentview"].shape == (ep.length, 32, 32, 3)
        assert ep.stage[-1] == 2 and (np.diff(ep.stage) >= 0).all()
    # the demos are the seeds' demos, whichever worker ran them
    lengths = sorted(DemoFolder(out).read_lowdim(e)["action"].shape[0] for e in folder.episode_ids)
    with make_env("lift") as env:
        expected = sorted(
            run_expert(env, Expert("lift"), s, record=False).length for s in (10, 11, 12)
        )
    assert lengths == expected


def test_a_killed_worker_loses_only_its_own_episodes(tmp_path):
    out = tmp_path / "lift"
    result = {}
    thread = threading.Thread(
        target=lambda: result.update(stats=collect("lift", 8, out, seed=0, progress=False))
    )
    thread.start()
    episodes = out / "episodes"
    deadline = time.monotonic() + 120
    while not (episodes.is_dir() and any(p.name.isdigit() for p in episodes.iterdir())):
        assert time.monotonic() < deadline, "no episode written in 120 s"
        time.sleep(0.05)
    victim = mp.active_children()[0]
    victim.kill()
    thread.join(timeout=180)
    stats = result["stats"]
    assert stats.attempted == 8
    died = [seed for seed, why in stats.failed.items() if "exited with code -9" in why]
    assert died, stats.failed
    assert stats.succeeded == 8 - len(stats.failed) >= 4  # the other worker did all of its 4
    assert validate(out).ok
    assert len(DemoFolder(out)) >= len(stats.written)


def test_workers_stop_when_the_collector_is_killed(tmp_path):
    """SIGKILL gives the collector no chance to stop its daemon workers: they must notice and
    stop, not go on adding episodes to the folder (or to the next run's at the same path)."""
    out = tmp_path / "lift"
    code = f"from sim import collect; collect('lift', 40, {str(out)!r}, seed=0, progress=False)"
    collector = subprocess.Popen([sys.executable, "-c", code])
    episodes = out / "episodes"

    def written() -> int:
        return sum(p.name.isdigit() for p in episodes.iterdir()) if episodes.is_dir() else 0

    deadline = time.monotonic() + 180
    while written() < 2:
        assert time.monotonic() < deadline and collector.poll() is None, "no episodes in 180 s"
        time.sleep(0.05)
    collector.kill()
    collector.wait()
    time.sleep(15)  # an episode under way when the collector died may still be written
    settled = written()
    time.sleep(15)  # a lift episode takes 1-3 s: orphans would add several in this time
    assert written() == settled < 40


def test_collect_cli_writes_stats_and_refuses_bad_input(tmp_path):
    out = tmp_path / "demo"
    cmd = [sys.executable, "-m", "sim.collect_cli", "env=lift", "episodes=2", f"out={out}"]
    done = subprocess.run(
        [*cmd, "seed=4", "workers=1", "progress=false"], capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert "lift: expert succeeded in 2/2 episodes (100.0%)" in done.stdout
    stats = json.loads((out / "collect_stats.json").read_text())
    assert stats["success_rate"] == 1.0 and stats["config"]["seed"] == 4
    bad = subprocess.run(
        [sys.executable, "-m", "sim.collect_cli", "env=pickplace4", "episodes=2",
         f"out={tmp_path / 'pp'}", "orders=[[milk,milk,can,bread]]"],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert bad.returncode == 2
    assert bad.stderr.strip().splitlines()[-1] == (
        "uvdiff-collect: order ('milk', 'milk', 'can', 'bread') must name each of "
        "milk, bread, cereal, can once (e.g. 'milk,bread,cereal,can')"
    )
    assert not (tmp_path / "pp").exists()
    bad = subprocess.run([*cmd, "perturb=-0.5"], capture_output=True, text=True, timeout=300)
    assert bad.returncode == 2
    assert bad.stderr.strip().splitlines()[-1] == (
        "uvdiff-collect: perturb must be a push size >= 0 (action units), got -0.5"
    )


@pytest.mark.slow
@pytest.mark.parametrize("name", list(EXPERTS))
def test_expert_success_rate(tmp_path, name):
    """Every expert succeeds in at least 95% of 20 seeded episodes."""
    stats = collect(name, 20, tmp_path / name, seed=1000, workers=2, progress=False)
    assert stats.success_rate >= 0.95, stats.failed
    assert validate(tmp_path / name).ok
    assert Path(tmp_path / name / "dataset.json").is_file()
