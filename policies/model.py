"""The BESO model: observation/goal encoders + EDM denoiser; its training loss and its sampler call.

Works on normalised tensors only; normalisation, history and queues belong to ``Policy``.
Observation dicts map plain keys to (B, n_obs, ...) tensors, goal dicts to (B, ...) tensors.
"""

from __future__ import annotations

from collections.abc import Mapping

import torch
from torch import nn

from .config import PolicyConfig
from .edm import Denoiser, sigma_density
from .encoders import ObservationEncoder
from .guidance import Guided, drop_goals
from .networks import NETWORKS
from .rtc import Inpainted
from .samplers import get_sampler
from .schedules import get_sigmas

Tensors = Mapping[str, torch.Tensor]


def _encoder(cfg: PolicyConfig, keys: list[str] | None = None) -> ObservationEncoder:
    keep = (lambda k: True) if keys is None else (lambda k: k in keys)
    return ObservationEncoder(
        {k: d for k, d in cfg.state.items() if keep(k)},
        [c for c in cfg.cameras if keep(c)],
        {k: d for k, d in cfg.embeddings.items() if keep(k)},
        d_state=cfg.d_state,
        d_camera=cfg.d_camera,
        d_embedding=cfg.d_embedding,
        keypoints=cfg.keypoints,
        crop=cfg.crop,
        image_trunk=cfg.image_trunk,
    )


class BesoModel(nn.Module):
    """Everything with weights: encoders for observations (and goals) and the EDM denoiser."""

    def __init__(self, cfg: PolicyConfig):
        super().__init__()
        self.cfg = cfg
        self.obs_encoder = _encoder(cfg)
        goal_keys = cfg.resolved_goal_keys
        # goals with the observation's keys share its encoder (one ResNet per camera, not two)
        self.share_goal_encoder = goal_keys == [*cfg.state, *cfg.cameras, *cfg.embeddings]
        self.goal_encoder = None
        if cfg.uses_goal and not self.share_goal_encoder:
            self.goal_encoder = _encoder(cfg, goal_keys)
        goal_dim = self._goal_encoder().out_dim if cfg.uses_goal else 0
        self.goal_dim = goal_dim
        net = NETWORKS[cfg.network](
            cfg.action_dim,
            cfg.horizon,
            self.obs_encoder.out_dim,
            cfg.n_obs,
            goal_dim,
            int(cfg.uses_goal),
            **cfg.network_kwargs,
        )
        self.denoiser = Denoiser(net, cfg.sigma_data)
        self.density = sigma_density(
            cfg.sigma_density,
            cfg.sigma_min,
            cfg.sigma_max,
            cfg.sigma_data,
            cfg.density_loc,
            cfg.density_scale,
        )

    def _goal_encoder(self) -> ObservationEncoder:
        return self.obs_encoder if self.goal_encoder is None else self.goal_encoder

    def encode_obs(self, obs: Tensors) -> torch.Tensor:
        """(B, T, ...) per key -> (B, T, d_obs)."""
        return self.obs_encoder(obs)

    def encode_goal(self, goal: Tensors | None) -> torch.Tensor | None:
        """(B, ...) per key -> (B, 1, d_goal); None for a goal-free model."""
        if not self.cfg.uses_goal:
            return None
        enc = self._goal_encoder()
        return enc({k: goal[k][:, None] for k in enc.keys})

    def loss(
        self,
        obs: Tensors,
        goal: Tensors | None,
        action: torch.Tensor,
        pad: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """The mean EDM loss of a batch, with noise levels from the training density."""
        cfg = self.cfg
        obs_emb = self.encode_obs(obs)
        goal_emb = self.encode_goal(goal)
        if goal_emb is not None:
            goal_emb = drop_goals(goal_emb, cfg.goal_dropout, cfg.goal_dropout_mode)
        sigma = self.density(action.shape[0], None).to(action.device)
        mask = ~pad if (cfg.mask_padding and pad is not None) else None
        cond = (obs_emb,) if goal_emb is None else (obs_emb, goal_emb)
        return self.denoiser.loss(action, sigma, *cond, weighting=cfg.weighting, mask=mask).mean()

    def forward(
        self,
        obs: Tensors,
        goal: Tensors | None,
        action: torch.Tensor,
        pad: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """The training loss: a forward call, so that a DDP wrapper syncs the gradients."""
        return self.loss(obs, goal, action, pad)

    def sigmas(
        self,
        steps: int | None = None,
        schedule: str | None = None,
        sigma_min: float | None = None,
        sigma_max: float | None = None,
        rho: float | None = None,
    ) -> torch.Tensor:
        """The sampling levels; None arguments take the config's value."""
        cfg = self.cfg
        return get_sigmas(
            schedule or cfg.schedule,
            steps or cfg.steps,
            cfg.sigma_min if sigma_min is None else sigma_min,
            cfg.sigma_max if sigma_max is None else sigma_max,
            cfg.rho if rho is None else rho,
        )

    def sample(
        self,
        obs_emb: torch.Tensor,
        goal_emb: torch.Tensor | None,
        *,
        sampler: str | None = None,
        guidance: float | None = None,
        sigmas: torch.Tensor | None = None,
        generator: torch.Generator | None = None,
        prefix: tuple[torch.Tensor, torch.Tensor] | None = None,
        **schedule,
    ) -> torch.Tensor:
        """Normalised action sequences (B, horizon, A) for encoded observations and goals.

        ``sigmas`` (precomputed) or ``schedule`` keywords of ``sigmas()``; None arguments take
        the config's value. The initial noise is ``randn * sigmas[0]``. ``prefix``: (the old
        plan (B, horizon, A), its weights (horizon,)) for real-time chunking (``policies.rtc``).
        """
        cfg = self.cfg
        if sigmas is None:
            sigmas = self.sigmas(**schedule)
        scale = cfg.guidance if guidance is None else guidance
        denoise = Guided(self.denoiser, obs_emb, goal_emb, scale)
        if prefix is not None:
            denoise = Inpainted(denoise, *prefix)
        shape = (obs_emb.shape[0], cfg.horizon, cfg.action_dim)
        x = torch.randn(shape, generator=generator, dtype=obs_emb.dtype, device=obs_emb.device)
        run = get_sampler(sampler or cfg.sampler)
        return run(denoise, x * float(sigmas[0]), sigmas, generator=generator)
