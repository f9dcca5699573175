"""Real-time chunking (RTC) for an EDM sampler: the next chunk held to what will run meanwhile.

While one chunk runs, the next is sampled. Its first ``committed`` actions belong to ticks that
pass while it is computed, so the old chunk's actions run there; the rest of the old plan
overlaps the new one. Sampled blindly, the new chunk may disagree with both and the arm jerks
where it takes over. RTC (Black et al. 2025) samples it so that it agrees: here by inpainting
on the denoiser, ``D' = D + w (y - D)`` with ``y`` the old plan, ``w = 1`` on the committed
actions, decaying to 0 over the rest of the overlap and 0 beyond. Samplers see only ``D``, so
every sampler gets it without retraining; diffusers' schedulers get the same change through
the bare network output ``F`` they consume.
"""

from __future__ import annotations

import math

import numpy as np
import torch

from .edm import scalings


def overlap_weights(overlap: int, committed: int, horizon: int) -> np.ndarray:
    """(horizon,) weights of the old plan: 1 on the first ``committed`` actions, then RTC's
    exponential decay ``c (e^c - 1) / (e - 1)``, ``c = (overlap - i) / (overlap - committed + 1)``,
    over the rest of the overlap (index < ``overlap``), 0 beyond it."""
    if not 0 <= committed <= overlap <= horizon:
        raise ValueError(f"need 0 <= committed ({committed}) <= overlap ({overlap}) <= horizon")
    w = np.zeros(horizon)
    w[:committed] = 1.0
    i = np.arange(committed, overlap)
    c = (overlap - i) / (overlap - committed + 1)
    w[committed:overlap] = c * np.expm1(c) / (math.e - 1)
    return w


class Inpainted:
    """A bound denoiser whose estimate is pulled to ``target`` (B, H, A) with ``weights`` (H,).

    Offers what samplers call: ``denoise(x, sigma)`` and, for diffusers, ``raw(x_in, c_noise)``
    and ``sigma_data``.
    """

    def __init__(self, denoise, target: torch.Tensor, weights: torch.Tensor):
        self.denoise = denoise
        self.sigma_data = denoise.sigma_data
        self.target = target
        self.weights = weights.to(target.dtype).reshape(1, -1, 1)

    def __call__(self, x: torch.Tensor, sigma) -> torch.Tensor:
        return torch.lerp(self.denoise(x, sigma), self.target, self.weights)

    def raw(self, x_in: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
        """F' such that c_skip x + c_out F' is the inpainted estimate (noise = ln(sigma)/4)."""
        f = self.denoise.raw(x_in, noise)
        sigma = torch.exp(4 * noise.reshape(-1, 1, 1))
        c_skip, c_out, c_in = scalings(sigma, self.sigma_data)
        d = c_skip * (x_in / c_in) + c_out * f
        return f + self.weights * (self.target - d) / c_out
