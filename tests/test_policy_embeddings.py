"""Policies on frozen decomposer-backbone embeddings: windows from the decomposer's cache, a
self-contained checkpoint, raw frames or precomputed embeddings at inference, named errors."""

import shutil

import numpy as np
import pytest
import torch
import yaml
from hydra import compose, initialize_config_module
from safetensors.torch import load_file

from decomposer.embed_cache import embeddings_dir, episode_embeddings
from decomposer.errors import DecomposerError
from decomposer.fitting import fit_backbone
from decomposer.weights import load_backbone
from demos.errors import DemoFolderError
from demos.windows import WindowDataset
from policies import CheckpointError, Policy, PolicyInputError
from policies.embeddings import embedding_key, folder_embeddings
from policies.train import train
from policies.train_cli import train_from_config
from sim.testing import kill_at, mlp_policy, synthetic_folder

pytestmark = pytest.mark.usefixtures("one_torch_thread")


TINY = mlp_policy(32, d_state=8)
ARGS = dict(
    policy={**TINY, "d_embedding": 8, "horizon": 8, "n_action_steps": 4},
    goal="final",
    steps=4,
    batch_size=8,
    warmup_steps=1,
    checkpoint_every=4,
    progress=False,
)
KEY = embedding_key("agentview")


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    return synthetic_folder(tmp_path_factory.mktemp("emb") / "d")


@pytest.fixture(scope="module")
def run(demo, tmp_path_factory):
    out = tmp_path_factory.mktemp("emb_run") / "run"
    return train(demo.root, out, embeddings=["agentview"], backbone="pixels", **ARGS)


def _encoder(ckpt):
    cfg = yaml.safe_load((ckpt / "config.yaml").read_text())["policy"]
    entry = cfg["backbone"]["cameras"]["agentview"]
    return load_backbone("pixels", ckpt / entry["weights"]), cfg


def test_checkpoint_records_backbone_and_holds_its_weights(demo, run):
    enc, cfg = _encoder(run.checkpoint)
    entry = cfg["backbone"]["cameras"]["agentview"]
    assert cfg["backbone"]["name"] == "pixels"
    assert entry["weights_hash"] == enc.weights_hash and entry["size"] == [32, 32]
    assert cfg["embeddings"] == {KEY: enc.dim}
    assert KEY in cfg["embeddings"] and (run.checkpoint / entry["weights"]).suffix == ".safetensors"
    # the decomposer's cache, keyed by the same hash, is what training read
    cached = embeddings_dir(demo, enc, "agentview")
    assert sorted(p.stem for p in cached.glob("*.npy")) == demo.episode_ids


def test_window_rows_are_the_decomposers_cached_embeddings(demo, run):
    enc, _ = _encoder(run.checkpoint)
    _, arrays, _ = folder_embeddings(demo, ["agentview"], "pixels", progress=False)
    assert all(isinstance(a, np.memmap) for a in arrays[KEY])  # memory-mapped, not copied
    ds = WindowDataset(demo, n_obs=2, horizon=4, goal="final", embeddings=arrays, progress=False)
    for row in (0, 1, 17, len(ds) - 1):
        item = ds[row]
        e, t = item["episode"], item["t"]
        ref = episode_embeddings(demo, demo.episode_ids[e], enc, "agentview")
        np.testing.assert_array_equal(item[f"obs.{KEY}"], ref[[max(t - 1, 0), t]])
        np.testing.assert_array_equal(item[f"goal.{KEY}"], ref[item["goal_index"]])
        assert item[f"obs.{KEY}"].dtype == np.float32


def test_raw_frames_act_like_precomputed_embeddings(demo, run):
    enc, _ = _encoder(run.checkpoint)
    ep = demo.episode_ids[1]
    frames = list(demo.iter_frames(ep, "agentview"))
    emb = episode_embeddings(demo, ep, enc, "agentview")
    low = demo.read_lowdim(ep)
    state = lambda t: {k: low[k][t] for k in ("joint_pos", "eef_pos")}  # noqa: E731
    goal_raw = {**state(-1), "agentview": frames[-1]}
    goal_emb = {**state(-1), KEY: emb[-1]}

    def rollout(use_frames: bool) -> np.ndarray:
        policy = Policy.from_pretrained(run.checkpoint)
        policy.reset(seed=7)
        out = []
        for t in range(6):
            obs = {**state(t), **({"agentview": frames[t]} if use_frames else {KEY: emb[t]})}
            out.append(policy.act(obs, goal_raw if use_frames else goal_emb))
        return np.stack(out)

    np.testing.assert_allclose(rollout(True), rollout(False), atol=1e-5)


def test_checkpoint_stands_alone(demo, run, tmp_path):
    ckpt = tmp_path / "ckpt"
    shutil.copytree(run.checkpoint, ckpt)
    shutil.rmtree(demo.root / "cache" / "backbones", ignore_errors=False)  # the fit is gone
    try:
        policy = Policy.from_pretrained(ckpt)
        frame = next(iter(demo.iter_frames(demo.episode_ids[0], "agentview")))
        low = demo.read_lowdim(demo.episode_ids[0])
        obs = {"joint_pos": low["joint_pos"][0], "eef_pos": low["eef_pos"][0], "agentview": frame}
        assert policy.act(obs, obs).shape == (4,)
        (ckpt / "backbone-agentview.safetensors").unlink()
        with pytest.raises(CheckpointError, match="backbone-agentview.safetensors"):
            Policy.from_pretrained(ckpt)
    finally:  # the next tests want the fit back (same files, same parameters: same hash)
        folder_embeddings(demo, ["agentview"], "pixels", progress=False)


def test_other_backbone_weights_are_refused_by_hash(demo, run, tmp_path):
    ckpt = tmp_path / "ckpt"
    shutil.copytree(run.checkpoint, ckpt)
    other = fit_backbone("pixels", demo, "agentview", components=4)  # a different fit
    shutil.copyfile(other, ckpt / "backbone-agentview.safetensors")
    policy = Policy.from_pretrained(ckpt)
    frame = np.zeros((32, 32, 3), np.uint8)
    obs = {"joint_pos": np.zeros(7), "eef_pos": np.zeros(3), "agentview": frame}
    with pytest.raises(CheckpointError, match="backbone-agentview.safetensors.*weights hash"):
        policy.act(obs, obs)


def test_resume_with_embeddings(demo, tmp_path):
    args = {**ARGS, "steps": 6, "checkpoint_every": 3}
    kw = dict(embeddings=["agentview"], backbone="pixels")
    full = train(demo.root, tmp_path / "full", **kw, **args)
    with pytest.raises(KeyboardInterrupt):  # as a Ctrl-C right after the step-3 checkpoint
        train(
            demo.root, tmp_path / "cut", **kw, **args, on_checkpoint=kill_at(3, KeyboardInterrupt)
        )
    resumed = train(demo.root, tmp_path / "cut", **kw, **args, resume=True)
    a = load_file(full.checkpoint / "ema.safetensors")
    b = load_file(resumed.checkpoint / "ema.safetensors")
    for k in a:
        torch.testing.assert_close(a[k], b[k])


def test_missing_camera_and_bad_frames_are_named(run):
    policy = Policy.from_pretrained(run.checkpoint)
    obs = {"joint_pos": np.zeros(7), "eef_pos": np.zeros(3)}
    with pytest.raises(PolicyInputError, match=f"missing '{KEY}' or the raw frame 'agentview'"):
        policy.act(obs, obs)
    with pytest.raises(PolicyInputError, match="'agentview' is float64"):
        policy.act({**obs, "agentview": np.zeros((32, 32, 3))}, obs)
    with pytest.raises(PolicyInputError, match=f"'{KEY}' has shape"):
        policy.act({**obs, KEY: np.zeros(3)}, obs)


def test_bad_training_arguments_are_named(demo, tmp_path):
    with pytest.raises(DecomposerError, match="'nonesuch'"):
        train(demo.root, tmp_path / "a", embeddings=["agentview"], backbone="nonesuch", **ARGS)
    with pytest.raises(DemoFolderError, match="'nocam'|nocam"):
        train(demo.root, tmp_path / "b", embeddings=["nocam"], backbone="pixels", **ARGS)
    with pytest.raises(ValueError, match="backbone"):
        train(demo.root, tmp_path / "c", embeddings=["agentview"], **ARGS)
    with pytest.raises(ValueError, match="state"):
        train(demo.root, tmp_path / "d", embeddings=["agentview"], backbone="state", **ARGS)


def test_cli_trains_on_embeddings(demo, tmp_path):
    with initialize_config_module("configs", version_base="1.3"):
        cfg = compose(
            "train",
            [
                f"data={demo.root}",
                f"out_dir={tmp_path / 'run'}",
                "embeddings=[agentview]",
                "backbone=pixels",
                "state_keys=[eef_pos]",
                "goal=future",
                "train_steps=2",
                "batch_size=8",
                "warmup_steps=1",
                "progress=false",
                "policy.network_kwargs.hidden=32",
                "policy.network_kwargs.blocks=1",
            ],
        )
    result = train_from_config(cfg)
    policy = Policy.from_pretrained(result.checkpoint)
    assert list(policy.config.embeddings) == [KEY] and policy.config.backbone["name"] == "pixels"
    assert policy.config.resolved_goal_keys == ["eef_pos", KEY]
