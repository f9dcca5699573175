"""Policy: from_pretrained, act/queue/history, inference overrides, and every bad input."""

import pickle
import shutil

import numpy as np
import pytest
import torch
import yaml
from safetensors.torch import load_file, save_file

from policies import CheckpointError, Policy, PolicyInputError
from policies.chunks import Chunk, plan_due, scheduled_action
from sim.testing import mlp_policy, synthetic_folder, train_checkpoint

pytestmark = pytest.mark.usefixtures("one_torch_thread")


OBS = {"joint_pos": np.linspace(-0.5, 0.5, 7), "eef_pos": np.array([0.3, 0.6, 0.1])}


@pytest.fixture(scope="module")
def ckpt(tmp_path_factory):
    root = tmp_path_factory.mktemp("policy")
    folder = synthetic_folder(root / "demo")
    policy = mlp_policy(32, d_state=16)  # default horizon 16, 8 actions executed per plan
    return train_checkpoint(
        folder.root, root / "run", "future", policy=policy, steps=4, batch_size=8
    )


class Counter:
    """Counts network calls (batch sizes) and observation-encoder calls (steps encoded)."""

    def __init__(self, policy):
        self.net, self.enc = [], []
        model = policy.model
        model.denoiser.net.register_forward_hook(lambda m, a, o: self.net.append(a[0].shape[0]))
        model.obs_encoder.register_forward_hook(
            lambda m, a, o: self.enc.append(a[0]["eef_pos"].shape[1])
        )


def test_act_plans_a_chunk_and_executes_it(ckpt):
    policy = Policy.from_pretrained(ckpt)
    assert policy.settings["steps"] == 3 and policy.settings["n_action_steps"] == 8
    calls = Counter(policy)
    actions = np.stack([policy.act(OBS, goal=OBS) for _ in range(10)])
    assert actions.shape == (10, 4) and actions.dtype == np.float32
    assert calls.net == [1, 1, 1, 1, 1, 1]  # 3 steps for the plan at t=0 and at t=8
    # the first step (padded to 2), the goal (shares the encoder; unchanged later, so cached),
    # then steps 7 and 8 for the second plan
    assert calls.enc == [1, 1, 2]
    stats = policy.norm
    lo = stats.unnormalize("action", -torch.ones(4)).numpy()
    hi = stats.unnormalize("action", torch.ones(4)).numpy()
    assert (actions >= lo - 1e-6).all() and (actions <= hi + 1e-6).all()


def test_beso_style_replans_every_step_and_encodes_each_step_once(ckpt):
    policy = Policy.from_pretrained(ckpt, n_action_steps=1, guidance=1.5, steps=2)
    calls = Counter(policy)
    for _ in range(4):
        policy.act(OBS, goal=OBS)
    assert calls.net == [2] * 8  # 2 steps per call, conditional + unconditional in one batch
    assert calls.enc == [1, 1, 1, 1, 1]  # step 0, the goal once, steps 1, 2, 3


def test_settings_change_without_retraining_and_seeds_repeat(ckpt):
    policy = Policy.from_pretrained(ckpt)
    policy.reset(seed=3)
    a = policy.predict_chunk(OBS, OBS)
    policy.reset(seed=3)
    assert np.array_equal(policy.predict_chunk(OBS, OBS), a)
    assert a.shape == (16, 4)
    calls = Counter(policy)
    for sampler, steps, n in [("heun", 3, 5), ("dpmpp_2m", 5, 5), ("euler_ancestral", 1, 1)]:
        policy.configure(sampler=sampler, steps=steps, schedule="karras")
        policy.reset(seed=3)
        calls.net.clear()
        b = policy.predict_chunk(OBS, OBS)
        assert len(calls.net) == n and not np.array_equal(a, b)
    policy.configure(sampler="diffusers_dpmpp_2m", steps=5)
    policy.reset(seed=3)
    c = policy.predict_chunk(OBS, OBS)
    policy.configure(sampler="dpmpp_2m")
    policy.reset(seed=3)
    np.testing.assert_allclose(policy.predict_chunk(OBS, OBS), c, atol=1e-4)
    with pytest.raises(ValueError, match="sampler 'plms'"):
        policy.configure(sampler="plms")
    with pytest.raises(ValueError, match=r"unknown inference settings \['stepz'\]"):
        policy.configure(stepz=4)


def test_goal_free_policy_needs_no_goal(ckpt):
    policy = Policy.from_pretrained(ckpt)
    with pytest.raises(PolicyInputError, match=r"goal-conditioned.*\['joint_pos', 'eef_pos'\]"):
        policy.act(OBS)
    policy.configure(guidance=0.0)
    assert policy.act(OBS).shape == (4,)


def test_temporal_ensemble(ckpt):
    chunks = [Chunk(t, np.full((3, 1), v)) for t, v in ((0, 1.0), (1, 2.0), (2, 4.0))]

    def ensemble(k, m, first=0):
        return scheduled_action(chunks, k, m, first)[0]

    assert ensemble(2, 0.0) == pytest.approx((1 + 2 + 4) / 3)
    w = np.exp(-0.5 * np.arange(3))
    assert ensemble(2, 0.5) == pytest.approx((w @ [1, 2, 4]) / w.sum())
    assert ensemble(3, 0.0) == pytest.approx(3.0)  # the t=0 chunk has ended
    # in real time a chunk's own tick has passed: index 0 never runs
    assert ensemble(2, 0.0, first=1) == pytest.approx((1 + 2) / 2)
    assert scheduled_action(chunks, 2, 0.0)[1] is chunks[-1]  # the newest that contributed
    policy = Policy.from_pretrained(ckpt, temporal_ensemble=0.01)
    calls = Counter(policy)
    for _ in range(3):
        assert policy.act(OBS, OBS).shape == (4,)
    assert len(calls.net) == 9  # a plan every step


def test_plain_chunking_schedule():
    chunk = Chunk(10, np.arange(4.0)[:, None])
    # the newest chunk's action for each tick; a new one once n_action_steps have run
    assert [scheduled_action([chunk], k, None)[0] for k in (10, 13)] == [[0.0], [3.0]]
    assert scheduled_action([chunk], 14, None) == (None, None)
    assert scheduled_action([chunk], 10, None, first=1) == (None, None)
    assert not plan_due(chunk, 12, 3, False) and plan_due(chunk, 13, 3, False)
    assert plan_due(chunk, 14, 8, False)  # more steps asked than the chunk has: all of it
    assert plan_due(None, 0, 3, False) and plan_due(chunk, 10, 3, True)


@pytest.mark.parametrize(
    "change,match",
    [
        ({"eef_pos": None}, r"observation is missing 'eef_pos'"),
        ({"eef_pos": np.zeros(4)}, r"observation 'eef_pos' has shape \(4,\), .* expects \(3,\)"),
        ({"joint_pos": np.r_[np.zeros(6), np.nan]}, r"observation 'joint_pos' has NaN"),
        ({"eef_pos": np.array([0, np.inf, 0])}, r"observation 'eef_pos' has NaN or inf"),
    ],
)
def test_bad_observations_are_named(ckpt, change, match):
    policy = Policy.from_pretrained(ckpt)
    obs = {k: v for k, v in {**OBS, **change}.items() if v is not None}
    with pytest.raises(PolicyInputError, match=match):
        policy.act(obs, goal=OBS)
    with pytest.raises(PolicyInputError, match=match.replace("observation", "goal")):
        policy.act(OBS, goal=obs)


def _copy(ckpt, tmp_path):
    dst = tmp_path / "ckpt"
    shutil.copytree(ckpt, dst)
    return dst


@pytest.mark.parametrize("name", ["ema.safetensors", "config.yaml", "stats.json"])
def test_missing_file_is_named(ckpt, tmp_path, name):
    bad = _copy(ckpt, tmp_path)
    (bad / name).unlink()
    with pytest.raises(CheckpointError, match=f"{name}: missing file"):
        Policy.from_pretrained(bad)


def test_corrupt_files_are_named(ckpt, tmp_path):
    bad = _copy(ckpt, tmp_path)
    data = (bad / "ema.safetensors").read_bytes()
    (bad / "ema.safetensors").write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError, match="ema.safetensors: not a readable safetensors"):
        Policy.from_pretrained(bad)
    Policy.from_pretrained(bad, weights="model")  # the raw weights are intact
    (bad / "config.yaml").write_text("policy: [unclosed\n")
    with pytest.raises(CheckpointError, match="config.yaml: not valid YAML"):
        Policy.from_pretrained(bad, weights="model")
    shutil.copy(ckpt / "config.yaml", bad / "config.yaml")
    (bad / "stats.json").write_text('{"features": {"action": {"min": [0]}}}')
    with pytest.raises(CheckpointError, match="stats.json: no min/max/mean/std for 'action'"):
        Policy.from_pretrained(bad, weights="model")


def test_weights_that_do_not_fit_are_named(ckpt, tmp_path):
    bad = _copy(ckpt, tmp_path)
    state = load_file(bad / "model.safetensors")
    key = "denoiser.net.inp.weight"
    save_file({k: v for k, v in state.items() if k != key}, bad / "model.safetensors")
    with pytest.raises(CheckpointError, match=f"model.safetensors: .*missing \\['{key}'\\]"):
        Policy.from_pretrained(bad, weights="model")
    doc = yaml.safe_load((bad / "config.yaml").read_text())
    doc["policy"]["network_kwargs"]["hidden"] = 48
    (bad / "config.yaml").write_text(yaml.safe_dump(doc))
    with pytest.raises(
        CheckpointError,
        match=r"ema.safetensors: 'denoiser.net.[\w.]+' has shape \(\d+.*the model needs",
    ):
        Policy.from_pretrained(bad)
    doc["policy"]["widht"] = 3
    (bad / "config.yaml").write_text(yaml.safe_dump(doc))
    with pytest.raises(
        CheckpointError, match=r"config.yaml: policy config: unknown keys \['widht'\]"
    ):
        Policy.from_pretrained(bad)
    with pytest.raises(CheckpointError, match="no such checkpoint folder"):
        Policy.from_pretrained(tmp_path / "nowhere")


def test_loading_never_unpickles(ckpt, monkeypatch):
    def refuse(*a, **k):
        raise AssertionError("unpickling during from_pretrained")

    monkeypatch.setattr(pickle, "load", refuse)
    monkeypatch.setattr(pickle, "loads", refuse)
    monkeypatch.setattr(torch, "load", refuse)
    Policy.from_pretrained(ckpt).act(OBS, OBS)


def test_goal_with_fewer_keys_has_its_own_encoder():
    from policies.config import PolicyConfig
    from policies.model import BesoModel

    state = {"joint_pos": 7, "eef_pos": 3}
    cfg = PolicyConfig(action_dim=4, state=state, goal_keys=["eef_pos"], n_action_steps=1)
    model = BesoModel(cfg)
    assert model.goal_encoder is not None and model.goal_encoder.keys == ["eef_pos"]
    stats = {
        k: {"min": [-1.0] * d, "max": [1.0] * d, "mean": [0.0] * d, "std": [1.0] * d}
        for k, d in {**state, "action": 4}.items()
    }
    policy = Policy(model, stats)
    assert policy.act(OBS, goal={"eef_pos": [0.1, 0.2, 0.3]}).shape == (4,)
    with pytest.raises(PolicyInputError, match=r"goal is missing 'eef_pos'"):
        policy.act(OBS, goal={"joint_pos": np.zeros(7)})
    with pytest.raises(ValueError, match=r"goal_keys \['wrist'\] are not state keys, cameras"):
        PolicyConfig(action_dim=4, state=state, goal_keys=["wrist"])
