"""Real-time chunking: the overlap weights, inpainting through every sampler, the delayed
chunk schedule and the prefix a plan is held to."""

import math

import numpy as np
import pytest
import torch

from policies import Policy
from policies.chunks import committed_ticks
from policies.edm import Denoiser
from policies.guidance import Guided
from policies.rtc import Inpainted, overlap_weights
from policies.samplers import get_sampler
from sim.testing import mlp_policy, synthetic_folder, train_checkpoint

pytestmark = pytest.mark.usefixtures("one_torch_thread")

OBS = {"joint_pos": np.linspace(-0.5, 0.5, 7), "eef_pos": np.array([0.3, 0.6, 0.1])}


@pytest.fixture(scope="module")
def ckpt(tmp_path_factory):
    root = tmp_path_factory.mktemp("rtc")
    folder = synthetic_folder(root / "demo")
    return train_checkpoint(
        folder.root, root / "run", "none", policy=mlp_policy(32, d_state=16), steps=4,
        batch_size=8,
    )  # fmt: skip


def test_overlap_weights_hold_the_committed_actions_then_decay_to_zero():
    w = overlap_weights(overlap=8, committed=3, horizon=16)
    assert w.shape == (16,)
    assert (w[:3] == 1).all() and (w[8:] == 0).all()
    assert (np.diff(w[3:8]) < 0).all() and 0 < w[7] < w[3] < 1
    c = 5 / 6  # index 3: (overlap - i) / (overlap - committed + 1)
    assert w[3] == pytest.approx(c * math.expm1(c) / (math.e - 1))
    assert (overlap_weights(0, 0, 4) == 0).all()
    with pytest.raises(ValueError, match="committed"):
        overlap_weights(4, 5, 16)


def test_committed_ticks_count_the_ticks_a_plan_misses():
    assert committed_ticks(0.010, 0.05) == 1  # in before the next tick: only its own tick
    assert committed_ticks(0.050, 0.05) == 1
    assert committed_ticks(0.051, 0.05) == 2
    assert committed_ticks(0.180, 0.05) == 4
    assert committed_ticks(0.010, 0.05, floor=3) == 3


class _Net(torch.nn.Module):
    """A fixed score network with some structure across the sequence."""

    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.lin = torch.nn.Linear(4, 4)

    def forward(self, x_in, noise, obs):
        return torch.tanh(self.lin(x_in)) + obs.mean() + noise.reshape(-1, 1, 1) * 0.1


@pytest.mark.parametrize("sampler", ["ddim", "euler", "heun", "dpmpp_2m", "diffusers_ddim"])
def test_inpainting_pins_weight_one_and_leaves_weight_zero_alone(sampler):
    den = Guided(Denoiser(_Net(), 0.5), torch.ones(1, 1, 3), None)
    sigmas = torch.tensor([1.0, 0.3, 0.05, 0.0])
    x = torch.randn(1, 6, 4, generator=torch.Generator().manual_seed(1))
    target = torch.full((1, 6, 4), 0.7)
    run = get_sampler(sampler)
    free = run(den, x.clone(), sigmas)
    w = torch.tensor([1.0, 1.0, 0.5, 0.0, 0.0, 0.0])
    held = run(Inpainted(den, target, w), x.clone(), sigmas)
    torch.testing.assert_close(held[:, :2], target[:, :2], atol=1e-4, rtol=0)
    assert (held[:, 2] - target[:, 2]).abs().max() < (free[:, 2] - target[:, 2]).abs().max()
    none = run(Inpainted(den, target, torch.zeros(6)), x.clone(), sigmas)
    torch.testing.assert_close(none, free)


def _handovers(policy, steps=24):
    ticks = []
    for t in range(steps):
        policy.act(OBS)
        if policy.handover:
            ticks.append(t)
    return ticks


def test_a_delayed_plan_runs_from_its_arrival_and_the_old_chunk_fills_the_gap(ckpt):
    plain = Policy.from_pretrained(ckpt, n_action_steps=4)
    assert _handovers(plain) == [4, 8, 12, 16, 20]
    late = Policy.from_pretrained(ckpt, n_action_steps=4, delay=3)
    late.reset(seed=0)
    actions, chunks = [], []
    for t in range(12):
        actions.append(late.act(OBS))
        chunks.append(late._chunks[-1])
        if late.handover:
            assert t in (7, 11)  # planned at 4 and 8, usable 3 steps later
    # ticks 4..6 still run the first chunk (its actions 4..6); tick 7 the second's action 3
    assert chunks[6] is chunks[0] and chunks[7] is not chunks[0]
    np.testing.assert_array_equal(actions[5], chunks[0].actions[5])
    np.testing.assert_array_equal(actions[7], chunks[7].actions[3])
    assert chunks[7].tick == 4


def test_rtc_holds_a_plan_to_the_actions_committed_while_it_is_computed(ckpt):
    policy = Policy.from_pretrained(ckpt, n_action_steps=4, delay=3, rtc=True)
    policy.reset(seed=0)
    for _ in range(5):  # the second plan is made at tick 4, from the first chunk's 4..15
        policy.act(OBS)
    first, second = policy._chunks[0], policy._pending[0]
    np.testing.assert_allclose(second.actions[:3], first.actions[4:7], atol=1e-5)
    free = Policy.from_pretrained(ckpt, n_action_steps=4, delay=3)
    free.reset(seed=0)
    for _ in range(5):
        free.act(OBS)
    unheld = free._pending[0]
    assert np.abs(unheld.actions[:3] - first.actions[4:7]).max() > 1e-3
    # the soft part of the overlap lies between the free plan and the old one
    gap_held = np.abs(second.actions[3:12] - first.actions[7:16]).mean()
    assert gap_held < np.abs(unheld.actions[3:12] - first.actions[7:16]).mean()


def test_with_plans_in_flight_rtc_holds_a_plan_to_the_actions_that_will_run(ckpt):
    """n_action_steps=2, delay=3: a plan every 2 ticks, each usable 3 ticks later, so the
    plan made at tick 4 is computed while the first chunk (tick 4) and the plan of tick 2
    (ticks 5, 6) run: its first 3 actions must be those."""
    policy = Policy.from_pretrained(ckpt, n_action_steps=2, delay=3, rtc=True)
    policy.reset(seed=0)
    ran = [policy.act(OBS) for _ in range(10)]
    plans = {c.tick: c.actions for c in policy._chunks}
    first, second, third = plans[0], plans[2], plans[4]
    np.testing.assert_allclose(third[:3], [first[4], second[3], second[4]], atol=1e-5)
    for tick in (4, 5, 6):  # and those are what ran
        np.testing.assert_allclose(third[tick - 4], ran[tick], atol=1e-5)
    free = Policy.from_pretrained(ckpt, n_action_steps=2, delay=3)
    free.reset(seed=0)
    free_ran = [free.act(OBS) for _ in range(10)]
    unheld = {c.tick: c.actions for c in free._chunks}[4]
    assert np.abs(unheld[:3] - np.stack(free_ran[4:7])).max() > 1e-3


def test_predict_chunk_takes_a_prefix_from_a_caller_that_schedules_itself(ckpt):
    policy = Policy.from_pretrained(ckpt)
    policy.reset(seed=0)
    old = policy.predict_chunk(OBS)
    new = policy.predict_chunk(OBS, prefix=(old[5:], 2))
    np.testing.assert_allclose(new[:2], old[5:7], atol=1e-5)


@pytest.mark.parametrize(
    "settings, match",
    [
        ({"delay": 10}, "n_action_steps=8 \\+ delay=10 > horizon=16"),
        ({"delay": -1}, "delay=-1"),
        ({"rtc": True, "temporal_ensemble": 0.01}, "exclude each other"),
    ],
)
def test_chunk_settings_that_cannot_work_are_refused(ckpt, settings, match):
    with pytest.raises(ValueError, match=match):
        Policy.from_pretrained(ckpt, **settings)


def test_seam_jumps_split_the_steps_at_handovers_from_those_within_chunks():
    from policies.chunks import seam_jumps, seam_ratio

    a = np.array([[0.0, 0.0], [0.1, 0.1], [0.2, 0.2], [1.2, 0.2], [1.3, 0.3]])
    handover = [False, False, False, True, False]
    got = seam_jumps(a, handover)
    assert got["handover"] == [pytest.approx(0.5), 1]  # mean over dims of |(1.0, 0.0)|
    assert got["within"][1] == 3 and got["within"][0] == pytest.approx(0.3)
    r = seam_ratio([got, seam_jumps(a[:1], [False])])
    assert r["handover"] == pytest.approx(0.5) and r["ratio"] == pytest.approx(5.0)
    assert seam_ratio([seam_jumps(a[:2], [False, False])])["ratio"] is None
