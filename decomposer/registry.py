"""The backbone table: each embedding backbone's architecture, published file and license.

Why a module of its own: the table is plain data that every other backbone module reads
(the loader, the encoder's normalisation, the offline fitters), so it sits below them all and
holds no loading, embedding or fitting code. Pretrained weights are cached in
``$UVDIFF_CACHE/weights/<name>/<file>`` (default ``~/.cache/uvdiff/weights/...``).

=============  =========================  ====  ==============================  ====================
name           model                      dim   weights (publisher)             license
=============  =========================  ====  ==============================  ====================
resnet18       ResNet-18 ImageNet, pooled 512   torchvision IMAGENET1K_V1       BSD-3 (torchvision)
resnet50       ResNet-50 ImageNet, pooled 2048  torchvision IMAGENET1K_V2       BSD-3 (torchvision)
dinov2_vits14  ViT-S/14, CLS token        384   Meta, dl.fbaipublicfiles.com    Apache-2.0
clip_rn50      CLIP RN50 image tower      1024  OpenAI                          MIT
r3m            R3M ResNet-50 trunk        2048  Meta (Google Drive)             MIT
vip            VIP ResNet-50 + fc         1024  Meta (S3)                       CC BY-NC 4.0 (NC)
liv            LIV (CLIP RN50 tower)      1024  Hugging Face jasonyma/LIV       MIT
pixels         frames 32x32 + PCA         <=32  fitted on the demo folder       (your data)
state          standardised low-dim state S     fitted on the demo folder       (your data)
vip_local      small conv net, VIP loss   32    trained on the folder's videos  (your data)
bc_local       conv net + keypoints, BC   64    trained on the folder's demos   (your data)
=============  =========================  ====  ==============================  ====================

VIP is non-commercial (NC). VC-1 (Meta's eai-vc ViT, used by UVD) is not in the table: like
VIP it is CC BY-NC 4.0 (non-commercial). ImageNet-trained weights also carry ImageNet's terms
of use.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from torch import nn

from . import nets
from .errors import DecomposerError

IMAGENET = ((0.485, 0.456, 0.406), (0.229, 0.224, 0.225))
CLIP_NORM = ((0.48145466, 0.4578275, 0.40821073), (0.26862954, 0.26130258, 0.27577711))
UNIT = ((0.0, 0.0, 0.0), (1.0, 1.0, 1.0))
CACHE_ENV, OFFLINE_ENV = "UVDIFF_CACHE", "UVDIFF_OFFLINE"


@dataclass(frozen=True)
class Layout:
    """Where a net's parameters sit in its published file: under ``container`` (a top-level
    key, e.g. "vip"), with ``prefix`` on every key; keys under the prefix that start with one
    of ``drop`` (e.g. a classifier) are not used. Keys outside the prefix are ignored."""

    container: str | None = None
    prefix: str = ""
    drop: tuple[str, ...] = ()


@dataclass(frozen=True)
class BackboneSpec:
    name: str
    dim: int
    license: str
    build: Callable[[], nn.Module] | None = None  # pretrained: the architecture
    layout: Layout = Layout()
    url: str | None = None
    filename: str | None = None
    sha256: str | None = None  # full digest, or the prefix the publisher puts in the file name
    size: int = 224  # square input side (resize keeping aspect ratio, then central crop)
    norm: tuple = IMAGENET
    commercial: bool = True
    offline: bool = False  # fitted on the demo folder (pixels, state, vip_local, bc_local)
    inputs: str = "frames"  # "frames" or "state"
    fits_actions: bool = False  # offline and fitted on the demos' actions too (bc_local)
    notes: str = ""
    extra: dict[str, tuple[int, ...]] = field(default_factory=dict)  # unused keys in the file

    @property
    def cache_path(self) -> Path | None:
        return None if self.filename is None else weights_dir() / self.name / self.filename


def weights_dir() -> Path:
    root = os.environ.get(CACHE_ENV)
    return (Path(root) if root else Path.home() / ".cache" / "uvdiff") / "weights"


BACKBONES: dict[str, BackboneSpec] = {
    s.name: s
    for s in [
        BackboneSpec(
            "resnet18",
            512,
            "BSD-3-Clause (torchvision); ImageNet terms of use",
            lambda: nets.ResNet("resnet18"),
            Layout(drop=("fc.",)),
            "https://download.pytorch.org/models/resnet18-f37072fd.pth",
            "resnet18-f37072fd.pth",
            "f37072fd",
            notes="torchvision IMAGENET1K_V1; pooled 512-d features, not the logits",
            extra={"fc.weight": (1000, 512), "fc.bias": (1000,)},
        ),
        BackboneSpec(
            "resnet50",
            2048,
            "BSD-3-Clause (torchvision); ImageNet terms of use",
            lambda: nets.ResNet("resnet50"),
            Layout(drop=("fc.",)),
            "https://download.pytorch.org/models/resnet50-11ad3fa6.pth",
            "resnet50-11ad3fa6.pth",
            "11ad3fa6",
            notes="torchvision IMAGENET1K_V2 (UVD's 'resnet'); pooled 2048-d features",
            extra={"fc.weight": (1000, 2048), "fc.bias": (1000,)},
        ),
        BackboneSpec(
            "dinov2_vits14",
            384,
            "Apache-2.0",
            lambda: nets.ViT(),
            Layout(),
            "https://dl.fbaipublicfiles.com/dinov2/dinov2_vits14/dinov2_vits14_pretrain.pth",
            "dinov2_vits14_pretrain.pth",
            notes="CLS token after the final norm; 224 px input (16 x 16 patches)",
        ),
        BackboneSpec(
            "clip_rn50",
            1024,
            "MIT",
            lambda: nets.ClipResNet(),
            Layout(prefix="visual."),
            "https://openaipublic.azureedge.net/clip/models/"
            "afeb0e10f9e5a86da6080e35cf09123aca3b358a0c3e3b6c78a7b63bc04b6762/RN50.pt",
            "RN50.pt",
            "afeb0e10f9e5a86da6080e35cf09123aca3b358a0c3e3b6c78a7b63bc04b6762",
            norm=CLIP_NORM,
            notes="OpenAI's file is a TorchScript archive (fp16); a plain state dict works too",
        ),
        BackboneSpec(
            "r3m",
            2048,
            "MIT",
            lambda: nets.ResNet("resnet50"),
            Layout("r3m", "module.convnet.", drop=("fc.",)),
            "https://drive.google.com/uc?id=1Xu0ssuG0N1zjZS54wmWzJ7-nb0-7XzbA",
            "model.pt",
            notes="R3M r3m_50 (Nair et al. 2022); the ResNet-50 trunk, fc is the identity",
        ),
        BackboneSpec(
            "vip",
            1024,
            "CC BY-NC 4.0 (non-commercial)",
            lambda: nets.ResNet("resnet50", out_dim=1024),
            Layout("vip", "module.convnet."),
            "https://pytorch.s3.amazonaws.com/models/rl/vip/model.pt",
            "model.pt",
            commercial=False,
            notes="VIP (Ma et al. 2023), UVD's default: ResNet-50 with a 2048 -> 1024 fc",
        ),
        BackboneSpec(
            "liv",
            1024,
            "MIT",
            lambda: nets.ClipResNet(),
            Layout("liv", "module.model.visual."),
            "https://huggingface.co/jasonyma/LIV/resolve/main/model.pt",
            "model.pt",
            norm=CLIP_NORM,
            notes="LIV (Ma et al. 2023): a CLIP RN50 fine-tuned; the image tower only",
        ),
        BackboneSpec(
            "pixels",
            32,
            "none (fitted on your folder)",
            size=32,
            norm=UNIT,
            offline=True,
            notes="frames at 32 x 32, projected on their top principal components",
        ),
        BackboneSpec(
            "state",
            0,
            "none (fitted on your folder)",
            offline=True,
            inputs="state",
            notes="the low-dim state keys of dataset.json, each dim standardised",
        ),
        BackboneSpec(
            "vip_local",
            32,
            "none (trained on your folder)",
            size=32,
            norm=((0.5, 0.5, 0.5), (0.5, 0.5, 0.5)),
            offline=True,
            notes="small conv net trained with the VIP objective on the folder's videos",
        ),
        BackboneSpec(
            "bc_local",
            64,
            "none (trained on your folder)",
            size=84,
            norm=((0.5, 0.5, 0.5), (0.5, 0.5, 0.5)),
            offline=True,
            fits_actions=True,
            notes="conv net with spatial keypoints, trained to predict the demos' actions from "
            "one camera and the arm's state, then frozen",
        ),
    ]
}


def get_spec(name: str) -> BackboneSpec:
    try:
        return BACKBONES[name]
    except (KeyError, TypeError):
        raise DecomposerError(f"unknown backbone {name!r}; valid: {', '.join(BACKBONES)}") from None
