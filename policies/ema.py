"""Exponential moving average of the weights (score_sde/BESO scheme), used for evaluation."""

from __future__ import annotations

import torch
from torch import nn


class EMA:
    """``shadow = d * shadow + (1 - d) * weights`` each step, d = min(decay, (1+n)/(10+n)).

    The warm-up term lets the average follow the fast early changes instead of the random init.
    """

    def __init__(self, model: nn.Module, decay: float = 0.999):
        self.decay = decay
        self.shadow = {k: v.detach().clone() for k, v in model.state_dict().items()}

    @torch.no_grad()
    def update(self, model: nn.Module, n: int) -> None:
        d = min(self.decay, (1 + n) / (10 + n))
        state = model.state_dict()
        keys = [k for k, v in self.shadow.items() if v.is_floating_point()]
        torch._foreach_lerp_([self.shadow[k] for k in keys], [state[k] for k in keys], 1 - d)
        for k, v in self.shadow.items():
            if not v.is_floating_point():
                v.copy_(state[k])

    def state_dict(self) -> dict[str, torch.Tensor]:
        return self.shadow

    def load_state_dict(self, state: dict[str, torch.Tensor]) -> None:
        for k, v in self.shadow.items():
            v.copy_(state[k])
