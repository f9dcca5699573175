"""Score networks F(x_in, c_noise, obs, goal) -> (B, horizon, A).

``x_in`` (B, horizon, A) is the c_in-scaled noisy action sequence, ``c_noise`` (B,) is ln(sigma)/4,
``obs`` (B, n_obs, d_obs) the per-step observation features, ``goal`` (B, n_goal, d_goal) or None.
Both networks only read features: observations are encoded once per inference call, outside.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


def _init(module: nn.Module) -> None:
    """minGPT/BESO init: N(0, 0.02) weights, zero biases, unit LayerNorm."""
    if isinstance(module, nn.Linear | nn.Embedding):
        nn.init.normal_(module.weight, std=0.02)
        if getattr(module, "bias", None) is not None:
            nn.init.zeros_(module.bias)
    elif isinstance(module, nn.LayerNorm):
        nn.init.ones_(module.weight)
        nn.init.zeros_(module.bias)


class _ResidualBlock(nn.Module):
    """h + W2 GELU(W1 LN(h)), in functional calls: at batch 1 per-call overheads dominate, so
    no module per op, and tanh-GELU (exact GELU has a ~10 us fixed cost per call on CPU)."""

    def __init__(self, hidden: int, expansion: int, dropout: float):
        super().__init__()
        self.norm = nn.LayerNorm(hidden)
        self.fc1 = nn.Linear(hidden, expansion * hidden)
        self.fc2 = nn.Linear(expansion * hidden, hidden)
        self.dropout = dropout

    def forward(self, h):
        n, fc1, fc2 = self.norm, self.fc1, self.fc2
        y = F.layer_norm(h, n.normalized_shape, n.weight, n.bias)
        y = F.gelu(F.linear(y, fc1.weight, fc1.bias), approximate="tanh")
        if self.training and self.dropout:
            y = F.dropout(y, self.dropout)
        return h + F.linear(y, fc2.weight, fc2.bias)


class ResidualMLP(nn.Module):
    """A residual MLP over the flattened window, for small state tasks (fast at batch 1)."""

    def __init__(
        self,
        action_dim: int,
        horizon: int,
        obs_dim: int,
        n_obs: int,
        goal_dim: int = 0,
        n_goal: int = 0,
        hidden: int = 256,
        blocks: int = 4,
        expansion: int = 2,
        dropout: float = 0.0,
    ):
        super().__init__()
        self.horizon, self.action_dim = horizon, action_dim
        d_in = horizon * action_dim + n_obs * obs_dim + n_goal * goal_dim
        self.inp = nn.Linear(d_in, hidden)
        self.sigma = nn.Sequential(nn.Linear(1, hidden), nn.SiLU(), nn.Linear(hidden, hidden))
        self.blocks = nn.ModuleList(
            _ResidualBlock(hidden, expansion, dropout) for _ in range(blocks)
        )
        self.out = nn.Sequential(nn.LayerNorm(hidden), nn.Linear(hidden, horizon * action_dim))
        self.apply(_init)

    def forward(self, x_in, c_noise, obs, goal=None):
        parts = [x_in.flatten(1), obs.flatten(1)]
        if goal is not None:
            parts.append(goal.flatten(1))
        h = self.inp(torch.cat(parts, 1)) + self.sigma(c_noise[:, None])
        for block in self.blocks:
            h = block(h)
        return self.out(h).view(-1, self.horizon, self.action_dim)


class CausalSelfAttention(nn.Module):
    def __init__(self, d: int, heads: int, attn_dropout: float, resid_dropout: float):
        super().__init__()
        if d % heads:
            raise ValueError(f"d_model={d} is not divisible by n_heads={heads}")
        self.heads, self.attn_dropout = heads, attn_dropout
        self.qkv = nn.Linear(d, 3 * d)
        self.proj = nn.Linear(d, d)
        self.drop = nn.Dropout(resid_dropout)

    def forward(self, x):
        b, n, d = x.shape
        q, k, v = self.qkv(x).view(b, n, 3, self.heads, d // self.heads).permute(2, 0, 3, 1, 4)
        p = self.attn_dropout if self.training else 0.0
        y = F.scaled_dot_product_attention(q, k, v, dropout_p=p, is_causal=True)
        return self.drop(self.proj(y.transpose(1, 2).reshape(b, n, d)))


class Block(nn.Module):
    """Pre-LayerNorm transformer block: causal attention, then a 4d GELU MLP."""

    def __init__(self, d: int, heads: int, attn_dropout: float, resid_dropout: float):
        super().__init__()
        self.ln1, self.ln2 = nn.LayerNorm(d), nn.LayerNorm(d)
        self.attn = CausalSelfAttention(d, heads, attn_dropout, resid_dropout)
        self.mlp = nn.Sequential(
            nn.Linear(d, 4 * d), nn.GELU(), nn.Linear(4 * d, d), nn.Dropout(resid_dropout)
        )

    def forward(self, x):
        x = x + self.attn(self.ln1(x))
        return x + self.mlp(self.ln2(x))


class DiffusionGPT(nn.Module):
    """BESO's score transformer: tokens [sigma, goal_1..G, obs_1..To, action_1..H], causal.

    sigma enters as one token, Linear(1, d) of c_noise; every token gets a learned position; the
    output is read at the action tokens. Actions see every goal and observation token and the
    actions before them.
    """

    def __init__(
        self,
        action_dim: int,
        horizon: int,
        obs_dim: int,
        n_obs: int,
        goal_dim: int = 0,
        n_goal: int = 0,
        d_model: int = 240,
        n_layers: int = 4,
        n_heads: int = 12,
        attn_dropout: float = 0.05,
        resid_dropout: float = 0.05,
        embed_dropout: float = 0.0,
    ):
        super().__init__()
        self.horizon = horizon
        self.sigma_emb = nn.Linear(1, d_model)
        self.obs_emb = nn.Linear(obs_dim, d_model)
        self.goal_emb = nn.Linear(goal_dim, d_model) if n_goal else None
        self.action_emb = nn.Linear(action_dim, d_model)
        self.pos = nn.Parameter(torch.zeros(1, 1 + n_goal + n_obs + horizon, d_model))
        self.drop = nn.Dropout(embed_dropout)
        self.blocks = nn.ModuleList(
            Block(d_model, n_heads, attn_dropout, resid_dropout) for _ in range(n_layers)
        )
        self.ln = nn.LayerNorm(d_model)
        self.head = nn.Linear(d_model, action_dim)
        self.apply(_init)
        nn.init.normal_(self.pos, std=0.02)

    def forward(self, x_in, c_noise, obs, goal=None):
        tokens = [self.sigma_emb(c_noise[:, None, None])]
        if self.goal_emb is not None:
            tokens.append(self.goal_emb(goal))
        tokens += [self.obs_emb(obs), self.action_emb(x_in)]
        h = self.drop(torch.cat(tokens, 1) + self.pos)
        for block in self.blocks:
            h = block(h)
        return self.head(self.ln(h[:, -self.horizon :]))


NETWORKS = {"mlp": ResidualMLP, "gpt": DiffusionGPT}
