"""Embedding backbones: one table from name to spec, one loader, per-episode embedding caches.

This module only re-exports, so ``from decomposer.backbones import X`` keeps working; the
code lives in one module per job:

- ``decomposer.registry``: the table (``BACKBONES``, ``BackboneSpec``, ``Layout``,
  ``get_spec``, ``weights_dir``), licenses and normalisation constants;
- ``decomposer.encoder``: ``Encoder`` (``embed`` in bounded-memory chunks), ``default_device``;
- ``decomposer.weights``: ``load_backbone``, the weights cache and download, reading and
  packing published checkpoints, the offline backbones' safetensors files;
- ``decomposer.fitting``: ``fit_backbone`` for ``pixels``, ``state`` and ``vip_local``;
- ``decomposer.embed_cache``: ``episode_embeddings``, cached per weights hash.

Patching a name here does not reach the code that uses it: patch it in its home module.
"""

from __future__ import annotations

from .embed_cache import embeddings_dir, episode_embeddings
from .encoder import DEFAULT_CHUNK, Encoder, default_device, release_freed_memory
from .errors import DecomposerError
from .fitting import (
    FITTERS,
    default_camera,
    fit_backbone,
    fit_pixels,
    fit_state,
    fit_vip_local,
    state_rows,
    vip_loss,
)
from .registry import (
    BACKBONES,
    CACHE_ENV,
    CLIP_NORM,
    IMAGENET,
    OFFLINE_ENV,
    UNIT,
    BackboneSpec,
    Layout,
    get_spec,
    weights_dir,
)
from .weights import (
    Affine,
    extract_state_dict,
    file_hash,
    load_backbone,
    load_into,
    pack_state_dict,
    random_weights,
    read_checkpoint,
)

__all__ = [
    "BACKBONES",
    "CACHE_ENV",
    "CLIP_NORM",
    "DEFAULT_CHUNK",
    "FITTERS",
    "IMAGENET",
    "OFFLINE_ENV",
    "UNIT",
    "Affine",
    "BackboneSpec",
    "DecomposerError",
    "Encoder",
    "Layout",
    "default_camera",
    "default_device",
    "embeddings_dir",
    "episode_embeddings",
    "extract_state_dict",
    "file_hash",
    "fit_backbone",
    "fit_pixels",
    "fit_state",
    "fit_vip_local",
    "get_spec",
    "load_backbone",
    "load_into",
    "pack_state_dict",
    "random_weights",
    "read_checkpoint",
    "release_freed_memory",
    "state_rows",
    "vip_loss",
    "weights_dir",
]
