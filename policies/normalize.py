"""Per-key normalisers as torch tensors, built from the demo folder's statistics.

Same maps as ``demos.stats.Normalizer`` (min_max to [-1, 1], or mean_std), held as tensors so
the per-call path does no numpy-to-torch conversion of the statistics.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

import torch

from demos.stats import Normalizer


class Normalizers:
    def __init__(
        self, stats: Mapping[str, Mapping[str, list[float]]], keys: Iterable[str], mode: str
    ):
        self.mode = mode
        self.offset, self.scale = {}, {}
        for key in keys:
            n = Normalizer.from_stats(dict(stats[key]), mode)  # type: ignore[arg-type]
            self.offset[key] = torch.from_numpy(n.offset)
            self.scale[key] = torch.from_numpy(n.scale)

    def normalize(self, key: str, x: torch.Tensor) -> torch.Tensor:
        return (x - self.offset[key]) / self.scale[key]

    def unnormalize(self, key: str, x: torch.Tensor) -> torch.Tensor:
        return x * self.scale[key] + self.offset[key]

    def to(self, device: torch.device | str) -> Normalizers:
        self.offset = {k: v.to(device) for k, v in self.offset.items()}
        self.scale = {k: v.to(device) for k, v in self.scale.items()}
        return self
