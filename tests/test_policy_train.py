"""Training: outputs, exact resume after a kill, folder validation first, UVD goals."""

import json
import random

import cv2
import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from demos.errors import DemoFolderError
from policies import Policy, PolicyInputError
from policies.checkpoint import CheckpointError
from policies.goals import uvd_goal_indices
from policies.train import train
from sim.testing import Killed, kill_at, mlp_policy, synthetic_folder

pytestmark = pytest.mark.usefixtures("one_torch_thread")


TINY = mlp_policy(32, dropout=0.1, d_state=16, horizon=8)  # dropout: uses the RNG
ARGS = dict(
    policy=TINY,
    goal="future",  # draws goals from Python's `random`
    steps=12,
    batch_size=8,
    lr=1e-3,
    warmup_steps=3,
    checkpoint_every=4,
    log_every=2,
    progress=False,
)


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    return synthetic_folder(tmp_path_factory.mktemp("demo") / "d")


def test_run_writes_checkpoints_metrics_and_plot(demo, tmp_path):
    result = train(demo.root, tmp_path / "run", **ARGS)
    ckpts = sorted(p.name for p in (tmp_path / "run" / "checkpoints").iterdir())
    assert ckpts == ["000004", "000008", "000012", "last"]
    assert (tmp_path / "run" / "checkpoints" / "last").resolve().name == "000012"
    assert result.checkpoint.name == "000012"
    ck = result.checkpoint
    for name in ["model.safetensors", "ema.safetensors", "config.yaml", "stats.json"]:
        assert (ck / name).is_file(), name
    state = ck / "training_state"
    assert {p.name for p in state.iterdir()} == {
        "optimizer.safetensors",
        "optimizer.json",
        "scheduler.json",
        "rng.safetensors",
        "rng.json",
        "state.json",
    }
    assert not [p for p in ck.rglob("*") if p.suffix in (".pt", ".pth", ".pkl", ".bin")]
    assert json.loads((state / "state.json").read_text())["step"] == 12
    rows = [json.loads(r) for r in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows] == list(range(2, 13, 2))
    assert all(np.isfinite(r["loss"]) and r["samples_per_s"] > 0 for r in rows)
    assert rows[0]["lr"] == pytest.approx(1e-3) and rows[-1]["lr"] == pytest.approx(0.0)
    assert (tmp_path / "run" / "loss.png").read_bytes()[:4] == b"\x89PNG"
    # EMA and raw weights differ, and the policy loads from the run folder
    ema, raw = load_file(ck / "ema.safetensors"), load_file(ck / "model.safetensors")
    assert set(ema) == set(raw) and any(not torch.equal(ema[k], raw[k]) for k in ema)
    policy = Policy.from_pretrained(tmp_path / "run")
    obs = {"joint_pos": np.zeros(7), "eef_pos": np.zeros(3)}
    assert policy.act(obs, goal=obs).shape == (4,)
    with pytest.raises(FileExistsError, match="resume=True"):
        train(demo.root, tmp_path / "run", **ARGS)


def test_killed_run_resumes_to_the_same_weights(demo, tmp_path):
    full = train(demo.root, tmp_path / "full", **ARGS).checkpoint
    with pytest.raises(Killed):
        train(demo.root, tmp_path / "cut", on_checkpoint=kill_at(8), **ARGS)
    ckpts = tmp_path / "cut" / "checkpoints"
    assert not (ckpts / "000012").exists()
    (ckpts / ".tmp-000012-half").mkdir()  # what a kill during a save leaves: ignored
    torch.manual_seed(123)  # the process's generators are elsewhere now
    random.seed(123)
    resumed = train(demo.root, tmp_path / "cut", resume=True, **ARGS).checkpoint
    for name in ["model.safetensors", "ema.safetensors", "training_state/optimizer.safetensors"]:
        a, b = load_file(full / name), load_file(resumed / name)
        assert set(a) == set(b)
        for k in a:
            assert torch.equal(a[k], b[k]), (name, k)
    rows = lambda run: [  # noqa: E731
        (r["step"], r["loss"])
        for r in map(json.loads, (tmp_path / run / "metrics.jsonl").read_text().splitlines())
    ]
    assert rows("cut") == rows("full")


def test_resume_refuses_changed_arguments(demo, tmp_path):
    with pytest.raises(Killed):
        train(demo.root, tmp_path / "run", on_checkpoint=kill_at(4), **ARGS)
    with pytest.raises(CheckpointError, match=r"different \['lr'\]"):
        train(demo.root, tmp_path / "run", resume=True, **{**ARGS, "lr": 5e-4})
    with pytest.raises(CheckpointError, match="holds no checkpoint"):
        train(demo.root, tmp_path / "empty", resume=True, **ARGS)


def test_broken_folder_stops_before_the_first_step(tmp_path):
    folder = synthetic_folder(tmp_path / "bad", episodes=2)
    path = folder.episode_dir(1) / "lowdim.npz"
    arrays = dict(np.load(path))
    arrays["action"][5, 1] = np.nan
    np.savez(path, **arrays)
    with pytest.raises(DemoFolderError, match="episodes/000001/lowdim.npz"):
        train(folder.root, tmp_path / "run", **ARGS)
    assert not (tmp_path / "run").exists()


def test_uvd_goals_come_from_subgoals_json(demo, tmp_path):
    with pytest.raises(DemoFolderError, match=r"episodes/000000/subgoals.json: missing"):
        train(demo.root, tmp_path / "run", **{**ARGS, "goal": "uvd"})
    lengths = {ep: len(demo.read_lowdim(ep)["action"]) for ep in demo.episode_ids}
    for ep, T in lengths.items():
        doc = {"subgoals": [10, 5, T - 1] if ep == "000001" else [10, T - 1]}
        (demo.episode_dir(ep) / "subgoals.json").write_text(json.dumps(doc))
    with pytest.raises(DemoFolderError, match=r"000001/subgoals.json: .*strictly ascending"):
        uvd_goal_indices(demo)
    # a file written before the key was settled ("frame_indices") still reads
    for ep, T in lengths.items():
        doc = {"backbone": "test", "subgoals": [10, 20, T - 1]}
        if ep == "000001":
            doc = {"frame_indices": doc.pop("subgoals")}
        (demo.episode_dir(ep) / "subgoals.json").write_text(json.dumps(doc))
    try:
        goals = uvd_goal_indices(demo)
        for ep, T in lengths.items():
            expected = [10] * 11 + [20] * 10 + [T - 1] * (T - 21)
            np.testing.assert_array_equal(goals[ep], expected)
        run = train(demo.root, tmp_path / "run", **{**ARGS, "goal": "uvd", "steps": 2})
        assert Policy.from_pretrained(run.checkpoint).config.goal == "uvd"
    finally:
        for ep in lengths:
            (demo.episode_dir(ep) / "subgoals.json").unlink()


def test_sigma_data_auto_is_the_normalised_action_std(demo, tmp_path):
    run = train(
        demo.root,
        tmp_path / "run",
        **{**ARGS, "steps": 1, "policy": {**TINY, "sigma_data": "auto"}},
    )
    actions = np.concatenate([demo.read_lowdim(e)["action"] for e in demo.episode_ids])
    lo, hi = actions.min(0), actions.max(0)
    half = np.where(hi - lo > 1e-8, (hi - lo) / 2, 1.0)
    expected = ((actions - (hi + lo) / 2) / half).std()
    assert Policy.from_pretrained(run.checkpoint).config.sigma_data == pytest.approx(expected, 1e-4)


@pytest.mark.parametrize("trunk", ["resnet18", "compact"])
def test_image_policy_trains_and_acts(demo, tmp_path, trunk):
    policy = {**TINY, "d_camera": 16, "keypoints": 8, "crop": [28, 28], "image_trunk": trunk}
    run = train(
        demo.root,
        tmp_path / "run",
        **{**ARGS, "steps": 2, "policy": policy, "cameras": ["agentview", "wrist"]},
    )
    pol = Policy.from_pretrained(run.checkpoint)
    assert pol.config.cameras == {"agentview": [32, 32], "wrist": [32, 32]}
    assert pol.config.image_trunk == trunk
    obs = {
        "joint_pos": np.zeros(7),
        "eef_pos": np.zeros(3),
        "agentview": np.zeros((32, 32, 3), np.uint8),
        "wrist": np.zeros((32, 32, 3), np.uint8),
    }
    assert pol.act(obs, goal=obs).shape == (4,)
    # a camera that delivers another resolution of the same aspect ratio is resized to the
    # trained 32x32 (area averaging), so the policy acts as on the resized frame
    rng = np.random.default_rng(0)
    big = {c: rng.integers(0, 255, (64, 64, 3), dtype=np.uint8) for c in ("agentview", "wrist")}
    small = {c: cv2.resize(f, (32, 32), interpolation=cv2.INTER_AREA) for c, f in big.items()}
    acts = []
    for frames in (big, small):
        pol.reset(seed=3)
        acts.append(pol.act({**obs, **frames}, goal={**obs, **frames}))
    np.testing.assert_array_equal(acts[0], acts[1])
    # another aspect ratio would stretch the scene: refused, naming the camera and both shapes
    wide = {**obs, "wrist": np.zeros((48, 64, 3), np.uint8)}
    with pytest.raises(PolicyInputError, match=r"'wrist' is 48x64 .* trained on 32x32"):
        pol.act(wide, goal=obs)


def test_worker_processes_give_the_same_run(demo, tmp_path):
    args = {**ARGS, "steps": 4, "checkpoint_every": 4}
    a = train(demo.root, tmp_path / "main", **args).checkpoint
    b = train(demo.root, tmp_path / "workers", num_workers=2, **args).checkpoint
    wa, wb = load_file(a / "model.safetensors"), load_file(b / "model.safetensors")
    assert all(torch.equal(wa[k], wb[k]) for k in wa)
