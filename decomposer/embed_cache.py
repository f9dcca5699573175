"""The per-episode embedding cache: ``DEMO_DIR/cache/embeddings/<name>-<weights hash>-<preprocessing
hash>/<camera>/`` (``Encoder.cache_key``).

Why a module of its own: the decomposer and the policies both read embeddings through it, and
it only needs an ``Encoder`` and the folder. Each ``<episode>.npy`` sits beside a ``.json``
holding a fingerprint of its source (video or lowdim.npz); a changed source, other weights or
another preprocessing (input size, normalisation, dtype) mean the episode is embedded again.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from demos.atomic import atomic_path, atomic_write_json
from demos.cache import fingerprint
from demos.episode import LOWDIM
from demos.folder import DemoFolder

from .encoder import Encoder
from .fitting import default_camera, state_rows


def embeddings_dir(folder: DemoFolder, encoder: Encoder, camera: str | None) -> Path:
    sub = "state" if encoder.inputs == "state" else camera
    return folder.root / "cache" / "embeddings" / encoder.cache_key / sub


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
