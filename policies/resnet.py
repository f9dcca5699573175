"""ResNet-18 with GroupNorm, and a spatial-softmax keypoint head (Diffusion Policy's image trunk).

Written out here (torchvision does not import beside this torch). GroupNorm instead of BatchNorm:
batch statistics fight the EMA of the weights, and we train from scratch.
"""

from __future__ import annotations

import torch.nn.functional as F
from torch import nn

from decomposer.nets import soft_argmax


def _gn(channels: int) -> nn.GroupNorm:
    return nn.GroupNorm(max(1, channels // 16), channels)


class BasicBlock(nn.Module):
    def __init__(self, c_in: int, c_out: int, stride: int):
        super().__init__()
        self.conv1 = nn.Conv2d(c_in, c_out, 3, stride, 1, bias=False)
        self.norm1 = _gn(c_out)
        self.conv2 = nn.Conv2d(c_out, c_out, 3, 1, 1, bias=False)
        self.norm2 = _gn(c_out)
        self.down = None
        if stride != 1 or c_in != c_out:
            self.down = nn.Sequential(nn.Conv2d(c_in, c_out, 1, stride, bias=False), _gn(c_out))

    def forward(self, x):
        y = F.relu(self.norm1(self.conv1(x)))
        y = self.norm2(self.conv2(y))
        return F.relu(y + (x if self.down is None else self.down(x)))


class ResNet18(nn.Module):
    """The ResNet-18 trunk (no pooling, no classifier): (N, 3, H, W) -> (N, 512, H/32, W/32)."""

    widths = (64, 128, 256, 512)

    def __init__(self):
        super().__init__()
        self.stem = nn.Sequential(
            nn.Conv2d(3, 64, 7, 2, 3, bias=False), _gn(64), nn.ReLU(), nn.MaxPool2d(3, 2, 1)
        )
        layers, c = [], 64
        for i, w in enumerate(self.widths):
            layers += [BasicBlock(c, w, 1 if i == 0 else 2), BasicBlock(w, w, 1)]
            c = w
        self.layers = nn.Sequential(*layers)
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
        for m in self.modules():  # zero-init the last norm of each block: blocks start as identity
            if isinstance(m, BasicBlock):
                nn.init.zeros_(m.norm2.weight)

    def forward(self, x):
        return self.layers(self.stem(x))


class SpatialSoftmax(nn.Module):
    """Per-channel softmax over the map -> expected (x, y) in [-1, 1]: keypoints, not a pool."""

    def __init__(self, channels: int, keypoints: int):
        super().__init__()
        self.proj = nn.Conv2d(channels, keypoints, 1)

    def forward(self, feat):
        return soft_argmax(self.proj(feat)).flatten(1)  # (N, 2k): x0, y0, x1, y1, ...
