"""Frozen per-frame embeddings of a camera from a decomposer backbone, as policy inputs.

Naming: camera ``<cam>`` embedded by the backbone is the observation (and goal) key
``<cam>_emb`` (``embedding_key``); training windows, ``config.yaml`` and ``Policy.act`` all use
it. The policy config records the backbone (``PolicyConfig.backbone``)::

    backbone:
      name: pixels
      cameras:
        agentview: {weights_hash: 3f2a..., weights: backbone-agentview.safetensors, size: [84, 84]}

``weights`` is a file inside the checkpoint folder for the backbones fitted on the demo folder
(pixels, vip_local: their safetensors file is copied, so the checkpoint is self-contained), and
null for pretrained ones (loaded from the backbone cache or ``Policy.from_pretrained(...,
backbone_weights=PATH)``, and checked against ``weights_hash``). Training reads the decomposer's
own embedding cache (``DEMO_DIR/cache/embeddings/<Encoder.cache_key>/<cam>/<episode>.npy``),
memory-mapped; nothing here keeps a second copy.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from demos.errors import DemoFolderError
from demos.folder import DemoFolder

SUFFIX = "_emb"


def embedding_key(camera: str) -> str:
    """The observation key of ``camera``'s backbone embedding."""
    return camera + SUFFIX


def embedded_cameras(config) -> dict[str, str]:
    """Embedding key -> the camera whose frames the policy's recorded backbone embeds."""
    cams = (config.backbone or {}).get("cameras") or {}
    return {embedding_key(c): c for c in cams}


def weights_file(camera: str) -> str:
    """The backbone weights' file name inside a checkpoint folder."""
    return f"backbone-{camera}.safetensors"


def folder_embeddings(
    folder: DemoFolder,
    cameras: Sequence[str],
    backbone: str,
    *,
    weights: str | os.PathLike | None = None,
    fit_args: Mapping[str, Any] | None = None,
    device: str | None = None,
    progress: bool = True,
) -> tuple[dict[str, Any], dict[str, list[np.ndarray]], dict[str, Path]]:
    """(the config's ``backbone`` record, {key: per-episode memory-mapped (T, D) arrays},
    {checkpoint file name: weights file to copy}) for embedding ``cameras`` with ``backbone``.

    Offline backbones without ``weights`` are fitted on ``folder`` per camera with ``fit_args``
    (or their earlier fit with the same arguments is reused); embeddings come from (and fill)
    the decomposer's cache.
    """
    from tqdm.auto import tqdm

    from decomposer.embed_cache import embeddings_dir, episode_embeddings
    from decomposer.pipeline import prepare_encoder
    from decomposer.registry import get_spec

    spec = get_spec(backbone)  # DecomposerError naming an unknown backbone
    if spec.inputs != "frames":
        raise ValueError(
            f"backbone={backbone!r} embeds state, not camera frames: use state_keys instead"
        )
    info = folder.info
    missing = [c for c in cameras if c not in info.cameras]
    if missing:
        raise DemoFolderError(
            f"embeddings {missing} name no camera of the folder (cameras: {sorted(info.cameras)})",
            "dataset.json",
        )
    record: dict[str, Any] = {"name": backbone, "cameras": {}}
    arrays: dict[str, list[np.ndarray]] = {}
    files: dict[str, Path] = {}
    enc = None
    for cam in cameras:
        if enc is None or spec.offline:  # one pretrained net for all cameras; fits per camera
            fit = None if fit_args is None else dict(fit_args)
            enc = prepare_encoder(
                folder, backbone, weights=weights, camera=cam, device=device, fit_args=fit
            )
        cache = embeddings_dir(folder, enc, cam)
        per_episode = []
        for ep in tqdm(
            folder.episode_ids, desc=f"{backbone} embeddings of {cam}", disable=not progress
        ):
            episode_embeddings(folder, ep, enc, cam)  # computes the cache entry when stale
            per_episode.append(np.load(cache / f"{ep}.npy", mmap_mode="r"))
        entry = {"weights_hash": enc.weights_hash, "weights": None, "size": list(info.cameras[cam])}
        if spec.offline:
            entry["weights"] = weights_file(cam)
            files[weights_file(cam)] = Path(enc.meta["weights"])
        record["cameras"][cam] = entry
        arrays[embedding_key(cam)] = per_episode
    return record, arrays, files


def load_embedder(
    ckpt: Path,
    record: dict[str, Any],
    camera: str,
    *,
    weights: str | os.PathLike | None = None,
    device=None,
):
    """The backbone encoder of ``camera`` for a checkpoint, checked against the recorded hash.

    Raises ``CheckpointError`` naming the file or the hash that does not fit.
    """
    from decomposer.errors import DecomposerError
    from decomposer.weights import load_backbone

    from .checkpoint import CheckpointError

    entry = record["cameras"][camera]
    path = weights
    if entry.get("weights"):
        path = ckpt / entry["weights"]
        if not path.is_file():
            raise CheckpointError(f"{path}: missing file (backbone {record['name']} of {camera})")
    try:
        enc = load_backbone(record["name"], path, device)
    except DecomposerError as e:
        raise CheckpointError(f"{ckpt}: backbone {record['name']} of {camera!r}: {e}") from None
    if enc.weights_hash != entry["weights_hash"]:
        where = path if path is not None else enc.meta.get("weights")
        raise CheckpointError(
            f"{where}: backbone {record['name']} weights hash {enc.weights_hash}, the policy was "
            f"trained on embeddings from weights {entry['weights_hash']}"
        )
    return enc


def relay_embedder(ckpt: Path, config, stats: dict[str, Any]) -> tuple[Any, str]:
    """(embed function, what it is) for the subgoal relay of a goal-conditioned policy: what a
    task demo is cut with and what each observation is compared with.

    A policy whose goal is a backbone embedding of a camera (``embeddings=[cam]``) relays on
    that backbone over the camera's frames: UVD on video, one vector space from the demo's
    subgoals to the policy's goal. Otherwise the goal's state keys, each scaled to [-1, 1] by
    the training ``stats`` (a key without stats as it is). A goal camera encoded end to end
    has no such space: a ValueError.
    """
    from decomposer.task import frames_embedder, state_embedder

    goal_keys = list(config.resolved_goal_keys)
    record, cams = config.backbone or {}, embedded_cameras(config)
    visual = [cams[k] for k in goal_keys if k in cams]
    if visual:
        enc = load_embedder(Path(ckpt), record, visual[0], device="cpu")
        return frames_embedder(enc, visual[0]), f"{record['name']} on {visual[0]}"
    raw = [k for k in goal_keys if k in config.cameras]
    if raw:
        raise ValueError(
            f"{ckpt}: the goal cameras {raw} are encoded end to end, so a subgoal relay has no "
            "embedding to compare; train with embeddings=[camera] backbone=NAME for UVD goals"
        )
    keys = [k for k in goal_keys if k in config.state]
    return state_embedder(keys, stats), "normalised state: " + ", ".join(keys)
