"""Training batches that are a pure function of (seed, step), and their normalisation."""

from __future__ import annotations

import random

import numpy as np
import torch

from .config import PolicyConfig
from .normalize import Normalizers


class Batches(torch.utils.data.Dataset):
    """Batch ``s``: windows of a per-epoch permutation, goals drawn with a per-step seed.

    A pure function of (seed, s), in any process: resuming at step s gives the same batches.
    ``shard=(rank, world)``: this process's rows of every global batch (multi-process training).
    """

    def __init__(
        self,
        dataset,
        batch_size: int,
        seed: int,
        cfg: PolicyConfig,
        shard: tuple[int, int] = (0, 1),
    ):
        self.dataset, self.batch_size, self.seed = dataset, batch_size, seed
        self.rank, self.world = shard
        if not 0 <= self.rank < self.world <= batch_size:
            raise ValueError(f"shard {shard} of a batch of {batch_size}")
        self.per_epoch = len(dataset) // batch_size
        self._perm: tuple[int, torch.Tensor] | None = None
        keys = [*cfg.state, *cfg.cameras, *cfg.embeddings]
        self.keys = [f"obs.{k}" for k in keys] + ["action", "action_is_pad"]
        if cfg.uses_goal:
            self.keys += [f"goal.{k}" for k in keys]

    def __len__(self) -> int:
        return 2**62

    def __getitem__(self, s: int) -> dict[str, torch.Tensor]:
        epoch, j = divmod(s, self.per_epoch)
        if self._perm is None or self._perm[0] != epoch:
            g = torch.Generator().manual_seed(self.seed * 1_000_003 + epoch)
            self._perm = (epoch, torch.randperm(len(self.dataset), generator=g))
        rows = self._perm[1][j * self.batch_size : (j + 1) * self.batch_size]
        rows = rows[self.rank :: self.world].tolist()
        # WindowDataset draws future goals from `random`
        random.seed((self.seed * 1_000_003 + s) * self.world + self.rank)
        items = [self.dataset[r] for r in rows]
        return {k: torch.from_numpy(np.stack([it[k] for it in items])) for k in self.keys}


def prepare(batch: dict[str, torch.Tensor], cfg: PolicyConfig, norm: Normalizers, device):
    """(obs, goal, action, pad) on ``device``: state and actions normalised, images left uint8,
    embeddings as they are (the encoder's LayerNorm scales them)."""
    batch = {k: v.to(device, non_blocking=True) for k, v in batch.items()}
    obs = {k: norm.normalize(k, batch[f"obs.{k}"]) for k in cfg.state}
    obs.update({c: batch[f"obs.{c}"] for c in [*cfg.cameras, *cfg.embeddings]})
    goal = None
    if cfg.uses_goal:
        goal = {k: norm.normalize(k, batch[f"goal.{k}"]) for k in cfg.state}
        goal.update({c: batch[f"goal.{c}"] for c in [*cfg.cameras, *cfg.embeddings]})
    return obs, goal, norm.normalize("action", batch["action"]), batch["action_is_pad"]
