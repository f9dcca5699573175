"""EDM preconditioning (Karras et al. 2022) around a score network; training noise levels; loss.

The denoiser owns the preconditioning so that networks, samplers and training never repeat it:
``D(x; sigma) = c_skip x + c_out F(c_in x, c_noise, *cond)`` with ``c_noise = ln(sigma) / 4``.
Samplers only see ``D``; the diffusers schedulers, which apply c_skip/c_out themselves, see ``F``.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Literal

import torch
from torch import nn

Weighting = Literal["edm", "uniform"]


def append_dims(x: torch.Tensor, ndim: int) -> torch.Tensor:
    """``x`` with trailing singleton dims, to broadcast against a tensor of ``ndim`` dims."""
    return x.reshape(*x.shape, *(1,) * (ndim - x.ndim))


def scalings(sigma, sigma_data: float):
    """(c_skip, c_out, c_in) for a float or a tensor sigma: unit-variance input and target."""
    s2 = sigma**2 + sigma_data**2
    return sigma_data**2 / s2, sigma * sigma_data / s2**0.5, 1 / s2**0.5


def c_noise(sigma: torch.Tensor) -> torch.Tensor:
    """The network's noise input, ln(sigma)/4 (EDM; also diffusers' EDM ``timesteps``)."""
    return sigma.log() * 0.25


class Denoiser(nn.Module):
    """``D(x; sigma, *cond)`` from a score network ``F(x_in, c_noise, *cond)``.

    ``sigma`` is a float (sampling: one level for the batch) or a (B,) tensor (training).
    """

    def __init__(self, net: nn.Module, sigma_data: float = 0.5):
        super().__init__()
        if not sigma_data > 0:
            raise ValueError(f"sigma_data must be > 0, got {sigma_data}")
        self.net = net
        self.sigma_data = float(sigma_data)

    def raw(self, x_in: torch.Tensor, noise: torch.Tensor, *cond) -> torch.Tensor:
        """The bare network output F (what diffusers' EDM schedulers consume)."""
        return self.net(x_in, noise, *cond)

    def forward(self, x: torch.Tensor, sigma, *cond) -> torch.Tensor:
        c_skip, c_out, c_in = self._scalings(sigma, x)
        return c_skip * x + c_out * self.net(c_in * x, self._noise(sigma, x), *cond)

    def loss(
        self,
        x0: torch.Tensor,
        sigma: torch.Tensor,
        *cond,
        noise: torch.Tensor | None = None,
        weighting: Weighting = "edm",
        mask: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Per-sample loss (B,).

        ``edm``: MSE in F space, i.e. lambda(sigma) = 1/c_out^2 times the error of D (EDM's
        weighting, BESO's loss); ``uniform``: plain MSE of D. ``mask`` (B, horizon) selects the
        sequence positions that count (e.g. not padding).
        """
        if noise is None:
            noise = torch.randn_like(x0)
        x = x0 + noise * append_dims(sigma, x0.ndim)
        c_skip, c_out, c_in = self._scalings(sigma, x0)
        f = self.net(c_in * x, c_noise(sigma), *cond)
        err = (f - (x0 - c_skip * x) / c_out) ** 2
        if weighting == "uniform":
            err = err * c_out**2
        elif weighting != "edm":
            raise ValueError(f"weighting={weighting!r}: use 'edm' or 'uniform'")
        err = err.flatten(2).mean(-1) if err.ndim > 2 else err
        if mask is None:
            return err.flatten(1).mean(-1)
        mask = mask.to(err.dtype)
        return (err * mask).sum(-1) / mask.sum(-1).clamp_min(1)

    def _scalings(self, sigma, x: torch.Tensor):
        if isinstance(sigma, torch.Tensor) and sigma.ndim > 0:
            sigma = append_dims(sigma.to(x.dtype), x.ndim)
        return scalings(sigma, self.sigma_data)

    @staticmethod
    def _noise(sigma, x: torch.Tensor) -> torch.Tensor:
        if isinstance(sigma, torch.Tensor):
            return c_noise(sigma.to(x.dtype)).expand(x.shape[0])
        return torch.full((x.shape[0],), 0.25 * math.log(sigma), dtype=x.dtype, device=x.device)


# --------------------------------------------------------------------- training noise levels
SigmaDensity = Callable[[int, torch.Generator | None], torch.Tensor]


def _truncated(icdf, cdf, lo: float, hi: float) -> SigmaDensity:
    """Inverse-CDF sampling of ln(sigma) restricted to [ln lo, ln hi] (no rejection loop)."""
    a, b = cdf(torch.tensor(math.log(lo))), cdf(torch.tensor(math.log(hi)))

    def draw(n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        u = torch.rand(n, generator=generator, dtype=torch.float64) * (b - a) + a
        return icdf(u).exp().clamp(lo, hi).float()

    return draw


def log_logistic(loc: float, scale: float, sigma_min: float, sigma_max: float) -> SigmaDensity:
    """ln(sigma) ~ Logistic(loc, scale) truncated to [sigma_min, sigma_max] (BESO's default)."""
    return _truncated(
        lambda u: loc + scale * torch.logit(u),
        lambda s: torch.sigmoid((s - loc) / scale),
        sigma_min,
        sigma_max,
    )


def log_normal(loc: float, scale: float, sigma_min: float, sigma_max: float) -> SigmaDensity:
    """ln(sigma) ~ Normal(loc, scale) truncated to [sigma_min, sigma_max] (EDM: -1.2, 1.2)."""
    return _truncated(
        lambda u: loc + scale * torch.special.ndtri(u),
        lambda s: torch.special.ndtr((s - loc) / scale),
        sigma_min,
        sigma_max,
    )


def log_uniform(sigma_min: float, sigma_max: float) -> SigmaDensity:
    """ln(sigma) uniform on [ln sigma_min, ln sigma_max]."""
    lo, hi = math.log(sigma_min), math.log(sigma_max)
    icdf, cdf = (lambda u: lo + (hi - lo) * u), (lambda s: (s - lo) / (hi - lo))
    return _truncated(icdf, cdf, sigma_min, sigma_max)


def sigma_density(
    name: str,
    sigma_min: float,
    sigma_max: float,
    sigma_data: float = 0.5,
    loc: float | None = None,
    scale: float | None = None,
) -> SigmaDensity:
    """A training density by name; log-logistic defaults to loc ln(sigma_data), scale 0.5."""
    if not 0 < sigma_min < sigma_max:
        raise ValueError(f"need 0 < sigma_min < sigma_max, got {sigma_min}, {sigma_max}")
    if name == "log_logistic":
        loc = math.log(sigma_data) if loc is None else loc
        return log_logistic(loc, 0.5 if scale is None else scale, sigma_min, sigma_max)
    if name == "log_normal":
        loc, scale = -1.2 if loc is None else loc, 1.2 if scale is None else scale
        return log_normal(loc, scale, sigma_min, sigma_max)
    if name == "log_uniform":
        return log_uniform(sigma_min, sigma_max)
    raise ValueError(f"sigma density {name!r}: use log_logistic, log_normal or log_uniform")


def sigma_data_from(actions) -> float:
    """sigma_data as the std of the (normalised) action values, all dims pooled (BESO issue #3)."""
    a = torch.as_tensor(actions, dtype=torch.float64)
    return float(a.std(correction=0))
