"""Classifier-free guidance: goal dropout in training, guided denoising at sampling.

The null goal is an all-zero goal feature (BESO's choice). Guided denoising
``D_u + lambda (D_c - D_u)``: lambda=1 is the plain conditional policy (one network call per
step), lambda=0 the goal-free one; any other lambda runs both halves in one batched call.
"""

from __future__ import annotations

from typing import Literal

import torch

from .edm import Denoiser

DropMode = Literal["sample", "element"]


def drop_goals(
    goal: torch.Tensor,
    p: float,
    mode: DropMode = "sample",
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """Replace goals by the null goal with probability ``p``.

    ``sample``: the whole goal of a sample (proper CFG); ``element``: each feature on its own
    (BESO's implementation, which its author found to work best; see anchors/beso.md).
    """
    if mode not in ("sample", "element"):
        raise ValueError(f"goal dropout mode {mode!r}: use 'sample' or 'element'")
    if p <= 0:
        return goal
    shape = goal.shape if mode == "element" else (goal.shape[0], *(1,) * (goal.ndim - 1))
    keep = torch.rand(shape, generator=generator, device=goal.device) >= p
    return goal * keep.to(goal.dtype)


class Guided:
    """``denoise(x, sigma)`` (and ``raw`` for diffusers) for fixed observation and goal features."""

    def __init__(
        self,
        denoiser: Denoiser,
        obs: torch.Tensor,
        goal: torch.Tensor | None,
        scale: float = 1.0,
    ):
        self.denoiser, self.scale = denoiser, float(scale)
        self.sigma_data = denoiser.sigma_data
        self.batched = goal is not None and self.scale not in (0.0, 1.0)
        if goal is not None and self.scale == 0.0:
            goal = torch.zeros_like(goal)
        if self.batched:
            obs, goal = torch.cat([obs, obs]), torch.cat([goal, torch.zeros_like(goal)])
        self.cond = (obs,) if goal is None else (obs, goal)

    def _combine(self, out: torch.Tensor) -> torch.Tensor:
        cond, uncond = out.chunk(2)
        return uncond + self.scale * (cond - uncond)

    def __call__(self, x: torch.Tensor, sigma) -> torch.Tensor:
        if not self.batched:
            return self.denoiser(x, sigma, *self.cond)
        return self._combine(self.denoiser(torch.cat([x, x]), sigma, *self.cond))

    def raw(self, x_in: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
        if not self.batched:
            return self.denoiser.raw(x_in, noise, *self.cond)
        out = self.denoiser.raw(torch.cat([x_in, x_in]), torch.cat([noise, noise]), *self.cond)
        return self._combine(out)
