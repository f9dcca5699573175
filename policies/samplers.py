"""Samplers over ``(denoise, x, sigmas)``, k-diffusion style.

``denoise(x, sigma) -> D`` is the EDM denoiser with its conditioning already bound; ``x`` starts
as ``randn * sigmas[0]``; ``sigmas`` ends with 0. No sampler knows about observations or goals.
Levels are read once as Python floats: with 3 steps the loop must cost nothing beside the network.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import torch

Denoise = Callable[[torch.Tensor, float], torch.Tensor]
Sigmas = torch.Tensor | Sequence[float]


def _levels(sigmas: Sigmas) -> list[float]:
    return sigmas.tolist() if isinstance(sigmas, torch.Tensor) else [float(s) for s in sigmas]


def _randn(x: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
    return torch.randn(x.shape, generator=generator, dtype=x.dtype, device=x.device)


def _churn(
    x: torch.Tensor,
    sigma: float,
    n: int,
    s_churn: float,
    s_tmin: float,
    s_tmax: float,
    s_noise: float,
    generator: torch.Generator | None,
) -> tuple[torch.Tensor, float]:
    """Karras' stochastic churn: raise the level to sigma_hat >= sigma with fresh noise."""
    gamma = min(s_churn / n, 2**0.5 - 1) if s_tmin <= sigma <= s_tmax else 0.0
    sigma_hat = sigma * (gamma + 1)
    if sigma_hat > sigma:
        x = x + _randn(x, generator) * (s_noise * (sigma_hat**2 - sigma**2) ** 0.5)
    return x, sigma_hat


def ancestral_step(sigma: float, sigma_next: float, eta: float = 1.0) -> tuple[float, float]:
    """(sigma_down, sigma_up): a deterministic step to sigma_down, then fresh noise sigma_up."""
    if not eta or sigma_next == 0:
        return sigma_next, 0.0
    up = min(sigma_next, eta * (sigma_next**2 * (sigma**2 - sigma_next**2) / sigma**2) ** 0.5)
    return (sigma_next**2 - up**2) ** 0.5, up


def sample_euler(
    denoise: Denoise,
    x: torch.Tensor,
    sigmas: Sigmas,
    *,
    s_churn: float = 0.0,
    s_tmin: float = 0.0,
    s_tmax: float = float("inf"),
    s_noise: float = 1.0,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """Karras et al. Algorithm 2 with Euler steps; ``s_churn > 0`` adds noise before each step."""
    s = _levels(sigmas)
    n = len(s) - 1
    for i in range(n):
        x, sigma = _churn(x, s[i], n, s_churn, s_tmin, s_tmax, s_noise, generator)
        d = (x - denoise(x, sigma)) / sigma
        x = x + d * (s[i + 1] - sigma)
    return x


def sample_heun(
    denoise: Denoise,
    x: torch.Tensor,
    sigmas: Sigmas,
    *,
    s_churn: float = 0.0,
    s_tmin: float = 0.0,
    s_tmax: float = float("inf"),
    s_noise: float = 1.0,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """Karras et al. Algorithm 2 (Heun, 2n-1 network calls; the step to 0 is Euler)."""
    s = _levels(sigmas)
    n = len(s) - 1
    for i in range(n):
        x, sigma = _churn(x, s[i], n, s_churn, s_tmin, s_tmax, s_noise, generator)
        d = (x - denoise(x, sigma)) / sigma
        dt = s[i + 1] - sigma
        if s[i + 1] == 0:
            x = x + d * dt
        else:
            x2 = x + d * dt
            d2 = (x2 - denoise(x2, s[i + 1])) / s[i + 1]
            x = x + (d + d2) * (dt / 2)
    return x


def sample_euler_ancestral(
    denoise: Denoise,
    x: torch.Tensor,
    sigmas: Sigmas,
    *,
    eta: float = 1.0,
    s_noise: float = 1.0,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """Euler to sigma_down, then noise back up to sigma_next (stochastic; BESO's kitchen pick)."""
    s = _levels(sigmas)
    for i in range(len(s) - 1):
        den = denoise(x, s[i])
        down, up = ancestral_step(s[i], s[i + 1], eta)
        x = x + (x - den) * ((down - s[i]) / s[i])
        if up > 0:
            x = x + _randn(x, generator) * (s_noise * up)
    return x


def sample_ddim(
    denoise: Denoise, x: torch.Tensor, sigmas: Sigmas, *, generator: torch.Generator | None = None
) -> torch.Tensor:
    """Deterministic DDIM = DPM-Solver-1 in data-prediction form (BESO's default).

    x' = (sigma'/sigma) x - expm1(-h) D with h = ln(sigma/sigma'); in this (VE) parametrisation
    it coincides with the Euler step. ``generator`` is unused (one call signature for all).
    """
    s = _levels(sigmas)
    for i in range(len(s) - 1):
        x = torch.lerp(denoise(x, s[i]), x, s[i + 1] / s[i])  # ratio x + (1 - ratio) D
    return x


def sample_dpmpp_2m(
    denoise: Denoise, x: torch.Tensor, sigmas: Sigmas, *, generator: torch.Generator | None = None
) -> torch.Tensor:
    """DPM-Solver++(2M): multistep, second order from the 2nd step; first order into sigma=0."""
    s = _levels(sigmas)
    old = None
    for i in range(len(s) - 1):
        den = denoise(x, s[i])
        ratio = s[i + 1] / s[i]
        if old is None or s[i + 1] == 0:
            x = ratio * x + (1 - ratio) * den
        else:
            r = math.log(s[i - 1] / s[i]) / math.log(s[i] / s[i + 1])
            x = ratio * x + (1 - ratio) * ((1 + 1 / (2 * r)) * den - (1 / (2 * r)) * old)
        old = den
    return x


def sample_dpmpp_2m_sde(
    denoise: Denoise,
    x: torch.Tensor,
    sigmas: Sigmas,
    *,
    eta: float = 1.0,
    s_noise: float = 1.0,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """DPM-Solver++(2M) SDE, midpoint form (k-diffusion's; diffusers' ``sde-dpmsolver++``)."""
    s = _levels(sigmas)
    old, h_last = None, None
    for i in range(len(s) - 1):
        den = denoise(x, s[i])
        if s[i + 1] == 0:
            x = den
        else:
            h = math.log(s[i] / s[i + 1])
            a = -math.expm1(-h - eta * h)
            x = (s[i + 1] / s[i] * math.exp(-eta * h)) * x + a * den
            if old is not None:
                x = x + (0.5 * a * h / h_last) * (den - old)
            if eta:
                scale = s[i + 1] * (-math.expm1(-2 * eta * h)) ** 0.5 * s_noise
                x = x + _randn(x, generator) * scale
            h_last = h
        old = den
    return x


Sampler = Callable[..., torch.Tensor]

SAMPLERS: dict[str, Sampler] = {
    "euler": sample_euler,
    "heun": sample_heun,
    "euler_ancestral": sample_euler_ancestral,
    "ddim": sample_ddim,
    "dpmpp_2m": sample_dpmpp_2m,
    "dpmpp_2m_sde": sample_dpmpp_2m_sde,
}


def network_calls(name: str, steps: int) -> int:
    """Network evaluations for ``steps`` levels (Heun's step to 0 is a single Euler call)."""
    return 2 * steps - 1 if name == "heun" else steps


def get_sampler(name: str) -> Sampler:
    """A sampler by name: ours, or ``diffusers_<name>`` for the diffusers EDM schedulers."""
    if name in SAMPLERS:
        return SAMPLERS[name]
    from .diffusers_samplers import DIFFUSERS_SAMPLERS

    if name in DIFFUSERS_SAMPLERS:
        return DIFFUSERS_SAMPLERS[name]
    raise ValueError(
        f"sampler {name!r}: use one of {sorted(SAMPLERS) + sorted(DIFFUSERS_SAMPLERS)}"
    )
