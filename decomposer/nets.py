"""Image trunks for the embedding backbones, laid out so published weight files load as is.

Parameter names follow the files the backbones ship in (written from the published
architectures, not copied): torchvision's ResNet (``conv1``, ``bn1``, ``layer1.0.conv1``, ...,
``downsample.0``/``.1``, ``fc``), which R3M and VIP reuse under a ``module.convnet.`` prefix;
CLIP's modified ResNet (three-conv stem, average-pool anti-aliasing, attention pooling), which
LIV reuses; and DINOv2's ViT (``patch_embed.proj``, ``blocks.N.attn.qkv``, ``ls1.gamma``, ...).
Every ``forward`` returns pooled features (N, D), never classifier logits.

``policies.resnet`` holds a GroupNorm ResNet-18 trained from scratch inside the policy; it
cannot load these files (other norm layers and names), and the import direction
(decomposer <- policies) keeps the one here on this side.
"""

from __future__ import annotations

import math
from collections import OrderedDict

import torch
import torch.nn.functional as F
from torch import nn


def _bn(c: int) -> nn.BatchNorm2d:
    return nn.BatchNorm2d(c)


class BasicBlock(nn.Module):
    """Two 3x3 convolutions (ResNet-18/34)."""

    expansion = 1

    def __init__(self, c_in: int, planes: int, stride: int = 1, antialias: bool = False):
        super().__init__()
        self.conv1 = nn.Conv2d(c_in, planes, 3, stride, 1, bias=False)
        self.bn1 = _bn(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, 1, 1, bias=False)
        self.bn2 = _bn(planes)
        self.downsample = _shortcut(c_in, planes, stride, antialias)

    def forward(self, x):
        y = F.relu(self.bn1(self.conv1(x)))
        y = self.bn2(self.conv2(y))
        return F.relu(y + (x if self.downsample is None else self.downsample(x)))


class Bottleneck(nn.Module):
    """1x1 -> 3x3 -> 1x1 (ResNet-50). The stride sits on the 3x3 convolution (torchvision's
    "v1.5"), or with ``antialias`` (CLIP) in a 2x2 average pool before the last 1x1."""

    expansion = 4

    def __init__(self, c_in: int, planes: int, stride: int = 1, antialias: bool = False):
        super().__init__()
        out = planes * self.expansion
        self.conv1 = nn.Conv2d(c_in, planes, 1, bias=False)
        self.bn1 = _bn(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, 1 if antialias else stride, 1, bias=False)
        self.bn2 = _bn(planes)
        self.pool = nn.AvgPool2d(stride) if antialias and stride > 1 else nn.Identity()
        self.conv3 = nn.Conv2d(planes, out, 1, bias=False)
        self.bn3 = _bn(out)
        self.downsample = _shortcut(c_in, out, stride, antialias)

    def forward(self, x):
        y = F.relu(self.bn1(self.conv1(x)))
        y = self.pool(F.relu(self.bn2(self.conv2(y))))
        y = self.bn3(self.conv3(y))
        return F.relu(y + (x if self.downsample is None else self.downsample(x)))


def _shortcut(c_in: int, c_out: int, stride: int, antialias: bool) -> nn.Module | None:
    if stride == 1 and c_in == c_out:
        return None
    if antialias:  # CLIP: pool first, then a stride-1 projection; the pool is named "-1"
        parts = [("-1", nn.AvgPool2d(stride) if stride > 1 else nn.Identity())]
        parts += [("0", nn.Conv2d(c_in, c_out, 1, bias=False)), ("1", _bn(c_out))]
        return nn.Sequential(OrderedDict(parts))
    return nn.Sequential(nn.Conv2d(c_in, c_out, 1, stride, bias=False), _bn(c_out))


ARCHS = {"resnet18": (BasicBlock, (2, 2, 2, 2)), "resnet50": (Bottleneck, (3, 4, 6, 3))}


class ResNet(nn.Module):
    """torchvision's ResNet layout, ending in global average pooling.

    ``out_dim`` None: the pooled trunk features (512 for ResNet-18, 2048 for ResNet-50; what
    R3M uses). An int adds ``fc`` = Linear(features, out_dim) (VIP's 1024-d head).
    """

    def __init__(self, arch: str = "resnet50", out_dim: int | None = None):
        super().__init__()
        block, depths = ARCHS[arch]
        self.conv1 = nn.Conv2d(3, 64, 7, 2, 3, bias=False)
        self.bn1 = _bn(64)
        c = 64
        for i, (n, planes) in enumerate(zip(depths, (64, 128, 256, 512), strict=True)):
            blocks = []
            for j in range(n):
                blocks.append(block(c, planes, 2 if i > 0 and j == 0 else 1))
                c = planes * block.expansion
            setattr(self, f"layer{i + 1}", nn.Sequential(*blocks))
        self.features = c
        self.fc = None if out_dim is None else nn.Linear(c, out_dim)
        self.dim = c if out_dim is None else out_dim

    def forward(self, x):
        x = F.max_pool2d(F.relu(self.bn1(self.conv1(x))), 3, 2, 1)
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        x = x.mean(dim=(2, 3))
        return x if self.fc is None else self.fc(x)


class AttentionPool(nn.Module):
    """CLIP's pooling: the mean token, plus a learned position embedding, attends over the map
    (multi-head, query from the mean token only), then a projection to ``out_dim``."""

    def __init__(self, grid: int, width: int, heads: int, out_dim: int):
        super().__init__()
        self.positional_embedding = nn.Parameter(torch.randn(grid * grid + 1, width) / width**0.5)
        self.k_proj, self.q_proj = nn.Linear(width, width), nn.Linear(width, width)
        self.v_proj, self.c_proj = nn.Linear(width, width), nn.Linear(width, out_dim)
        self.heads = heads

    def forward(self, x):
        n, c, h, w = x.shape
        x = x.flatten(2).transpose(1, 2)  # (N, HW, C)
        x = torch.cat([x.mean(1, keepdim=True), x], 1)
        pos = self.positional_embedding
        if pos.shape[0] != h * w + 1:  # another input size: resample the grid part
            pos = torch.cat([pos[:1], _resize_grid(pos[1:], h, w)], 0)
        x = x + pos.to(x.dtype)
        split = lambda t: t.view(n, -1, self.heads, c // self.heads).transpose(1, 2)  # noqa: E731
        q, k, v = split(self.q_proj(x[:, :1])), split(self.k_proj(x)), split(self.v_proj(x))
        out = F.scaled_dot_product_attention(q, k, v).transpose(1, 2).reshape(n, c)
        return self.c_proj(out)


def _resize_grid(tokens: torch.Tensor, h: int, w: int, offset: float = 0.0) -> torch.Tensor:
    """(g*g, C) position embeddings of a square grid -> (h*w, C), bicubic.

    ``offset`` > 0 resamples by the scale factors ``((h + offset) / g, (w + offset) / g)``
    instead of to the exact size, as DINOv2 does (offset 0.1): the sample positions follow
    from the scale factor, so the two give different embeddings.
    """
    g = math.isqrt(tokens.shape[0])
    grid = tokens.reshape(1, g, g, -1).permute(0, 3, 1, 2).float()
    if offset:
        scale = ((h + offset) / g, (w + offset) / g)
        grid = F.interpolate(grid, scale_factor=scale, mode="bicubic", align_corners=False)
    else:
        grid = F.interpolate(grid, size=(h, w), mode="bicubic", align_corners=False)
    assert grid.shape[-2:] == (h, w), (grid.shape, h, w)
    return grid.permute(0, 2, 3, 1).reshape(h * w, -1).to(tokens.dtype)


class ClipResNet(nn.Module):
    """CLIP's image tower "ModifiedResNet" (RN50: depths 3-4-6-3, width 64, 1024-d output).

    Stem of three 3x3 convolutions and an average pool; bottlenecks with average-pool
    anti-aliasing; attention pooling instead of the average pool and classifier.
    """

    def __init__(self, depths=(3, 4, 6, 3), width: int = 64, out_dim: int = 1024, size: int = 224):
        super().__init__()
        half = width // 2
        self.conv1, self.bn1 = nn.Conv2d(3, half, 3, 2, 1, bias=False), _bn(half)
        self.conv2, self.bn2 = nn.Conv2d(half, half, 3, 1, 1, bias=False), _bn(half)
        self.conv3, self.bn3 = nn.Conv2d(half, width, 3, 1, 1, bias=False), _bn(width)
        c = width
        for i, n in enumerate(depths):
            planes = width * 2**i
            blocks = []
            for j in range(n):
                blocks.append(Bottleneck(c, planes, 2 if i > 0 and j == 0 else 1, antialias=True))
                c = planes * 4
            setattr(self, f"layer{i + 1}", nn.Sequential(*blocks))
        self.attnpool = AttentionPool(size // 32, c, width * 32 // 64, out_dim)
        self.dim = out_dim

    def forward(self, x):
        x = F.relu(self.bn1(self.conv1(x)))
        x = F.relu(self.bn2(self.conv2(x)))
        x = F.avg_pool2d(F.relu(self.bn3(self.conv3(x))), 2)
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        return self.attnpool(x)


class LayerScale(nn.Module):
    def __init__(self, dim: int):
        super().__init__()
        self.gamma = nn.Parameter(torch.full((dim,), 1e-5))

    def forward(self, x):
        return x * self.gamma


class Attention(nn.Module):
    def __init__(self, dim: int, heads: int):
        super().__init__()
        self.qkv, self.proj, self.heads = nn.Linear(dim, 3 * dim), nn.Linear(dim, dim), heads

    def forward(self, x):
        n, t, c = x.shape
        q, k, v = self.qkv(x).view(n, t, 3, self.heads, c // self.heads).permute(2, 0, 3, 1, 4)
        return self.proj(F.scaled_dot_product_attention(q, k, v).transpose(1, 2).reshape(n, t, c))


class Mlp(nn.Module):
    def __init__(self, dim: int, hidden: int):
        super().__init__()
        self.fc1, self.fc2 = nn.Linear(dim, hidden), nn.Linear(hidden, dim)

    def forward(self, x):
        return self.fc2(F.gelu(self.fc1(x)))


class Block(nn.Module):
    """Pre-norm transformer block with layer scale (DINOv2)."""

    def __init__(self, dim: int, heads: int, mlp_ratio: int = 4):
        super().__init__()
        self.norm1, self.attn = nn.LayerNorm(dim, eps=1e-6), Attention(dim, heads)
        self.ls1 = LayerScale(dim)
        self.norm2, self.mlp = nn.LayerNorm(dim, eps=1e-6), Mlp(dim, dim * mlp_ratio)
        self.ls2 = LayerScale(dim)

    def forward(self, x):
        x = x + self.ls1(self.attn(self.norm1(x)))
        return x + self.ls2(self.mlp(self.norm2(x)))


class PatchEmbed(nn.Module):
    def __init__(self, patch: int, dim: int):
        super().__init__()
        self.proj = nn.Conv2d(3, dim, patch, patch)

    def forward(self, x):
        return self.proj(x).flatten(2).transpose(1, 2)


class ViT(nn.Module):
    """DINOv2's ViT; ``forward`` gives the final-norm CLS token.

    ViT-S/14: width 384, 12 blocks, 6 heads; position embeddings for 518 px (37 x 37 patches),
    resampled bicubically for other input sizes the way DINOv2's ``interpolate_pos_encoding``
    does (scale factor ``(n + 0.1) / 37``), so the embeddings are the published model's.
    """

    INTERPOLATE_OFFSET = 0.1

    def __init__(self, patch=14, dim=384, depth=12, heads=6, pretrain_size=518):
        super().__init__()
        grid = pretrain_size // patch
        self.patch = patch
        self.patch_embed = PatchEmbed(patch, dim)
        self.cls_token = nn.Parameter(torch.zeros(1, 1, dim))
        self.pos_embed = nn.Parameter(torch.randn(1, grid * grid + 1, dim) * 0.02)
        self.mask_token = nn.Parameter(torch.zeros(1, dim))  # in the file; unused for inference
        self.blocks = nn.ModuleList(Block(dim, heads) for _ in range(depth))
        self.norm = nn.LayerNorm(dim, eps=1e-6)
        self.dim = dim

    def position_embeddings(self, height: int, width: int) -> torch.Tensor:
        """(1 + h*w, C) for an image of ``height`` x ``width`` pixels: the class token's and
        its h x w patch grid's. Kept as stored only for a square image of the stored grid
        (DINOv2's rule: a non-square image of as many patches is still resampled)."""
        h, w = height // self.patch, width // self.patch
        pos = self.pos_embed[0]
        if pos.shape[0] == h * w + 1 and height == width:
            return pos
        grid = _resize_grid(pos[1:], h, w, self.INTERPOLATE_OFFSET)
        return torch.cat([pos[:1], grid], 0)

    def forward(self, x):
        pos = self.position_embeddings(x.shape[2], x.shape[3])
        x = self.patch_embed(x)
        x = torch.cat([self.cls_token.expand(len(x), -1, -1), x], 1) + pos.to(x.dtype)
        for blk in self.blocks:
            x = blk(x)
        return self.norm(x)[:, 0]


class SmallConv(nn.Module):
    """The ``vip_local`` encoder: four stride-2 convolutions, global average pool, linear.

    Small enough to train on one folder's videos in seconds on a CPU (32 x 32 input by default).
    """

    def __init__(self, out_dim: int = 32, width: int = 32):
        super().__init__()
        chans = [3, width, 2 * width, 4 * width, 4 * width]
        self.convs = nn.ModuleList(
            nn.Conv2d(a, b, 3, 2, 1) for a, b in zip(chans, chans[1:], strict=False)
        )
        self.head = nn.Linear(chans[-1], out_dim)
        self.dim = out_dim

    def forward(self, x):
        for conv in self.convs:
            x = F.elu(conv(x))
        return self.head(x.mean(dim=(2, 3)))


class KeypointConv(nn.Module):
    """The ``bc_local`` encoder: three 3x3 convolutions (two of stride 2), a 1x1 convolution to
    ``keypoints`` heat maps, and their spatial soft-argmax: (N, 2 * keypoints) image
    coordinates in [-1, 1].

    Why keypoints: grasping needs where things are to about a pixel, which pooled features
    blur and a soft-argmax keeps (Levine et al. 2016; Diffusion Policy's encoder ends the same
    way). Sized for a laptop CPU: about 15 MFLOPs per 84 x 84 frame at width 32.
    """

    def __init__(self, keypoints: int = 32, width: int = 32):
        super().__init__()
        self.convs = nn.ModuleList(
            [
                nn.Conv2d(3, width, 3, 2, 1),
                nn.Conv2d(width, width, 3, 2, 1),
                nn.Conv2d(width, width, 3, 1, 1),
            ]
        )
        self.heatmaps = nn.Conv2d(width, keypoints, 1)
        self.dim = 2 * keypoints

    def forward(self, x):
        for conv in self.convs:
            x = F.relu(conv(x))
        return soft_argmax(self.heatmaps(x)).transpose(1, 2).flatten(1)  # all x, then all y


def soft_argmax(maps: torch.Tensor) -> torch.Tensor:
    """(N, K, H, W) heat maps -> (N, K, 2): each map's softmax-weighted (x, y) in [-1, 1]."""
    n, k, h, w = maps.shape
    p = maps.flatten(2).softmax(-1).view(n, k, h, w)
    ys = torch.linspace(-1.0, 1.0, h, device=maps.device, dtype=p.dtype)
    xs = torch.linspace(-1.0, 1.0, w, device=maps.device, dtype=p.dtype)
    return torch.stack([(p.sum(2) * xs).sum(-1), (p.sum(3) * ys).sum(-1)], -1)
