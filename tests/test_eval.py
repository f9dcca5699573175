"""uvdiff-eval on real MuJoCo with small policies trained here on expert lift demos: what
eval_info.json holds, episodes as functions of their seeds, a killed worker costing one episode,
bad input refused before anything runs, and the subgoal relay for goal=uvd."""

import json
import multiprocessing as mp
import os
import shutil
import subprocess
import sys
import threading
import time

import cv2
import numpy as np
import pytest
import yaml

from decomposer.relabel import budgets as relabel_budgets
from decomposer.task import RelaySettings, demo_subgoals, relay_for, state_embedder
from demos import DemoFolder
from demos.subgoals import Subgoals, write_subgoals
from policies.checkpoint import load_stats
from policies.train import train
from sim import Expert, SimError, UnknownEnvError, env_spec, make_env, run_expert
from sim.eval_episode import EpisodeRunner
from sim.evaluate import EvalSettings, _prepare, evaluate
from sim.testing import mlp_policy, train_checkpoint

TINY = mlp_policy(64, d_state=16, horizon=8, n_action_steps=4)
CUT = dict(min_interval=18, gamma=0.08)  # the evaluator's default cut at 20 fps (0.9 s)
KEYS = ["eef_pos", "eef_quat", "gripper_qpos", "object"]
FAST = dict(videos=0, max_steps=20, progress=False)


pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def demos(tmp_path_factory):
    """Expert lift demos of seeds 0..2 with UVD subgoals of their normalised states; the first
    episode in the folder is one with two subgoals or more (``demos.seeds[i]``: episode i's)."""
    root = tmp_path_factory.mktemp("demos") / "lift"
    with make_env("lift") as env:
        episodes = [run_expert(env, Expert("lift"), s).episode for s in range(3)]
    stats = {
        k: {"min": np.min([e.state[k].min(0) for e in episodes], 0),
            "max": np.max([e.state[k].max(0) for e in episodes], 0)}
        for k in KEYS
    }  # fmt: skip
    cuts = [demo_subgoals(ep.state, state_embedder(KEYS, stats), **CUT)[0] for ep in episodes]
    seeds = sorted(range(3), key=lambda s: len(cuts[s]) < 2)
    folder = DemoFolder.create(root, env_spec("lift").dataset_info())
    for s in seeds:
        ep_id = folder.add_episode(episodes[s])
        (folder.episode_dir(ep_id) / "subgoals.json").write_text(json.dumps({"subgoals": cuts[s]}))
    folder.seeds = seeds
    return folder


def _train(demos, out, goal):
    return train_checkpoint(demos.root, out, goal, policy=TINY, steps=150, batch_size=32,
                            lr=1e-3, warmup_steps=10)  # fmt: skip


@pytest.fixture(scope="module")
def final_ckpt(demos, tmp_path_factory):
    return _train(demos, tmp_path_factory.mktemp("run") / "final", "final")


@pytest.fixture(scope="module")
def uvd_ckpt(demos, tmp_path_factory):
    return _train(demos, tmp_path_factory.mktemp("run") / "uvd", "uvd")


def test_eval_info_videos_report_and_seeded_episodes(final_ckpt, tmp_path):
    out = tmp_path / "eval"
    res = evaluate(final_ckpt, "lift", 3, seed=50, out_dir=out, workers=2,
                   videos=1, video_size=(32, 40), max_steps=20, progress=False)  # fmt: skip
    info = json.loads((out / "eval_info.json").read_text())
    assert info == res.info
    assert info["env"] == "lift" and info["episodes"] == 3 and info["goal"] == "final"
    assert (
        info["sampler"] == "ddim" and info["steps"] == 3 and info["settings"]["n_action_steps"] == 4
    )
    eps = info["per_episode"]
    assert [e["seed"] for e in eps] == [50, 51, 52] and [e["index"] for e in eps] == [0, 1, 2]
    assert info["pc_success"] == 100 * sum(e["success"] for e in eps) / 3
    low, high = info["ci95_success"]  # Wilson's interval (sim.intervals, checked on its own)
    assert (
        0 <= low <= info["pc_success"] <= high <= 100 and high - low > 40
    )  # 3 episodes say little
    assert info["mean_stages"] == np.mean([e["stages"] for e in eps]) and info["n_stages"] == 2
    assert info["stage_names"] == ["reach", "grasped", "lifted"] and info["n_errors"] == 0
    for e in eps:
        assert e["error"] is None and e["task"] == "lift the cube" and 0 <= e["stages"] <= 2
        assert e["length"] == 20 or e["success"]
        assert e["demo"]["source"] == "expert" and e["demo"]["success"]  # the task demo
        assert len(e["final_eef_pos"]) == 3
    # episodes of different seeds start from different scenes and end in different places
    assert eps[0]["final_eef_pos"] != eps[1]["final_eef_pos"]
    assert len((out / "episodes.jsonl").read_text().splitlines()) == 3
    # one video, of episode 0: a frame per step plus the last
    assert eps[0]["video"] == "videos/episode_000.mp4" and "video" not in eps[1]
    cap = cv2.VideoCapture(str(out / eps[0]["video"]))
    n, shape = 0, None
    while (got := cap.read())[0]:
        n, shape = n + 1, got[1].shape
    assert n == eps[0]["length"] + 1 and shape == (32, 40, 3)
    report = (out / "report.md").read_text()
    assert f"success: **{info['pc_success']:.1f}%**" in report and "report.png" in report
    assert (out / "report.png").read_bytes()[:4] == b"\x89PNG"

    # the same seed gives the same episode, in another worker count and another position
    again = evaluate(final_ckpt, "lift", 2, seed=51, out_dir=tmp_path / "again", workers=0, **FAST)
    for a, b in zip(again.episodes, eps[1:], strict=True):
        for key in ("seed", "success", "length", "stages", "final_eef_pos"):
            assert a[key] == b[key], key


def test_delayed_plans_and_rtc_run_in_simulation_and_seams_are_counted(final_ckpt, tmp_path):
    inference = {"rtc": True, "delay": 2}  # the checkpoint plans 4 actions at a time
    res = evaluate(final_ckpt, "lift", 1, seed=50, out_dir=tmp_path / "rtc", workers=0,
                   videos=0, max_steps=20, progress=False, inference=inference)  # fmt: skip
    info = res.info
    assert info["settings"]["rtc"] is True and info["settings"]["delay"] == 2
    (ep,) = info["per_episode"]
    assert ep["error"] is None and ep["length"] == 20
    # plans at steps 4, 8, 12, 16 take over 2 steps later: 4 handovers among 19 step pairs
    assert ep["seams"]["handover"][1] == 4 and ep["seams"]["within"][1] == 15
    seams = info["seams"]
    assert seams["handover"] == pytest.approx(ep["seams"]["handover"][0] / 4, abs=1e-6)
    assert seams["ratio"] == pytest.approx(seams["handover"] / seams["within"], rel=1e-3)
    assert "where a new chunk takes over" in (tmp_path / "rtc" / "report.md").read_text()


def test_a_killed_worker_costs_only_its_episode(final_ckpt, tmp_path):
    out = tmp_path / "eval"
    result = {}
    thread = threading.Thread(
        target=lambda: result.update(
            res=evaluate(final_ckpt, "lift", 3, seed=0, out_dir=out, workers=1, videos=0,
                         max_steps=40, progress=False)
        )
    )  # fmt: skip
    thread.start()
    log = out / "episodes.jsonl"
    deadline = time.monotonic() + 180
    while not (log.is_file() and log.read_text().strip()):
        assert time.monotonic() < deadline, "no episode finished in 180 s"
        time.sleep(0.05)
    first = json.loads(log.read_text().splitlines()[0])
    assert first["index"] == 0 and first["error"] is None
    time.sleep(0.3)  # the worker is into episode 1 (an episode takes over a second)
    victim = next(p for p in mp.active_children() if p.pid == first["worker"])
    victim.kill()
    thread.join(timeout=240)
    eps = result["res"].episodes
    assert [e["seed"] for e in eps] == [0, 1, 2]
    assert [bool(e["error"]) for e in eps] == [False, True, False]
    assert (
        f"worker process {first['worker']} exited with code -9 during this episode"
        in eps[1]["error"]
    )
    assert not eps[1]["success"] and result["res"].info["n_errors"] == 1
    # a fresh worker ran the rest
    assert eps[2]["length"] > 0 and eps[2]["worker"] not in (None, first["worker"])
    assert "1 episodes ended in an error" in (out / "report.md").read_text()


def test_workers_stop_when_the_evaluation_is_killed(final_ckpt, tmp_path):
    """The episodes are queued ahead: orphaned workers of a SIGKILLed evaluation would run
    them all (here about a minute of CPU) for no one."""
    import psutil

    code = (
        "from sim.evaluate import evaluate; "
        f"evaluate({str(final_ckpt)!r}, 'lift', 200, out_dir={str(tmp_path / 'eval')!r}, "
        "workers=2, videos=0, max_steps=20, progress=False)"
    )
    evaluation = subprocess.Popen([sys.executable, "-c", code])
    log = tmp_path / "eval" / "episodes.jsonl"
    deadline = time.monotonic() + 180
    while not (log.is_file() and log.read_text().strip()):
        assert time.monotonic() < deadline and evaluation.poll() is None, "no episode in 180 s"
        time.sleep(0.05)
    workers = psutil.Process(evaluation.pid).children()
    assert len(workers) >= 2
    evaluation.kill()
    evaluation.wait()
    _, alive = psutil.wait_procs(workers, timeout=20)  # each ends its episode (< 1 s), then stops
    for p in alive:
        p.kill()
    assert not alive, f"{len(alive)} workers still running 20 s after the evaluation died"


def test_bad_input_is_refused_before_anything_runs(final_ckpt, tmp_path):
    out = tmp_path / "eval"
    with pytest.raises(
        UnknownEnvError,
        match="unknown env 'lifft'; valid envs: lift, can, square, stack, pickplace4",
    ):
        evaluate(final_ckpt, "lifft", 2, out_dir=out, **FAST)
    # a lift checkpoint in can: the object state has another size
    with pytest.raises(
        SimError, match=r"cannot provide: object with 12 numbers \(the env's object has 18\)"
    ):
        evaluate(final_ckpt, "can", 2, out_dir=out, **FAST)
    # a checkpoint reading a joint-velocity vector and a wrist camera the env does not have
    ckpt = tmp_path / "ckpt"
    shutil.copytree(final_ckpt, ckpt)
    doc = yaml.safe_load((ckpt / "config.yaml").read_text())
    doc["policy"]["state"]["joint_vel"] = 7
    doc["policy"]["cameras"] = {"wrist_cam": [84, 84]}
    (ckpt / "config.yaml").write_text(yaml.safe_dump(doc))
    with pytest.raises(SimError) as e:
        evaluate(ckpt, "lift", 2, out_dir=out, **FAST)
    assert (
        "needs observations env lift cannot provide: joint_vel (a 7-vector); camera wrist_cam."
        in str(e.value)
    )
    assert "The env provides state eef_pos (3), eef_quat (4), gripper_qpos (2), object (12)" in str(
        e.value
    )
    with pytest.raises(SimError, match="orders apply to pickplace4, arrange only, not lift"):
        evaluate(final_ckpt, "lift", 2, out_dir=out, orders="train", **FAST)
    with pytest.raises(SimError, match="sampler"):
        evaluate(final_ckpt, "lift", 2, out_dir=out, sampler="nope", **FAST)
    with pytest.raises(SimError, match="n_action_steps=99 not in"):
        evaluate(final_ckpt, "lift", 2, out_dir=out, inference={"n_action_steps": 99}, **FAST)
    with pytest.raises(SimError, match="is not 'expert' or a demo folder"):
        evaluate(final_ckpt, "lift", 2, out_dir=out, goal_source=str(tmp_path / "nowhere"), **FAST)
    assert not out.exists()
    # the command says it in one line and exits 2; a renderer that cannot start is found
    # before any worker starts, naming the backend tried
    env = {k: v for k, v in os.environ.items() if k not in ("DISPLAY", "WAYLAND_DISPLAY")}
    bad = subprocess.run(
        [sys.executable, "-m", "sim.eval_cli", f"checkpoint={final_ckpt}", "env=lift",
         "videos=1", f"out_dir={out}"],
        capture_output=True, text=True, timeout=300, env={**env, "MUJOCO_GL": "glfw"},
    )  # fmt: skip
    assert bad.returncode == 2, bad.stderr[-2000:]
    last = bad.stderr.strip().splitlines()[-1]
    assert last.startswith(
        "uvdiff-eval: the offscreen renderer could not start with MUJOCO_GL=glfw"
    )
    assert "apt-get install" in last and not out.exists()


def test_uvd_policy_follows_the_task_demo_subgoals_with_the_relay(uvd_ckpt, demos, tmp_path):
    kw = dict(videos=0, max_steps=50, progress=False, workers=0)
    seed = demos.seeds[0]  # its demo has two subgoals or more
    res = evaluate(uvd_ckpt, "lift", 1, seed=seed, out_dir=tmp_path / "a", **kw)
    (ep,) = res.episodes
    assert ep["error"] is None and res.info["relay"]["rule"] == "relative"
    # the task demo is the expert's for this seed: the folder's episode 0, cut the same way
    demo = demos.read_episode(0, frames=False)
    stats = load_stats(uvd_ckpt, KEYS)
    subgoals, _ = demo_subgoals(demo.state, state_embedder(KEYS, stats), **CUT)
    assert ep["demo"]["subgoals"] == subgoals and len(subgoals) >= 2
    assert ep["demo"]["length"] == demo.length
    # the relative rule moves on at the latest delta (3) steps past each subgoal's budget
    budgets = relabel_budgets(subgoals)
    reachable = [k for k in range(len(subgoals) - 1) if budgets[: k + 1].sum() + 4 * (k + 1) < 50]
    assert len(ep["subgoal_switches"]) >= len(reachable) >= 1
    assert ep["subgoal_switches"][0] <= budgets[0] + 4
    assert ep["subgoals_reached"] >= len(ep["subgoal_switches"])
    # the same demo from the folder (episode 0) gives the same rollout
    res_b = evaluate(uvd_ckpt, "lift", 1, seed=seed, out_dir=tmp_path / "b",
                     goal_source=str(demos.root), **kw)  # fmt: skip
    (ep_b,) = res_b.episodes
    assert ep_b["demo"]["subgoals"] == subgoals and ep_b["demo"]["source"].endswith(":000000")
    for key in ("length", "stages", "final_eef_pos", "subgoal_switches"):
        assert ep_b[key] == ep[key], key


def _walk(relay, emb: np.ndarray, path) -> list[int]:
    """The active subgoal at each step of a rollout that visits demo frames ``path``."""
    relay.reset()
    return [relay.update(emb[t]) for t in path]


def test_nearest_relay_follows_progress_where_the_timed_rule_runs_ahead():
    # a demo that moves along a line: frame t sits at t; subgoals at frames 10, 20, 29
    emb = np.arange(30, dtype=float)[:, None] * np.array([[1.0, 0.5]])
    subgoals = [10, 20, 29]
    nearest = relay_for(emb, subgoals, RelaySettings(rule="nearest"))
    # the goal is the subgoal strictly ahead of the nearest demo frame
    assert _walk(nearest, emb, [0, 9, 10, 15, 20, 25, 29]) == [0, 0, 1, 1, 2, 2, 2]
    # a rollout stalled at frame 5's state keeps the first goal however long it waits;
    # the timed rule gives it up 3 steps past the demo's 11 (frames 0..10) and runs on
    assert _walk(nearest, emb, [5] * 40) == [0] * 40
    timed = _walk(relay_for(emb, subgoals, RelaySettings()), emb, [5] * 40)
    assert timed[14] == 0 and timed[15] == 1 and timed[-1] == 2
    # a wider slack (relay_delta) waits longer before giving a subgoal up
    wide = _walk(relay_for(emb, subgoals, RelaySettings(delta=8)), emb, [5] * 40)
    assert wide[19] == 0 and wide[20] == 1
    # it never moves back: a rollout that falls back to an earlier state keeps its goal
    assert _walk(nearest, emb, [25, 3])[-1] == 2
    with pytest.raises(ValueError, match="end at the last frame 29"):
        relay_for(emb, [10, 20], RelaySettings(rule="nearest"))


def test_a_demo_folder_task_uses_its_subgoals_file(uvd_ckpt, demos, tmp_path):
    # the evaluator reads a folder's subgoals.json as the deploy loop does (decomposer.task),
    # here a cut UVD would not make: two evenly spaced subgoals
    folder = DemoFolder(shutil.copytree(demos.root, tmp_path / "demos"))
    T = folder.read_episode(0, frames=False).length
    write_subgoals(folder, 0, Subgoals([T // 2, T - 1], method="equal"))
    kw = dict(videos=0, max_steps=10, progress=False, workers=0, goal_source=str(folder.root))
    res = evaluate(uvd_ckpt, "lift", 1, seed=demos.seeds[0], out_dir=tmp_path / "e", **kw)
    assert res.episodes[0]["demo"]["subgoals"] == [T // 2, T - 1]


def test_uvd_policy_with_the_nearest_relay(uvd_ckpt, demos, tmp_path):
    kw = dict(videos=0, max_steps=40, progress=False, workers=0, seed=demos.seeds[0])
    nearest = RelaySettings(rule="nearest")
    res = evaluate(uvd_ckpt, "lift", 1, out_dir=tmp_path / "n", relay=nearest, **kw)
    (ep,) = res.episodes
    assert ep["error"] is None and res.info["relay"]["rule"] == "nearest"
    assert 0 <= ep["subgoals_reached"] <= len(ep["demo"]["subgoals"])
    # the worker's relay for that episode tracks progress over the task demo's own frames:
    # at the demo's first subgoal frame it hands over the second subgoal
    job = _prepare(uvd_ckpt, "lift", EvalSettings(episodes=1, relay=nearest, **kw))
    runner = EpisodeRunner(job)
    try:
        goals, info = runner._task(0, kw["seed"], None)
    finally:
        runner.close()
    relay = goals.relay
    assert relay.rule == "nearest" and len(relay.train) == info["length"]
    assert info["subgoals"] == ep["demo"]["subgoals"] and len(goals.goals) >= 2
    assert relay.update(relay.train[info["subgoals"][0]]) == 1
    with pytest.raises(ValueError, match="rule=.nope.: use one of relative, paper, nearest"):
        RelaySettings(rule="nope")
    with pytest.raises(ValueError, match="delta must be an int >= 0 steps, got -1"):
        RelaySettings(delta=-1)
    with pytest.raises(SimError, match="relay must be a decomposer.task.RelaySettings"):
        evaluate(uvd_ckpt, "lift", 1, out_dir=tmp_path / "x", relay="nearest", **kw)


def test_the_command_writes_eval_info_with_its_config(final_ckpt, tmp_path):
    out = tmp_path / "eval"
    done = subprocess.run(
        [sys.executable, "-m", "sim.eval_cli", f"checkpoint={final_ckpt}", "env=lift",
         "episodes=1", "seed=7", "workers=0", "videos=0", "max_steps=5", f"out_dir={out}",
         "progress=false", "steps=2", "sampler=euler", "n_action_steps=1", "guidance=1.5",
         "temporal_ensemble=0.01", "light_scale=0.5", "camera_shift=[0,0.02,0]"],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.startswith("lift: success ") and "report: " in done.stdout
    info = json.loads((out / "eval_info.json").read_text())
    assert info["config"]["seed"] == 7 and info["per_episode"][0]["seed"] == 7
    assert info["sampler"] == "euler" and info["steps"] == 2
    assert info["settings"]["n_action_steps"] == 1 and info["settings"]["guidance"] == 1.5
    assert info["settings"]["temporal_ensemble"] == 0.01
    assert info["scene"] == {"camera_shift": [0.0, 0.02, 0.0], "light_scale": 0.5}
    # steps= is the renamed denoise_steps=: it still works, and says so
    assert "steps= is renamed denoise_steps=; using denoise_steps=2" in done.stderr


@pytest.mark.slow
def test_state_beso_learns_lift_from_expert_demos(tmp_path):
    """BESO (configs/policy/beso_mlp.yaml) on state observations, trained on 50 expert lift
    demos as ``uvdiff-train ... policy=beso_mlp goal=final steps=4000 lr=3e-4
    warmup_steps=200`` would: >= 90% of 20 seeded episodes (about 15 minutes on 2 cores)."""
    from importlib.resources import files

    from sim import collect

    stats = collect("lift", 50, tmp_path / "demos", seed=1000, workers=2, progress=False)
    assert stats.success_rate >= 0.95
    policy = yaml.safe_load(files("configs").joinpath("policy/beso_mlp.yaml").read_text())
    run = train(tmp_path / "demos", tmp_path / "run", policy=policy, goal="final", steps=4000,
                lr=3e-4, warmup_steps=200, checkpoint_every=4000, progress=False)  # fmt: skip
    res = evaluate(run.checkpoint, "lift", 20, seed=0, out_dir=tmp_path / "eval", workers=2,
                   videos=0, progress=False)  # fmt: skip
    assert res.info["n_errors"] == 0
    assert res.pc_success >= 90, res.info["per_episode"]
