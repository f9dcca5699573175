"""The main job end to end: real sim, real training, real evaluation, the report, stage caching."""

import json
import os
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import pytest

from sim.pipeline import DemoSettings, quick_settings, run_demo, settings_from
from sim.testing import Killed, kill_at

TINY = DemoSettings(
    task="arrange", episodes=3, cameras=("agentview",), image_size=(48, 48), backbone="bc_local",
    fit_steps=10,
    train_steps=12, batch_size=32, eval_episodes=1, max_steps=30, videos=1, workers=0,
)  # fmt: skip


@pytest.fixture(scope="module")
def first_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("demo")
    result = run_demo(TINY, root / "run1", root / "cache", progress=False)
    return root, result


def test_every_stage_runs_and_the_report_shows_this_runs_numbers(first_run):
    root, result = first_run
    assert list(result.stages) == [
        "collect", "validate", "decompose", "decompose equal",
        "train uvd", "train final", "train equal",
        "eval uvd", "eval final", "eval equal", "eval uvd seen", "eval final seen",
        "eval equal seen", "report",
    ]  # fmt: skip
    assert not any(r.get("cached") for r in result.stages.values())
    html = result.report.read_text()
    cache = root / "cache"
    for goal in TINY.goals:
        unseen = json.loads(next(cache.glob(f"eval_{goal}-*/eval_info.json")).read_text())
        seen = json.loads(next(cache.glob(f"eval_{goal}_seen-*/eval_info.json")).read_text())
        assert unseen["episodes"] == 1 and unseen["seed"] == TINY.eval_seed
        assert unseen["per_episode"][0]["order"] in (["left", "right"], ["right", "middle"])
        assert seen["per_episode"][0]["order"] == ["left", "middle"]  # the first train order
        assert result.success[goal] == unseen["pc_success"]
        n = unseen["n_success"]
        assert f"<td>{goal}</td><td><b>{100 * n:.0f}%</b>" in html
        assert f'src="film_{goal}.mp4"' in html and (result.out_dir / f"film_{goal}.mp4").is_file()
    assert "uvd − final" in html and "uvd − equal" in html  # the differences, with intervals
    for png in ("success.png", "stages.png", "training.png", "film_uvd.png",
                "decomposition_000000.png"):  # fmt: skip
        assert (result.out_dir / png).stat().st_size > 1000, png
        assert f'src="{png}"' in html
    # UVD cut the camera's video on the fitted backbone; the equal arm's mirror holds evenly
    # spaced subgoals, as many as UVD found on average; its checkpoint says how they were cut
    demos = next(cache.glob("demos-*"))
    sub = json.loads((demos / "episodes/000000/subgoals.json").read_text())
    assert sub["backbone"] == "bc_local" and sub["method"] == "uvd"
    assert sub["parameters"]["camera"] == "agentview"
    equal = next(cache.glob("demos_equal-*"))
    eq = json.loads((equal / "episodes/000000/subgoals.json").read_text())
    n_sub = result.stages["decompose equal"]["n_subgoals"]
    assert eq["method"] == "equal" and len(eq["subgoals"]) == n_sub
    from policies.checkpoint import load_config, resolve

    cfg, _ = load_config(resolve(next(cache.glob("train_equal-*"))))
    assert cfg.subgoal_cut == {"method": "equal", "n_subgoals": n_sub}
    assert set(cfg.state) == {"eef_pos", "eef_quat", "gripper_qpos"}  # no object pose
    assert set(cfg.embeddings) == {"agentview_emb"}
    info = json.loads(next(cache.glob("eval_equal-*/eval_info.json")).read_text())
    assert info["relay"]["cut"] == "equal" and info["relay"]["n_subgoals"] == n_sub
    saved = json.loads((result.out_dir / "demo_result.json").read_text())
    assert saved["success"] == result.success


def test_a_rerun_skips_finished_stages_and_a_killed_training_run_resumes(first_run):
    root, _ = first_run
    again = run_demo(TINY, root / "run2", root / "cache", progress=False)
    cached = {name for name, r in again.stages.items() if r.get("cached")}
    assert cached == set(again.stages) - {"validate", "report"}

    # longer training: a new training stage, killed after its first checkpoint (checkpoints
    # on disk, no stage.json); the rerun keeps the demos and subgoals and resumes training
    from policies.train import train

    longer = replace(TINY, train_steps=16, goals=("final",))
    run = root / "cache" / f"train_final-{longer.stage_keys()['train final']}"
    with pytest.raises(Killed):  # at the first checkpoint
        train(next((root / "cache").glob("demos-*")), run, goal="final", steps=16,
              batch_size=32, lr=longer.lr, warmup_steps=1, checkpoint_every=4,
              seed=longer.seed, progress=False, on_checkpoint=kill_at(),
              state_keys=["eef_pos", "eef_quat", "gripper_qpos"], embeddings=["agentview"],
              backbone="bc_local", backbone_fit={"steps": 10})  # fmt: skip
    assert not (run / "stage.json").exists()
    third = run_demo(longer, root / "run3", root / "cache", progress=False)
    assert third.stages["collect"].get("cached") and third.stages["decompose"].get("cached")
    assert not third.stages["eval final"].get("cached")
    trained = third.stages["train final"]
    assert trained["resumed"] is True and "(resumed)" in trained["summary"]
    rows = [json.loads(r) for r in (run / "metrics.jsonl").read_text().splitlines()]
    assert rows[-1]["step"] == 16
    assert (run / "checkpoints" / "000016").is_dir()


def test_settings_come_from_the_config_and_quick_shrinks_them():
    s = settings_from({"task": "can", "image_size": [64, 64], "goals": ["final"], "quick": True})
    assert (s.task, s.image_size, s.goals) == ("can", (64, 64), ("final",))
    q = quick_settings(DemoSettings())
    assert q.task == DemoSettings().task and q.train_steps < DemoSettings().train_steps
    # the keys name the stages' inputs: changing training leaves collection's key alone
    k1, k2 = DemoSettings().stage_keys(), replace(DemoSettings(), train_steps=7).stage_keys()
    assert k1["collect"] == k2["collect"] and k1["decompose"] == k2["decompose"]
    assert k1["train uvd"] != k2["train uvd"] and k1["eval final"] != k2["eval final"]


def test_demos_of_an_older_observation_layout_are_not_reused(monkeypatch):
    import sim.demo_settings

    before = DemoSettings().stage_keys()
    monkeypatch.setattr(sim.demo_settings, "OBS_LAYOUT", sim.demo_settings.OBS_LAYOUT - 1)
    after = DemoSettings().stage_keys()
    assert all(before[stage] != after[stage] for stage in before)


def test_task_orders_split_the_pickplace4_protocol_and_are_refused_elsewhere():
    base = DemoSettings(task="pickplace4", train_orders=None, eval_orders=None, seen_orders=None)
    split = replace(base, train_orders="train", eval_orders="heldout")
    k0, k1 = base.stage_keys(), split.stage_keys()
    assert k0["collect"] != k1["collect"] and k0["eval uvd"] != k1["eval uvd"]
    assert replace(split, eval_orders="all").stage_keys()["collect"] == k1["collect"]
    with pytest.raises(ValueError, match="orders apply to pickplace4, arrange only, not stack"):
        DemoSettings(task="stack", eval_orders="heldout")
    assert DemoSettings(task="stack").eval_sets == {"": None}  # auto: no orders, one set
    assert DemoSettings().eval_sets == {"": "heldout", " seen": "train"}
    with pytest.raises(Exception, match="'unseen' is not a split"):
        DemoSettings(task="pickplace4", train_orders="unseen")


def test_the_relay_changes_only_the_uvd_evaluation_key():
    base = DemoSettings(task="pickplace4", train_orders="train", eval_orders="heldout")
    nearest = replace(base, relay="nearest")
    k0, k1 = base.stage_keys(), nearest.stage_keys()
    assert k0["eval uvd"] != k1["eval uvd"]
    assert k0["eval uvd seen"] != k1["eval uvd seen"]
    assert all(k0[stage] == k1[stage] for stage in k0 if not stage.startswith("eval uvd"))
    with pytest.raises(ValueError, match="relay='closest': use one of relative, paper, nearest"):
        DemoSettings(relay="closest")


@pytest.mark.slow
def test_uvdiff_demo_quick_end_to_end(tmp_path):
    """`uvdiff-demo quick=true`, the command the README shows, from the console script."""
    exe = Path(sys.executable).with_name("uvdiff-demo")
    out = tmp_path / "out"
    proc = subprocess.run(
        [str(exe), "quick=true", f"out_dir={out}", f"cache_dir={tmp_path / 'cache'}",
         "progress=false"],
        capture_output=True, text=True, timeout=1800, env={**os.environ, "MUJOCO_GL": "egl"},
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "success on arrange" in proc.stdout
    result = json.loads((out / "demo_result.json").read_text())
    assert set(result["success"]) == {"uvd", "final", "equal"}
    assert result["wall_s"] < 180 * 2  # the quick path's budget is 3 minutes (2x for a busy box)
    html = (out / "report.html").read_text()
    assert html.count("<video") == 3 and "95% interval" in html
