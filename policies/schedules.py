"""Sampling noise schedules: ``n`` levels from sigma_max down to sigma_min, then a final 0.

With 3 steps on BESO's [0.005, 1]: exponential [1, 0.071, 0.005, 0], linear [1, 0.50, 0.005, 0].
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch


def _with_zero(sigmas: torch.Tensor) -> torch.Tensor:
    return torch.cat([sigmas, sigmas.new_zeros(1)])


def exponential(n: int, sigma_min: float, sigma_max: float) -> torch.Tensor:
    """Evenly spaced in ln(sigma) (BESO's rollout default)."""
    return _with_zero(torch.linspace(math.log(sigma_max), math.log(sigma_min), n).exp())


def karras(n: int, sigma_min: float, sigma_max: float, rho: float = 7.0) -> torch.Tensor:
    """Evenly spaced in sigma^(1/rho) (EDM uses rho=7, BESO's configs 5)."""
    ramp = torch.linspace(0, 1, n)
    lo, hi = sigma_min ** (1 / rho), sigma_max ** (1 / rho)
    return _with_zero((hi + ramp * (lo - hi)) ** rho)


def linear(n: int, sigma_min: float, sigma_max: float) -> torch.Tensor:
    """Evenly spaced in sigma (= karras with rho=1)."""
    return _with_zero(torch.linspace(sigma_max, sigma_min, n))


SCHEDULES: dict[str, Callable[..., torch.Tensor]] = {
    "exponential": exponential,
    "karras": karras,
    "linear": linear,
}


def get_sigmas(
    name: str, steps: int, sigma_min: float, sigma_max: float, rho: float = 7.0
) -> torch.Tensor:
    """The schedule ``name`` with ``steps`` network levels (``steps + 1`` values, last 0)."""
    if name not in SCHEDULES:
        raise ValueError(f"schedule {name!r}: use one of {sorted(SCHEDULES)}")
    if steps < 1:
        raise ValueError(f"steps must be >= 1, got {steps}")
    if not 0 < sigma_min <= sigma_max:
        raise ValueError(f"need 0 < sigma_min <= sigma_max, got {sigma_min}, {sigma_max}")
    if name == "karras":
        return karras(steps, sigma_min, sigma_max, rho)
    return SCHEDULES[name](steps, sigma_min, sigma_max)
