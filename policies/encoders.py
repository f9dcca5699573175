"""Observation encoders: per-step features from proprio, cameras and precomputed embeddings.

Each time step is encoded on its own, so a policy can keep the features of past steps and encode
only the newest frame per call. Inputs are already normalised (state) or raw uint8 (images).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import torch
from torch import nn

from decomposer.nets import KeypointConv

from .config import IMAGE_TRUNKS
from .resnet import ResNet18, SpatialSoftmax


def crop_images(x: torch.Tensor, size: Sequence[int], random: bool) -> torch.Tensor:
    """Crop (N, C, H, W) to ``size``: one random window per image, or the centre."""
    n, _, h, w = x.shape
    ch, cw = size
    if (ch, cw) == (h, w):
        return x
    if not random:
        top, left = (h - ch) // 2, (w - cw) // 2
        return x[:, :, top : top + ch, left : left + cw]
    top = torch.randint(0, h - ch + 1, (n, 1), device=x.device)
    left = torch.randint(0, w - cw + 1, (n, 1), device=x.device)
    rows = (top + torch.arange(ch, device=x.device))[:, None, :, None]
    cols = (left + torch.arange(cw, device=x.device))[:, None, None, :]
    batch = torch.arange(n, device=x.device)[:, None, None, None]
    chan = torch.arange(x.shape[1], device=x.device)[None, :, None, None]
    return x[batch, chan, rows, cols]


class ImageEncoder(nn.Module):
    """uint8 (N, H, W, 3) -> (N, d): crop, trunk, spatial softmax keypoints, linear.

    Trunks: ``resnet18`` (GroupNorm, Diffusion Policy's choice: ~40 samples/s of two 84 x 84
    cameras on 2 CPU cores) or ``compact`` (three convolutions, ``decomposer.nets.KeypointConv``,
    the ``bc_local`` backbone's net: sized for a laptop CPU).
    """

    def __init__(
        self,
        crop: Sequence[int] | None = None,
        keypoints: int = 32,
        d_out: int = 64,
        trunk: str = "resnet18",
    ):
        super().__init__()
        if trunk not in IMAGE_TRUNKS:
            raise ValueError(f"image_trunk={trunk!r}: use one of {IMAGE_TRUNKS}")
        self.crop = tuple(crop) if crop else None
        if trunk == "resnet18":
            self.trunk = ResNet18()
            self.keypoints = SpatialSoftmax(ResNet18.widths[-1], keypoints)
        else:  # its own heat maps and soft-argmax end the trunk
            self.trunk, self.keypoints = KeypointConv(keypoints), nn.Identity()
        self.out = nn.Linear(2 * keypoints, d_out)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        x = images.permute(0, 3, 1, 2)
        if self.crop is not None:
            x = crop_images(x, self.crop, random=self.training)
        # dense, in the trunk's layout: a mismatched layout costs a copy per layer (~3x slower)
        fmt = torch.channels_last if self.channels_last else torch.contiguous_format
        x = x.to(torch.float32, memory_format=fmt).div_(127.5).sub_(1.0)
        return self.out(self.keypoints(self.trunk(x)))

    @property
    def channels_last(self) -> bool:
        first_conv = next(p for p in self.trunk.parameters() if p.ndim == 4)
        return first_conv.is_contiguous(memory_format=torch.channels_last)


class ObservationEncoder(nn.Module):
    """{key: (B, T, ...)} -> (B, T, out_dim): the features of each step, concatenated.

    ``state``: proprio keys and dims, through one linear layer; ``cameras``: names, each with its
    own from-scratch ``image_trunk``; ``embeddings``: precomputed frozen features (e.g. a decomposer
    backbone's), through LayerNorm + linear.
    """

    def __init__(
        self,
        state: Mapping[str, int],
        cameras: Sequence[str] = (),
        embeddings: Mapping[str, int] | None = None,
        *,
        d_state: int = 64,
        d_camera: int = 64,
        d_embedding: int = 64,
        keypoints: int = 32,
        crop: Sequence[int] | None = None,
        image_trunk: str = "resnet18",
    ):
        super().__init__()
        embeddings = dict(embeddings or {})
        self.state_keys = list(state)
        self.state = nn.Linear(sum(state.values()), d_state) if state else None
        self.cameras = nn.ModuleDict(
            {c: ImageEncoder(crop, keypoints, d_camera, image_trunk) for c in cameras}
        )
        self.embeddings = nn.ModuleDict(
            {
                k: nn.Sequential(nn.LayerNorm(d), nn.Linear(d, d_embedding))
                for k, d in embeddings.items()
            }
        )
        self.out_dim = (
            (d_state if state else 0) + d_camera * len(cameras) + d_embedding * len(embeddings)
        )
        if not self.out_dim:
            raise ValueError(
                "the observation encoder has no inputs (no state, camera or embedding)"
            )

    def for_inference(self) -> ObservationEncoder:
        """Image trunks in channels-last layout: at batch 1 on CPU this keeps the convolutions on
        oneDNN (PyTorch sends small NCHW batch-1 convolutions to a ~2x slower path)."""
        for enc in self.cameras.values():
            enc.trunk.to(memory_format=torch.channels_last)
        return self

    @property
    def keys(self) -> list[str]:
        return [*self.state_keys, *self.cameras, *self.embeddings]

    def forward(self, obs: Mapping[str, torch.Tensor]) -> torch.Tensor:
        feats = []
        if self.state is not None:
            feats.append(self.state(torch.cat([obs[k] for k in self.state_keys], -1)))
        for name, enc in self.cameras.items():
            img = obs[name]
            feats.append(enc(img.flatten(0, 1)).unflatten(0, img.shape[:2]))
        for name, enc in self.embeddings.items():
            feats.append(enc(obs[name]))
        return torch.cat(feats, -1) if len(feats) > 1 else feats[0]
