"""uvdiff-eval of a policy on frozen backbone embeddings: the env renders the backbone's camera,
the policy embeds the raw frames itself, and the goal frame comes from the task demo."""

import json

import numpy as np
import pytest

from sim.evaluate import evaluate
from sim.testing import expert_folder, mlp_policy, train_checkpoint

CAM, SIZE = "agentview", (32, 32)
TINY = mlp_policy(32, d_state=8, d_embedding=8, horizon=4, n_action_steps=2)


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    root = tmp_path_factory.mktemp("emb")
    return expert_folder(root / "lift", "lift", range(2), cameras=(CAM,), image_size=SIZE)


@pytest.fixture(scope="module")
def checkpoint(folder, one_torch_thread):
    return train_checkpoint(
        folder.root, folder.root.parent / "run", "final", policy=TINY, state_keys=["eef_pos"],
        embeddings=[CAM], backbone="pixels", steps=4, batch_size=16,
    )  # fmt: skip


def test_the_policy_sees_its_backbone_camera_and_a_goal_frame(checkpoint, tmp_path):
    kw = dict(workers=0, videos=0, max_steps=6, progress=False)
    first = evaluate(checkpoint, "lift", 2, seed=3, out_dir=tmp_path / "a", **kw)
    assert [e["error"] for e in first.episodes] == [None, None]
    assert [e["length"] for e in first.episodes] == [6, 6]
    assert first.info["goal"] == "final"
    from policies.checkpoint import load_config

    cfg, _ = load_config(checkpoint)
    assert cfg.embeddings and not cfg.cameras  # the policy reads the camera only as embeddings
    # seeded: the same episodes again; different seeds, different episodes
    again = evaluate(checkpoint, "lift", 2, seed=3, out_dir=tmp_path / "b", **kw)
    assert [e["final_eef_pos"] for e in again.episodes] == [
        e["final_eef_pos"] for e in first.episodes
    ]
    assert not np.allclose(first.episodes[0]["final_eef_pos"], first.episodes[1]["final_eef_pos"])
    assert "scene" not in first.info
    # the camera moved by 5 cm: the same seeds, another picture, so other actions
    from sim.evaluate import EvalSettings
    from sim.scene import SceneVariant

    moved = SceneVariant(camera_shift=(0.05, 0.0, 0.0))
    bumped = evaluate(checkpoint, "lift", out_dir=tmp_path / "c",
                      settings=EvalSettings(episodes=2, seed=3, scene=moved, **kw))  # fmt: skip
    assert bumped.info["scene"] == {"camera_shift": [0.05, 0.0, 0.0], "light_scale": 1.0}
    assert not np.allclose(bumped.episodes[0]["final_eef_pos"], first.episodes[0]["final_eef_pos"])


@pytest.fixture(scope="module")
def uvd_video(folder, one_torch_thread):
    """A goal=uvd policy on pixels embeddings of its camera, its subgoals cut by UVD on the
    same backbone's embeddings of the demo videos (the final-goal policy ignores them)."""
    from decomposer.pipeline import decompose_folder

    decompose_folder(folder.root, "pixels", camera=CAM, min_interval_s=0.5, plots=False,
                     progress=False)  # fmt: skip
    ckpt = train_checkpoint(
        folder.root, folder.root.parent / "run-uvd", "uvd", policy=TINY, state_keys=["eef_pos"],
        embeddings=[CAM], backbone="pixels", steps=4, batch_size=16,
    )  # fmt: skip
    return folder, ckpt


def test_uvd_on_video_cuts_and_relays_on_the_policys_backbone(uvd_video, tmp_path):
    from decomposer.task import RelaySettings, demo_subgoals, frames_embedder
    from policies.checkpoint import load_config
    from policies.embeddings import load_embedder

    folder, ckpt = uvd_video
    cfg, _ = load_config(ckpt)
    relay = RelaySettings(min_interval_s=0.5)
    kw = dict(workers=0, videos=0, max_steps=10, progress=False, relay=relay)
    res = evaluate(ckpt, "lift", 1, seed=0, out_dir=tmp_path / "e", **kw)
    (ep,) = res.episodes
    assert ep["error"] is None and res.info["relay"]["embedding"] == f"pixels on {CAM}"
    # the expert's demo of seed 0 is the folder's episode 0: its frames through the policy's
    # own backbone, cut by UVD, are the subgoals the rollout was given
    enc = load_embedder(ckpt, cfg.backbone, CAM)
    frames = folder.read_episode(0).frames[CAM]
    cut, emb = demo_subgoals({CAM: frames}, frames_embedder(enc, CAM), min_interval=10,
                             gamma=relay.gamma)  # fmt: skip
    assert ep["demo"]["subgoals"] == cut and len(cut) >= 2
    assert emb.shape[1] == enc.dim
    # deploy takes the same door: the folder's subgoals.json (UVD on the same backbone)
    from real.deploy import task_goal

    goal = task_goal(ckpt, cfg, folder.root, 0, relay)
    assert goal.subgoals == json_subgoals(folder, 0) and goal.relay is not None
    np.testing.assert_array_equal(goal.goals[0][CAM], frames[goal.subgoals[0]])


def json_subgoals(folder, episode):
    from demos.subgoals import read_subgoals

    return read_subgoals(folder, episode).frames


def test_unread_frames_are_not_rendered_and_change_no_action(checkpoint, folder):
    """Between plans the policy reads no frame: skipping those renders leaves every action as
    it was, and renders only the frames a plan reads (chunks of 4, 2 observations per plan)."""
    from policies import Policy
    from sim import make_env

    policy = Policy.from_pretrained(checkpoint, n_action_steps=4)
    demo = folder.read_episode(folder.episode_ids[0], frames=True)
    goal = {CAM: demo.frames[CAM][-1], "eef_pos": demo.state["eef_pos"][-1]}
    runs = {}
    for skip in (False, True):
        with make_env("lift", cameras=(CAM,), image_size=SIZE) as env:
            obs, _ = env.reset(seed=5)
            policy.reset(seed=5)
            actions, rendered = [], 0
            for _ in range(12):
                actions.append(policy.act(obs, goal))
                render = policy.reads_next_observation() if skip else True
                rendered += render
                obs = env.step(actions[-1], render=render)[0]
            runs[skip] = (np.array(actions), rendered)
    np.testing.assert_array_equal(runs[True][0], runs[False][0])
    assert runs[False][1] == 12 and runs[True][1] == 6  # plans at 0, 4, 8 read 3-4, 7-8, 11


def test_task_demos_are_kept_and_reused_across_evaluations(checkpoint, tmp_path):
    """The demo's policies share each seed's expert task demo: the first evaluation keeps them
    (one file per seed), the next reads them instead of rendering the expert again."""
    store = tmp_path / "task_demos"
    kw = dict(workers=0, videos=0, max_steps=4, progress=False, task_demos=str(store))
    first = evaluate(checkpoint, "lift", 2, seed=3, out_dir=tmp_path / "a", **kw)
    kept = sorted(store.glob("*.npz"))
    assert len(kept) == 2
    with np.load(kept[0]) as saved:
        rows = {k: saved[k] for k in saved.files}
    info = json.loads(str(rows.pop("__info__")))
    np.savez(kept[0], __info__=json.dumps({**info, "length": 12345}), **rows)  # marked
    again = evaluate(checkpoint, "lift", 2, seed=3, out_dir=tmp_path / "b", **kw)
    assert 12345 in [e["demo"]["length"] for e in again.episodes]  # read, not made again
    assert [e["final_eef_pos"] for e in again.episodes] == [
        e["final_eef_pos"] for e in first.episodes
    ]
