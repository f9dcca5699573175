"""Weight files: from a path, the cache or the web, into an ``Encoder``.

Why a module of its own: reading the published files (torch pickles loaded weights-only,
TorchScript, safetensors), mapping their keys onto our nets, downloading and caching them and
the offline backbones' safetensors format are one job, separate from embedding and fitting.

``load_backbone(name, weights=None, device=None)`` takes ``weights=PATH``, else the cache, else
downloads from the published URL; offline (or with ``UVDIFF_OFFLINE=1``) the error says which
URL, which cache path and how to pass a file. Every encoder carries ``weights_hash`` (sha256 of
its file, 16 hex digits), which keys the embedding cache.
"""

from __future__ import annotations

import hashlib
import json
import os
import urllib.error
import urllib.request
import warnings
from pathlib import Path
from typing import Any

import torch
from torch import nn

from demos.atomic import atomic_path

from . import nets
from .encoder import DEFAULT_CHUNK, Encoder
from .errors import DecomposerError
from .registry import CACHE_ENV, OFFLINE_ENV, BackboneSpec, Layout, get_spec

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
    if spec.name == "bc_local":
        net = nets.KeypointConv(int(info.get("keypoints", 32)), int(info.get("width", 32)))
    else:
        net = nets.SmallConv(int(info.get("dim", spec.dim)), int(info.get("width", 32)))
    load_into(net, tensors, where)
    return net, {**info, "dim": net.dim}


def _save_offline(path: Path, name: str, tensors: dict[str, torch.Tensor], info: dict) -> Path:
    from safetensors.torch import save_file

    with atomic_path(path) as tmp:
        tensors = {k: v.detach().contiguous().float() for k, v in tensors.items()}
        save_file(tensors, str(tmp), metadata={"backbone": name, "info": json.dumps(info)})
    return path
