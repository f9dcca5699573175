"""EDM denoiser, training densities, schedules and samplers against closed forms and diffusers."""

import math

import pytest
import torch

from policies.edm import Denoiser, sigma_data_from, sigma_density
from policies.samplers import SAMPLERS, get_sampler, network_calls
from policies.schedules import get_sigmas

pytestmark = pytest.mark.usefixtures("one_torch_thread")


# ---------------------------------------------------------------------------- schedules


def test_schedules_match_beso_numbers():
    # anchors/beso.md: 3 steps on [0.005, 1]
    exp = get_sigmas("exponential", 3, 0.005, 1.0)
    torch.testing.assert_close(exp, torch.tensor([1.0, 0.005**0.5, 0.005, 0.0]))
    lin = get_sigmas("linear", 3, 0.005, 1.0)
    torch.testing.assert_close(lin, torch.tensor([1.0, 0.5025, 0.005, 0.0]))
    torch.testing.assert_close(get_sigmas("karras", 3, 0.005, 1.0, rho=1.0), lin)
    kar = get_sigmas("karras", 5, 0.002, 80.0, rho=7.0)
    assert kar[0] == pytest.approx(80) and kar[-2] == pytest.approx(0.002) and kar[-1] == 0
    mid = ((80 ** (1 / 7) + 0.002 ** (1 / 7)) / 2) ** 7  # EDM eq. 5 at the middle of the ramp
    assert kar[2] == pytest.approx(mid, rel=1e-5)
    assert get_sigmas("exponential", 1, 0.01, 2.0).tolist() == [2.0, 0.0]
    with pytest.raises(ValueError, match="schedule 'cosine'"):
        get_sigmas("cosine", 3, 0.01, 1.0)


# ---------------------------------------------------------------------------- denoiser


class Toy(torch.nn.Module):
    """A fixed nonlinear F(x_in, c_noise): enough to tell every update rule apart."""

    def __init__(self, dim=3, seed=0):
        super().__init__()
        g = torch.Generator().manual_seed(seed)
        self.w = torch.randn(dim, dim, generator=g) / dim**0.5
        self.b = torch.randn(dim, generator=g)

    def forward(self, x_in, noise):
        noise = noise.reshape(-1, *(1,) * (x_in.ndim - 1))
        return torch.tanh(x_in @ self.w + noise * self.b) + 0.3 * x_in


def test_preconditioning_follows_karras_formulas():
    den = Denoiser(Toy(), sigma_data=0.5)
    x = torch.randn(4, 3)
    for sigma in (0.5, 0.02, 3.0):
        c_skip = 0.25 / (sigma**2 + 0.25)
        c_out = sigma * 0.5 / math.sqrt(sigma**2 + 0.25)
        c_in = 1 / math.sqrt(sigma**2 + 0.25)
        f = den.net(c_in * x, torch.full((4,), math.log(sigma) / 4))
        expected = c_skip * x + c_out * f
        torch.testing.assert_close(den(x, sigma), expected)
        torch.testing.assert_close(den(x, torch.full((4,), sigma)), expected)


def test_edm_loss_is_the_weighted_denoising_error():
    den = Denoiser(Toy(), sigma_data=0.7)
    g = torch.Generator().manual_seed(0)
    x0, noise = torch.randn(5, 3, generator=g), torch.randn(5, 3, generator=g)
    sigma = torch.tensor([0.01, 0.1, 0.5, 1.0, 5.0])
    d = den(x0 + noise * sigma[:, None], sigma)
    err = ((d - x0) ** 2).mean(1)
    weight = (sigma**2 + 0.49) / (sigma * 0.7) ** 2  # EDM lambda(sigma)
    # float32 with weights up to 5e3 at sigma=0.01: relative, not absolute, agreement
    torch.testing.assert_close(den.loss(x0, sigma, noise=noise), weight * err, rtol=1e-4, atol=0)
    torch.testing.assert_close(den.loss(x0, sigma, noise=noise, weighting="uniform"), err)


def test_loss_mask_drops_padded_steps():
    den = Denoiser(Toy(), sigma_data=0.5)
    x0, noise = torch.randn(2, 4, 3), torch.randn(2, 4, 3)
    sigma = torch.tensor([0.3, 0.8])
    mask = torch.tensor([[1, 1, 0, 0], [1, 1, 1, 1]], dtype=torch.bool)
    full = den.loss(x0[:, :2], sigma, noise=noise[:, :2])
    assert den.loss(x0, sigma, noise=noise, mask=mask)[0] == pytest.approx(float(full[0]))


def test_sigma_data_from_actions():
    a = torch.randn(10_000, 4) * 0.3
    assert sigma_data_from(a) == pytest.approx(0.3, rel=0.03)
    with pytest.raises(ValueError, match="sigma_data"):
        Denoiser(Toy(), sigma_data=0.0)


# ---------------------------------------------------------------------------- densities


def test_log_logistic_default_is_beso_truncated():
    g = torch.Generator().manual_seed(0)
    s = sigma_density("log_logistic", 0.005, 1.0, sigma_data=0.5)(100_000, g)
    assert s.min() >= 0.005 and s.max() <= 1.0
    assert s.median() == pytest.approx(0.41, abs=0.01)  # anchors/beso.md
    # against the truncated logistic CDF of ln(sigma), written out here
    cdf = lambda v: 1 / (1 + math.exp(-(math.log(v) - math.log(0.5)) / 0.5))  # noqa: E731
    lo, hi = cdf(0.005), cdf(1.0)
    for q in (0.05, 0.1, 0.3, 0.7, 0.95):
        assert float((s <= q).float().mean()) == pytest.approx((cdf(q) - lo) / (hi - lo), abs=0.01)


def test_log_normal_and_log_uniform():
    g = torch.Generator().manual_seed(1)
    ln = sigma_density("log_normal", 1e-4, 1e4, loc=-1.2, scale=1.2)(100_000, g).log()
    assert float(ln.mean()) == pytest.approx(-1.2, abs=0.02)
    assert float(ln.std()) == pytest.approx(1.2, abs=0.02)
    lu = sigma_density("log_uniform", 0.01, 10.0)(100_000, g).log()
    assert float(lu.min()) >= math.log(0.01) and float(lu.max()) <= math.log(10.0)
    assert float(lu.mean()) == pytest.approx((math.log(0.01) + math.log(10.0)) / 2, abs=0.03)
    assert float(lu.std()) == pytest.approx(math.log(1000) / 12**0.5, abs=0.02)
    with pytest.raises(ValueError, match="sigma density 'beta'"):
        sigma_density("beta", 0.01, 1.0)


# ---------------------------------------------------------------------------- samplers


def gaussian_denoiser(mu, s):
    """The exact D for data ~ N(mu, s^2): its probability-flow ODE has a closed-form solution."""
    return lambda x, sigma: (s**2 * x + sigma**2 * mu) / (s**2 + sigma**2)


def ode_solution(x_t, sigma_max, mu, s):
    return mu + (x_t - mu) * s / math.sqrt(s**2 + sigma_max**2)


def _ode_error(name, steps, mu=0.7, s=0.2, smax=20.0):
    g = torch.Generator().manual_seed(0)
    x_t = torch.randn(64, 2, generator=g, dtype=torch.float64) * smax
    sigmas = get_sigmas("karras", steps, 1e-3, smax).double()
    out = SAMPLERS[name](gaussian_denoiser(mu, s), x_t, sigmas)
    return float((out - ode_solution(x_t, smax, mu, s)).abs().max())


@pytest.mark.parametrize("name,order", [("euler", 1), ("ddim", 1), ("heun", 2), ("dpmpp_2m", 2)])
def test_deterministic_samplers_solve_the_ode_at_their_order(name, order):
    e16, e32, e64 = (_ode_error(name, n) for n in (16, 32, 64))
    assert e64 < (0.03 if order == 1 else 0.003)
    # doubling the steps divides the error by about 2**order
    assert 2**order * 0.8 < e16 / e32 < 2**order * 1.6
    assert 2**order * 0.8 < e32 / e64 < 2**order * 1.6


@pytest.mark.parametrize(
    "name,kw", [("euler_ancestral", {}), ("dpmpp_2m_sde", {}), ("euler", {"s_churn": 5.0})]
)
def test_stochastic_samplers_reach_the_data_distribution(name, kw):
    mu, s, smax = -0.4, 0.3, 10.0
    g = torch.Generator().manual_seed(0)
    x = torch.randn(20_000, 1, generator=g) * smax
    out = SAMPLERS[name](
        gaussian_denoiser(mu, s), x, get_sigmas("karras", 640, 1e-3, smax), generator=g, **kw
    )
    assert float(out.mean()) == pytest.approx(mu, abs=0.01)
    assert float(out.std()) == pytest.approx(s, abs=0.01)


def test_network_calls():
    calls = []

    def count(x, sigma):
        calls.append(sigma)
        return x * 0

    for name in SAMPLERS:
        calls.clear()
        SAMPLERS[name](count, torch.zeros(1, 2), get_sigmas("linear", 4, 0.01, 1.0))
        assert len(calls) == network_calls(name, 4), name


@pytest.mark.parametrize(
    "ours,theirs",
    [("euler", "diffusers_euler"), ("ddim", "diffusers_ddim"), ("dpmpp_2m", "diffusers_dpmpp_2m")],
)
@pytest.mark.parametrize("schedule", ["exponential", "linear", "karras"])
def test_ours_match_diffusers_edm_schedulers(ours, theirs, schedule):
    den = Denoiser(Toy(), sigma_data=0.5)
    sigmas = get_sigmas(schedule, 5, 0.005, 1.0, rho=5.0)
    x = torch.randn(8, 3, generator=torch.Generator().manual_seed(3)) * sigmas[0]
    with torch.no_grad():
        a = get_sampler(ours)(den, x, sigmas)
        b = get_sampler(theirs)(den, x, sigmas)
    torch.testing.assert_close(a, b, atol=1e-5, rtol=1e-5)
    assert not torch.allclose(a, x, atol=1e-2)


def test_ours_match_diffusers_sde_with_the_same_noise():
    den = Denoiser(Toy(), sigma_data=0.5)
    sigmas = get_sigmas("exponential", 6, 0.005, 1.0)
    x = torch.randn(8, 3, generator=torch.Generator().manual_seed(3))
    with torch.no_grad():
        a = get_sampler("dpmpp_2m_sde")(den, x, sigmas, generator=torch.Generator().manual_seed(9))
        b = get_sampler("diffusers_dpmpp_2m_sde")(
            den, x, sigmas, generator=torch.Generator().manual_seed(9)
        )
        c = get_sampler("dpmpp_2m")(den, x, sigmas)
    torch.testing.assert_close(a, b, atol=1e-5, rtol=1e-5)
    assert not torch.allclose(a, c, atol=1e-3)  # the noise did something


def test_unknown_sampler_is_named():
    with pytest.raises(ValueError, match="sampler 'plms'"):
        get_sampler("plms")
