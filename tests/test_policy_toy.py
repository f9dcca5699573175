"""2-D toy with two equally likely action modes: diffusion keeps both, MSE regression averages.

Also classifier-free guidance on the same toy: a goal picks the mode, lambda=0 ignores it.
"""

import pytest
import torch
from torch import nn

from policies.config import PolicyConfig
from policies.guidance import Guided, drop_goals
from policies.model import BesoModel

pytestmark = pytest.mark.usefixtures("one_torch_thread")


MODE = torch.tensor([0.8, 0.6])  # modes at +MODE and -MODE, 2 apart: their mean is 0


def toy_batch(n: int):
    sign = torch.randint(0, 2, (n, 1)) * 2.0 - 1
    return (sign * MODE + 0.05 * torch.randn(n, 2))[:, None], sign


def fit(model: nn.Module, loss_fn, steps: int = 800, lr: float = 3e-3) -> None:
    opt = torch.optim.AdamW(model.parameters(), lr)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, lr, total_steps=steps, pct_start=0.05)
    for _ in range(steps):
        loss = loss_fn()
        opt.zero_grad()
        loss.backward()
        opt.step()
        sched.step()
    model.eval()


def toy_model(goal: str, **kw) -> BesoModel:
    cfg = PolicyConfig(
        action_dim=2,
        state={"s": 1},
        goal=goal,
        n_obs=1,
        horizon=1,
        n_action_steps=1,
        network="mlp",
        network_kwargs={"hidden": 64, "blocks": 2},
        d_state=4,
        **kw,
    )
    return BesoModel(cfg)


def modes(x: torch.Tensor) -> tuple[float, float, float]:
    """Fractions at the + mode, at the - mode, and near the average of the two."""
    p = x.reshape(-1, 2) @ MODE
    return (
        float((p > 0.7).float().mean()),
        float((p < -0.7).float().mean()),
        float((p.abs() < 0.25).float().mean()),
    )


@pytest.fixture(scope="module")
def goal_free():
    torch.manual_seed(0)
    model = toy_model("none")
    obs = {"s": torch.zeros(256, 1, 1)}
    fit(model, lambda: model.loss(obs, None, toy_batch(256)[0]))
    return model


def test_diffusion_keeps_both_modes_where_mse_averages(goal_free):
    n = 4000
    with torch.no_grad():
        obs_emb = goal_free.encode_obs({"s": torch.zeros(n, 1, 1)})
        g = torch.Generator().manual_seed(1)
        plus, minus, mid = modes(goal_free.sample(obs_emb, None, generator=g))  # 3 DDIM steps
        plus10, minus10, mid10 = modes(goal_free.sample(obs_emb, None, steps=10, generator=g))
    # 3 steps: an exact denoiser leaves ~5% between the modes on this toy; 10 steps: none
    assert plus > 0.35 and minus > 0.35 and mid < 0.1, (plus, minus, mid)
    assert plus10 > 0.45 and minus10 > 0.45 and mid10 < 0.01, (plus10, minus10, mid10)

    torch.manual_seed(0)
    mse = nn.Sequential(nn.Linear(1, 64), nn.GELU(), nn.Linear(64, 64), nn.GELU(), nn.Linear(64, 2))
    x0 = torch.zeros(256, 1)
    fit(mse, lambda: ((mse(x0) - toy_batch(256)[0][:, 0]) ** 2).mean())
    with torch.no_grad():
        pred = mse(torch.zeros(n, 1))
    plus, minus, mid = modes(pred)
    assert mid == 1.0 and plus == minus == 0.0
    assert float(pred.norm(dim=1).max()) < 0.15  # the average of the two modes


@pytest.fixture(scope="module")
def goal_conditioned():
    torch.manual_seed(0)
    model = toy_model("final", goal_dropout=0.25)
    obs = {"s": torch.zeros(256, 1, 1)}

    def loss():
        action, sign = toy_batch(256)
        return model.loss(obs, {"s": sign}, action)

    fit(model, loss, steps=1200)
    return model


def test_guidance_follows_the_goal_and_lambda_zero_ignores_it(goal_conditioned):
    model, n = goal_conditioned, 2000
    with torch.no_grad():
        obs_emb = model.encode_obs({"s": torch.zeros(n, 1, 1)})
        for sign in (1.0, -1.0):
            goal_emb = model.encode_goal({"s": torch.full((n, 1), sign)})
            for lam in (1.0, 1.5):
                x = model.sample(obs_emb, goal_emb, guidance=lam, steps=10)
                plus, minus, _ = modes(x)
                assert (plus if sign > 0 else minus) > 0.9, (sign, lam, plus, minus)
            plus, minus, mid = modes(model.sample(obs_emb, goal_emb, guidance=0.0, steps=10))
            assert plus > 0.3 and minus > 0.3 and mid < 0.05, (sign, plus, minus, mid)


def test_guided_denoising_is_one_batched_call_of_both_branches(goal_conditioned):
    den = goal_conditioned.denoiser
    calls = []
    hook = den.net.register_forward_hook(lambda m, args, out: calls.append(args[0].shape[0]))
    obs = torch.randn(5, 1, 4)
    goal = torch.randn(5, 1, 4)
    x = torch.randn(5, 1, 2)
    try:
        with torch.no_grad():
            guided = Guided(den, obs, goal, 1.7)(x, 0.3)
            assert calls == [10]
            d_c, d_u = den(x, 0.3, obs, goal), den(x, 0.3, obs, torch.zeros_like(goal))
            calls.clear()
            assert torch.equal(Guided(den, obs, goal, 1.0)(x, 0.3), d_c) and calls == [5]
            calls.clear()
            assert torch.equal(Guided(den, obs, goal, 0.0)(x, 0.3), d_u) and calls == [5]
    finally:
        hook.remove()
    torch.testing.assert_close(guided, d_u + 1.7 * (d_c - d_u))
    x_in, noise = torch.randn(5, 1, 2), torch.full((5,), -0.3)
    with torch.no_grad():
        f_c, f_u = den.raw(x_in, noise, obs, goal), den.raw(x_in, noise, obs, 0 * goal)
        raw = Guided(den, obs, goal, 1.7).raw(x_in, noise)  # what the diffusers path calls
    torch.testing.assert_close(raw, f_u + 1.7 * (f_c - f_u))


def test_goal_dropout_per_sample_and_per_element():
    torch.manual_seed(0)
    goal = torch.ones(20_000, 1, 8)
    per_sample = drop_goals(goal, 0.1, "sample")
    rows = per_sample.flatten(1)
    assert ((rows == 0).all(1) | (rows == 1).all(1)).all()  # whole goals, never parts
    assert float((rows[:, 0] == 0).float().mean()) == pytest.approx(0.1, abs=0.01)
    per_element = drop_goals(goal, 0.1, "element").flatten(1)
    assert float((per_element == 0).float().mean()) == pytest.approx(0.1, abs=0.005)
    partial = (per_element == 0).any(1) & (per_element == 1).any(1)
    assert float(partial.float().mean()) > 0.5  # most dropped goals are partly kept (BESO)
    assert torch.equal(drop_goals(goal, 0.0), goal)
    with pytest.raises(ValueError, match="goal dropout mode 'token'"):
        drop_goals(goal, 0.1, "token")
