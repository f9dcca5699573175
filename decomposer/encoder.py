"""The frozen encoder: frames (or state rows) in, float32 (T, D) embeddings out.

Why a module of its own: embedding is the hot path, and its memory must stay bounded by the
chunk size rather than the video's length (frames are resized to the spec's square input by
a central crop, so the aspect ratio is kept, and encoded a chunk at a time, fp16 on CUDA;
glibc is asked to hand freed pages back after each chunk). It knows nothing about where the
weights came from.
"""

from __future__ import annotations

import ctypes
from collections.abc import Iterable, Iterator
from typing import Any

import numpy as np
import torch
from torch import nn

from demos.video import resize_center_crop

from .errors import DecomposerError
from .registry import IMAGENET

DEFAULT_CHUNK = 32


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

    @property
    def preprocessing(self) -> dict[str, Any]:
        """What happens to a frame before the network: the resize-and-centre-crop size, the
        normalisation, the channel order and the compute dtype (float16 on a GPU embeds
        slightly differently). Part of the embedding cache's key with the weights' hash."""
        if self.inputs == "state":
            return {"inputs": "state", "keys": self.meta.get("keys")}
        return {
            "inputs": "frames",
            "size": self.size,
            "crop": "resize short side, centre crop",
            "mean": [round(float(v), 8) for v in self._mean.flatten()],
            "std": [round(float(v), 8) for v in self._std.flatten()],
            "channels": "RGB",
            "dtype": str(self.dtype).removeprefix("torch."),
        }

    @property
    def cache_key(self) -> str:
        """``<name>-<weights hash>-<preprocessing hash>``: embeddings made otherwise differ."""
        import hashlib
        import json

        prep = hashlib.sha256(json.dumps(self.preprocessing, sort_keys=True).encode())
        return f"{self.name}-{self.weights_hash}-{prep.hexdigest()[:8]}"

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
