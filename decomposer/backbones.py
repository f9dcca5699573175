"""Embedding backbones: one table from name to spec, one loader, per-episode embedding caches.

``load_backbone(name, weights=None, device=None)`` returns an ``Encoder`` whose
``embed(frames uint8 (T, H, W, 3)) -> float32 (T, D)`` works in bounded-memory chunks (frames
resized to the spec's square input by a central crop, so the aspect ratio is kept; fp16 on
CUDA). Weights come from ``weights=PATH``, else from the cache
(``$UVDIFF_CACHE/weights/<name>/<file>``, default ``~/.cache/uvdiff/weights/...``), else are
downloaded from the published URL; offline (or with ``UVDIFF_OFFLINE=1``) the error says which
URL, which cache path and how to pass a file.

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
=============  =========================  ====  ==============================  ====================

VIP is non-commercial (NC). VC-1 (Meta's eai-vc ViT, used by UVD) is not in the table: like
VIP it is CC BY-NC 4.0 (non-commercial). ImageNet-trained weights also carry ImageNet's terms
of use.

The offline backbones (``pixels``, ``state``, ``vip_local``) need no download: ``fit_backbone``
fits them on a demo folder and saves a safetensors file in ``DEMO_DIR/cache/backbones/``,
named by a fingerprint of the inputs and parameters, so a second run reuses it. Every encoder
carries ``weights_hash`` (sha256 of its file, 16 hex digits), which keys the embedding cache
``DEMO_DIR/cache/embeddings/<name>-<hash>/<camera>/<episode>.npy``.
"""

from __future__ import annotations

import ctypes
import hashlib
import inspect
import json
import os
import urllib.error
import urllib.request
import warnings
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from demos.atomic import atomic_path, atomic_write_json
from demos.cache import fingerprint
from demos.episode import LOWDIM
from demos.errors import DemoFolderError
from demos.folder import DemoFolder
from demos.video import resize_center_crop

from . import nets
from .errors import DecomposerError

IMAGENET = ((0.485, 0.456, 0.406), (0.229, 0.224, 0.225))
CLIP_NORM = ((0.48145466, 0.4578275, 0.40821073), (0.26862954, 0.26130258, 0.27577711))
UNIT = ((0.0, 0.0, 0.0), (1.0, 1.0, 1.0))
CACHE_ENV, OFFLINE_ENV = "UVDIFF_CACHE", "UVDIFF_OFFLINE"
DEFAULT_CHUNK = 32


# ---------------------------------------------------------------------------- the table


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
    offline: bool = False  # fitted on the demo folder (pixels, state, vip_local)
    inputs: str = "frames"  # "frames" or "state"
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
    ]
}


def get_spec(name: str) -> BackboneSpec:
    try:
        return BACKBONES[name]
    except (KeyError, TypeError):
        raise DecomposerError(f"unknown backbone {name!r}; valid: {', '.join(BACKBONES)}") from None


# ---------------------------------------------------------------------------- the encoder


def default_device(device: str | torch.device | None = None) -> torch.device:
    if device is None:
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)


class Encoder:
    """A frozen backbone: ``embed`` maps frames (or, for ``state``, low-dim rows) to (T, D).

    Frames may be an array (T, H, W, 3) or any iterable of (H, W, 3) uint8 frames (e.g.
    ``demos.iter_frames``): they are resized, normalised and encoded ``chunk`` at a time, so
    memory does not grow with the video's length.
    """

    def __init__(
        self,
        name: str,
        net: nn.Module,
        dim: int,
        weights_hash: str,
        *,
        size: int = 224,
        norm: tuple = IMAGENET,
        device: str | torch.device | None = None,
        inputs: str = "frames",
        chunk: int = DEFAULT_CHUNK,
        meta: dict[str, Any] | None = None,
        half: bool = True,
    ):
        self.name, self.dim, self.weights_hash = name, int(dim), weights_hash
        self.size, self.inputs, self.chunk = int(size), inputs, int(chunk)
        self.meta = dict(meta or {})
        self.device = default_device(device)
        self.dtype = torch.float16 if half and self.device.type == "cuda" else torch.float32
        self.net = net.eval().requires_grad_(False).to(self.device, self.dtype)
        self._mean = torch.tensor(norm[0], dtype=torch.float32).view(1, 3, 1, 1)
        self._std = torch.tensor(norm[1], dtype=torch.float32).view(1, 3, 1, 1)

    def __repr__(self) -> str:
        return f"Encoder({self.name}, dim={self.dim}, weights={self.weights_hash}, {self.device})"

    def preprocess(self, frames: list[np.ndarray] | np.ndarray) -> torch.Tensor:
        """uint8 frames -> normalised float (N, 3, size, size) on CPU."""
        s = (self.size, self.size)
        x = np.stack([resize_center_crop(np.asarray(f), s) for f in frames])
        x = torch.from_numpy(x).permute(0, 3, 1, 2).float().div_(255.0)
        return (x - self._mean) / self._std

    def embed(self, frames: np.ndarray | Iterable[np.ndarray]) -> np.ndarray:
        """float32 (T, D) embeddings of uint8 frames (T, H, W, 3) (or of state rows (T, S))."""
        if self.inputs == "state":
            return self._embed_state(frames)
        out = []
        for c in _chunks(frames, self.chunk):
            out.append(self._forward(self.preprocess(c)))
            release_freed_memory()
        if not out:
            raise DecomposerError(f"{self.name}: no frames to embed")
        return np.concatenate(out)

    @torch.inference_mode()
    def _forward(self, x: torch.Tensor) -> np.ndarray:
        y = self.net(x.to(self.device, self.dtype))
        # a copy: a numpy view would keep the whole chunk-sized tensor storage alive, and the
        # memory of a long video would grow by a chunk of activations per chunk
        return y.float().cpu().numpy().reshape(len(x), -1).copy()

    def _embed_state(self, rows) -> np.ndarray:
        x = np.asarray(rows, dtype=np.float32)
        if x.ndim != 2 or x.shape[1] != self.meta.get("in_dim", x.shape[1]) or not len(x):
            raise DecomposerError(
                f"state backbone expects (T, {self.meta.get('in_dim')}) rows, got {x.shape}"
            )
        return self._forward(torch.from_numpy(x))


def release_freed_memory() -> None:
    """Hand memory freed by the last chunk back to the OS (glibc only; a no-op elsewhere).

    Why: a ResNet's per-chunk activations are freed after each chunk, but glibc keeps the freed
    pages in its heap and the next chunk's tensors, of other sizes, do not always fit them, so
    the resident size of a long video grew by ~170 MB over 2 000 frames without any reference
    being kept. ``malloc_trim`` returns those pages: memory stays set by the chunk size.
    """
    if _LIBC is not None:
        _LIBC.malloc_trim(0)


def _load_libc():
    try:
        libc = ctypes.CDLL("libc.so.6")
        return libc if hasattr(libc, "malloc_trim") else None
    except OSError:
        return None


_LIBC = _load_libc()


def _chunks(frames, n: int) -> Iterator[list[np.ndarray]]:
    if isinstance(frames, np.ndarray):
        if frames.ndim != 4 or frames.shape[-1] != 3 or frames.dtype != np.uint8:
            raise DecomposerError(
                f"frames must be uint8 (T, H, W, 3), got {frames.dtype} {frames.shape}"
            )
        for i in range(0, len(frames), n):
            yield list(frames[i : i + n])
        return
    buf: list[np.ndarray] = []
    for f in frames:
        f = np.asarray(f)
        if f.ndim != 3 or f.shape[-1] != 3 or f.dtype != np.uint8:
            raise DecomposerError(f"frames must be uint8 (H, W, 3), got {f.dtype} {f.shape}")
        buf.append(f)
        if len(buf) == n:
            yield buf
            buf = []
    if buf:
        yield buf


# ---------------------------------------------------------------------------- loading


_HASHES: dict[tuple[str, int, int], str] = {}


def file_hash(path: str | os.PathLike, n: int = 16) -> str:
    """sha256 of a file's bytes (first ``n`` hex digits), remembered per (path, size, mtime)."""
    path = Path(path)
    st = path.stat()
    key = (str(path.resolve()), st.st_size, st.st_mtime_ns)
    if key not in _HASHES:
        h = hashlib.sha256()
        with open(path, "rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                h.update(block)
        _HASHES[key] = h.hexdigest()
    return _HASHES[key][:n]


def load_backbone(
    name: str,
    weights: str | os.PathLike | None = None,
    device: str | torch.device | None = None,
    *,
    download: bool | None = None,
    chunk: int = DEFAULT_CHUNK,
) -> Encoder:
    """The encoder registered as ``name`` with weights from ``weights``, the cache, or the web.

    ``download`` None: download unless ``$UVDIFF_OFFLINE`` is set. Offline backbones need
    ``weights`` (see ``fit_backbone``). Raises ``DecomposerError`` naming the file at fault.
    """
    spec = get_spec(name)
    if weights is not None:
        path = Path(weights)
        if not path.is_file():
            raise DecomposerError(f"backbone {name}: weights file {path} does not exist")
    elif spec.offline:
        raise DecomposerError(
            f"backbone {name} is fitted on a demo folder: pass weights=PATH from "
            f"decomposer.backbones.fit_backbone({name!r}, folder), or run "
            f"uvdiff-decompose data=DIR backbone={name}, which fits it and caches it in "
            "DIR/cache/backbones/"
        )
    else:
        path = _cached_or_download(spec, download)
    if spec.offline:
        net, meta = _load_offline(spec, path)
    else:
        net, meta = _load_pretrained(spec, path), {}
    return Encoder(
        name,
        net,
        meta.get("dim", spec.dim),
        file_hash(path),
        size=int(meta.get("size", spec.size)),
        norm=spec.norm,
        device=device,
        inputs=spec.inputs,
        chunk=chunk,
        meta={**meta, "weights": str(path)},
        half=not spec.offline,
    )


def _cached_or_download(spec: BackboneSpec, download: bool | None) -> Path:
    path = spec.cache_path
    assert path is not None
    if path.is_file():
        return path
    if download is None:
        download = not os.environ.get(OFFLINE_ENV)
    why = f"${OFFLINE_ENV} is set" if not download else ""
    if download:
        try:
            _download(spec.url, path, spec.sha256)
            return path
        except (OSError, urllib.error.URLError, DecomposerError) as e:
            why = f"download failed: {getattr(e, 'reason', None) or e}"
    raise DecomposerError(
        f"backbone {spec.name}: no weights file ({why}). Download {spec.url} and save it as "
        f"{path} (the cache; ${CACHE_ENV} moves it), or pass the file: "
        f"load_backbone({spec.name!r}, weights=PATH) / uvdiff-decompose ... weights=PATH"
    )


def _download(url: str, dest: Path, sha256: str | None) -> None:
    h = hashlib.sha256()
    with urllib.request.urlopen(url, timeout=30) as r:
        if "text/html" in r.headers.get("Content-Type", ""):
            raise DecomposerError(f"{url} answered with a web page, not a weights file")
        with atomic_path(dest) as tmp, open(tmp, "wb") as f:
            for block in iter(lambda: r.read(1 << 20), b""):
                h.update(block)
                f.write(block)
            if sha256 and not h.hexdigest().startswith(sha256):
                raise DecomposerError(f"{url}: sha256 {h.hexdigest()} does not start with {sha256}")


def read_checkpoint(path: Path) -> dict[str, Any]:
    """A checkpoint as a dict: torch pickles (weights only, no code), TorchScript archives
    (OpenAI CLIP) or safetensors."""
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file

        try:
            return load_file(path)
        except Exception as e:  # safetensors raises its own SafetensorError
            raise DecomposerError(f"{path}: not a readable safetensors file ({e})") from None
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as first:
        try:
            with warnings.catch_warnings():  # TorchScript is deprecated; CLIP still ships it
                warnings.simplefilter("ignore", DeprecationWarning)
                obj = torch.jit.load(str(path), map_location="cpu").state_dict()
        except Exception:
            raise DecomposerError(
                f"{path}: not a readable weights file (torch.load: {str(first)[:200]})"
            ) from None
    if not isinstance(obj, dict):
        raise DecomposerError(f"{path}: holds a {type(obj).__name__}, expected a state dict")
    return obj


def extract_state_dict(ckpt: dict[str, Any], layout: Layout) -> dict[str, torch.Tensor]:
    """The net's parameters out of a published checkpoint (see ``Layout``)."""
    sd = ckpt.get(layout.container, ckpt) if layout.container else ckpt
    if not isinstance(sd, dict):
        sd = ckpt
    out = {}
    for k, v in sd.items():
        if not isinstance(v, torch.Tensor) or not k.startswith(layout.prefix):
            continue
        k = k[len(layout.prefix) :]
        if not k.startswith(layout.drop or ("\0",)):
            out[k] = v
    return out


def pack_state_dict(sd: dict[str, torch.Tensor], spec: BackboneSpec) -> dict[str, Any]:
    """The inverse of ``extract_state_dict``: a net's state dict in the published layout
    (with zero-filled unused tensors such as a classifier), e.g. for tests and benchmarks."""
    lay = spec.layout
    out: dict[str, Any] = {lay.prefix + k: v for k, v in sd.items()}
    out.update({lay.prefix + k: torch.zeros(shape) for k, shape in spec.extra.items()})
    return {lay.container: out} if lay.container else out


def load_into(net: nn.Module, sd: dict[str, torch.Tensor], where: str) -> None:
    """Strict load that names what does not fit: missing / unexpected keys, wrong shapes."""
    own = net.state_dict()
    missing = [k for k in own if k not in sd and not k.endswith("num_batches_tracked")]
    unexpected = [k for k in sd if k not in own]
    shapes = [
        f"{k} {tuple(sd[k].shape)} (expected {tuple(own[k].shape)})"
        for k in own
        if k in sd and sd[k].shape != own[k].shape
    ]
    problems = []
    for what, items in (("missing", missing), ("unexpected", unexpected), ("shape", shapes)):
        if items:
            more = f" (+{len(items) - 3} more)" if len(items) > 3 else ""
            problems.append(f"{what}: {', '.join(items[:3])}{more}")
    if problems:
        raise DecomposerError(f"{where}: wrong architecture; " + "; ".join(problems))
    net.load_state_dict({k: v.float() for k, v in sd.items()}, strict=False)


def _load_pretrained(spec: BackboneSpec, path: Path) -> nn.Module:
    assert spec.build is not None
    with torch.device("meta"):  # no random init: every tensor comes from the file
        net = spec.build()
    net = net.to_empty(device="cpu")
    sd = extract_state_dict(read_checkpoint(path), spec.layout)
    load_into(net, sd, f"{path} for backbone {spec.name}")
    return net


def random_weights(name: str, path: str | os.PathLike, seed: int = 0) -> Path:
    """A file of randomly initialised weights in ``name``'s published layout (benchmarks)."""
    spec = get_spec(name)
    if spec.offline:
        raise DecomposerError(f"{name} is fitted on a folder, use fit_backbone")
    torch.manual_seed(seed)
    path = Path(path)
    with atomic_path(path) as tmp:
        torch.save(pack_state_dict(spec.build().state_dict(), spec), tmp)
    return path


# ---------------------------------------------------------------------------- offline


class Affine(nn.Module):
    """(x.flatten - mean) @ proj.T, or (x - mean) / scale: PCA and standardisation."""

    def __init__(self, mean: torch.Tensor, proj: torch.Tensor | None, scale: torch.Tensor | None):
        super().__init__()
        self.register_buffer("mean", mean)
        self.register_buffer("proj", proj if proj is not None else torch.zeros(0))
        self.register_buffer("scale", scale if scale is not None else torch.zeros(0))

    def forward(self, x):
        x = x.flatten(1) - self.mean
        return x @ self.proj.T if self.proj.numel() else x / self.scale


def _load_offline(spec: BackboneSpec, path: Path) -> tuple[nn.Module, dict[str, Any]]:
    from safetensors import safe_open

    try:
        with safe_open(str(path), "pt") as f:
            meta = dict(f.metadata() or {})
            tensors = {k: f.get_tensor(k) for k in f.keys()}  # noqa: SIM118
    except Exception as e:
        raise DecomposerError(f"{path}: not a readable safetensors file ({e})") from None
    if meta.get("backbone") != spec.name:
        raise DecomposerError(
            f"{path}: metadata backbone={meta.get('backbone')!r}, expected {spec.name!r}"
        )
    info = json.loads(meta.get("info", "{}"))
    where = f"{path} for backbone {spec.name}"
    try:
        if spec.name == "pixels":
            net = Affine(tensors["mean"], tensors["components"], None)
            return net, {**info, "dim": len(tensors["components"])}
        if spec.name == "state":
            net = Affine(tensors["mean"], None, tensors["std"])
            return net, {**info, "dim": len(tensors["mean"]), "in_dim": len(tensors["mean"])}
    except KeyError as e:
        raise DecomposerError(f"{where}: tensor {e} is missing") from None
    net = nets.SmallConv(int(info.get("dim", spec.dim)), int(info.get("width", 32)))
    load_into(net, tensors, where)
    return net, {**info, "dim": net.dim}


def _save_offline(path: Path, name: str, tensors: dict[str, torch.Tensor], info: dict) -> Path:
    from safetensors.torch import save_file

    with atomic_path(path) as tmp:
        tensors = {k: v.detach().contiguous().float() for k, v in tensors.items()}
        save_file(tensors, str(tmp), metadata={"backbone": name, "info": json.dumps(info)})
    return path


def default_camera(folder: DemoFolder, camera: str | None = None) -> str:
    cams = list(folder.info.cameras)
    if camera is None:
        if not cams:
            raise DecomposerError("dataset.json: the folder has no cameras; use backbone=state")
        return cams[0]
    if camera not in cams:
        raise DecomposerError(f"dataset.json: no camera {camera!r} (cameras: {cams})")
    return camera


def _sample_frames(folder: DemoFolder, camera: str, size: int, max_frames: int) -> list[np.ndarray]:
    """Per episode, its frames at size x size (uint8), every k-th so all fit in max_frames."""
    lengths = [len(folder.read_lowdim(ep, check=False)["action"]) for ep in folder.episode_ids]
    step = max(1, int(np.ceil(sum(lengths) / max_frames)))
    out = []
    for ep in folder.episode_ids:
        frames = [
            resize_center_crop(f, (size, size))
            for i, f in enumerate(folder.iter_frames(ep, camera))
            if i % step == 0
        ]
        if frames:
            out.append(np.stack(frames))
    if not out:
        raise DecomposerError(f"{folder.root}: no episodes with frames of {camera!r}")
    return out


def fit_pixels(
    folder: DemoFolder, camera: str, out: Path, *, components: int = 32, max_frames: int = 5000
) -> Path:
    spec = BACKBONES["pixels"]
    videos = _sample_frames(folder, camera, spec.size, max_frames)
    x = np.concatenate(videos).reshape(-1, spec.size, spec.size, 3)
    x = torch.from_numpy(x).permute(0, 3, 1, 2).float().div_(255.0).flatten(1)
    mean = x.mean(0)
    k = max(1, min(components, len(x) - 1, x.shape[1]))
    torch.manual_seed(0)  # randomised SVD: O(N * pixels * k), not the full O(N * pixels^2)
    _, _, v = torch.svd_lowrank(x - mean, q=min(k + 8, *x.shape), niter=4)
    info = {"camera": camera, "components": k, "frames": len(x)}
    return _save_offline(out, "pixels", {"mean": mean, "components": v[:, :k].T}, info)


def state_rows(folder: DemoFolder, episode: str, keys: list[str] | None = None) -> np.ndarray:
    a = folder.read_lowdim(episode)
    keys = list(folder.info.state) if keys is None else keys
    missing = [k for k in keys if k not in a]
    if missing:
        raise DemoFolderError(f"state keys {missing} are missing", folder.rel(episode, LOWDIM))
    return np.concatenate([np.asarray(a[k], np.float32).reshape(len(a[k]), -1) for k in keys], 1)


def fit_state(folder: DemoFolder, camera: str | None, out: Path) -> Path:
    keys = list(folder.info.state)
    if not keys:
        raise DecomposerError("dataset.json: no state keys to embed; use an image backbone")
    x = np.concatenate([state_rows(folder, ep, keys) for ep in folder.episode_ids])
    mean, std = x.mean(0), x.std(0)
    std = np.where(std > 1e-6, std, 1.0)  # a constant dim stays 0 rather than blowing up
    info = {"keys": keys, "rows": len(x)}
    return _save_offline(
        out, "state", {"mean": torch.from_numpy(mean), "std": torch.from_numpy(std)}, info
    )


def vip_loss(net: nn.Module, o0, og, ot, ot1, gamma: float = 0.98) -> torch.Tensor:
    """The VIP objective (Ma et al. 2023) with value V(o; g) = -||phi(o) - phi(g)|| and
    reward -1 until the goal: keep starts near in value to their goal ((1-gamma) term) while
    every step (o_t -> o_t+1) must bring the distance to the goal down, weighted by a
    log-mean-exp so that the steps that break this most count most."""
    n = len(o0)
    e = net(torch.cat([o0, og, ot, ot1]))
    e0, eg, et, et1 = e[:n], e[n : 2 * n], e[2 * n : 3 * n], e[3 * n :]
    v0 = -torch.linalg.vector_norm(e0 - eg, dim=1)
    vt = -torch.linalg.vector_norm(et - eg, dim=1)
    vt1 = -torch.linalg.vector_norm(et1 - eg, dim=1)
    r = -1.0
    return (1 - gamma) * (-v0).mean() + torch.logsumexp(-(r + gamma * vt1 - vt), 0) - np.log(n)


def fit_vip_local(
    folder: DemoFolder,
    camera: str,
    out: Path,
    *,
    steps: int = 300,
    batch: int = 32,
    dim: int = 32,
    width: int = 16,
    size: int = 32,
    lr: float = 1e-3,
    seed: int = 0,
    max_frames: int = 20000,
    threads: int | None = 1,
) -> Path:
    """Train ``nets.SmallConv`` with ``vip_loss`` on the folder's videos (CPU: seconds).

    Each sample: an episode, a start s and goal g > s in it, and a step t -> t+1 in [s, g).
    ``threads``: torch CPU threads while training (1: a net this small runs fastest on one
    core, and a shared machine stays responsive); None leaves torch's setting.
    """
    videos = [v for v in _sample_frames(folder, camera, size, max_frames) if len(v) >= 2]
    if not videos:
        raise DecomposerError(f"{folder.root}: vip_local needs episodes of >= 2 frames")
    before = torch.get_num_threads()
    if threads:
        torch.set_num_threads(threads)
    try:
        net, losses = _train_vip(videos, steps, batch, dim, width, lr, seed)
    finally:
        torch.set_num_threads(before)
    info = {
        "camera": camera,
        "dim": dim,
        "width": width,
        "size": size,
        "steps": steps,
        "seed": seed,
        "loss_first": losses[0] if losses else None,
        "loss_last": float(np.mean(losses[-20:])) if losses else None,
    }
    return _save_offline(out, "vip_local", net.state_dict(), info)


def _train_vip(videos, steps, batch, dim, width, lr, seed) -> tuple[nn.Module, list[float]]:
    spec = BACKBONES["vip_local"]
    rng = np.random.default_rng(seed)
    torch.manual_seed(seed)
    net = nets.SmallConv(dim, width)
    opt = torch.optim.Adam(net.parameters(), lr=lr)
    mean = torch.tensor(spec.norm[0]).view(1, 3, 1, 1)
    std = torch.tensor(spec.norm[1]).view(1, 3, 1, 1)

    def prep(frames: np.ndarray) -> torch.Tensor:
        x = torch.from_numpy(frames).permute(0, 3, 1, 2).float().div_(255.0)
        return (x - mean) / std

    losses = []
    for _ in range(steps):
        idx = rng.integers(len(videos), size=batch)
        picks = []
        for i in idx:
            T = len(videos[i])
            s = rng.integers(0, T - 1)
            g = rng.integers(s + 1, T)
            t = rng.integers(s, g)
            picks.append((videos[i][s], videos[i][g], videos[i][t], videos[i][t + 1]))
        o0, og, ot, ot1 = (prep(np.stack(p)) for p in zip(*picks, strict=True))
        loss = vip_loss(net, o0, og, ot, ot1)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    return net, losses


FITTERS: dict[str, Callable[..., Path]] = {
    "pixels": fit_pixels,
    "state": fit_state,
    "vip_local": fit_vip_local,
}


def fit_backbone(
    name: str, folder: DemoFolder | str | os.PathLike, camera: str | None = None, **params
) -> Path:
    """Fit an offline backbone on ``folder`` (or reuse the fit made from the same files and
    parameters): the path of its safetensors file in ``DEMO_DIR/cache/backbones/``."""
    spec = get_spec(name)
    if not spec.offline:
        raise DecomposerError(f"backbone {name} is pretrained: nothing to fit")
    folder = folder if isinstance(folder, DemoFolder) else DemoFolder(folder)
    if spec.inputs == "state":
        camera = None
        sources = [folder.episode_dir(ep) / LOWDIM for ep in folder.episode_ids]
    else:
        camera = default_camera(folder, camera)
        sources = [folder.video_path(ep, camera) for ep in folder.episode_ids]
    if not sources:
        raise DecomposerError(f"{folder.root}: no episodes to fit backbone {name} on")
    fit = FITTERS[name]
    try:  # the key holds every parameter, defaults included: new defaults mean a new fit
        bound = inspect.signature(fit).bind(folder, camera, None, **params)
    except TypeError as e:
        raise DecomposerError(f"fit_args for backbone {name}: {e}") from None
    bound.apply_defaults()
    resolved = {k: v for k, v in bound.arguments.items() if k not in ("folder", "camera", "out")}
    key = fingerprint(sources) + json.dumps(resolved, sort_keys=True, default=str)
    tag = hashlib.sha1(key.encode()).hexdigest()[:16]
    out = folder.root / "cache" / "backbones" / f"{name}-{camera or 'state'}-{tag}.safetensors"
    if out.is_file():
        return out
    out.parent.mkdir(parents=True, exist_ok=True)
    return fit(folder, camera, out, **params)


# ---------------------------------------------------------------------------- the cache


def embeddings_dir(folder: DemoFolder, encoder: Encoder, camera: str | None) -> Path:
    sub = "state" if encoder.inputs == "state" else camera
    return folder.root / "cache" / "embeddings" / f"{encoder.name}-{encoder.weights_hash}" / sub


def episode_embeddings(
    folder: DemoFolder, episode: str, encoder: Encoder, camera: str | None = None
) -> np.ndarray:
    """float32 (T, D) embeddings of one episode, from the cache when its source is unchanged.

    Image backbones read ``camera``'s video (frame by frame); ``state`` reads lowdim.npz.
    """
    if encoder.inputs == "state":
        source = folder.episode_dir(episode) / LOWDIM
    else:
        camera = default_camera(folder, camera)
        source = folder.video_path(episode, camera)
    path = embeddings_dir(folder, encoder, camera) / f"{episode}.npy"
    meta = path.with_suffix(".json")
    key = fingerprint([source]) if source.is_file() else None
    if key and path.is_file() and meta.is_file():
        try:
            if json.loads(meta.read_text()).get("key") == key:
                return np.load(path)
        except (ValueError, OSError):
            pass  # a damaged entry: compute it again
    if encoder.inputs == "state":
        e = encoder.embed(state_rows(folder, episode, encoder.meta.get("keys")))
    else:
        e = encoder.embed(folder.iter_frames(episode, camera))
    with atomic_path(path) as tmp:
        np.save(tmp, e.astype(np.float32))
    atomic_write_json(meta, {"key": key, "frames": len(e), "dim": int(e.shape[1])})
    return e
