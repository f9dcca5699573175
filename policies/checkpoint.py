"""Checkpoint folders without pickle: safetensors for tensors, YAML/JSON for everything else.

``<out>/checkpoints/<step:06d>/``::

    model.safetensors  ema.safetensors  config.yaml  stats.json
    training_state/  optimizer.safetensors  optimizer.json  scheduler.json  rng.safetensors
                     rng.json  state.json

A step folder is written under a temporary name and renamed into place when complete, so a killed
run never leaves a checkpoint that looks finished; ``checkpoints/last`` points at the newest.
"""

from __future__ import annotations

import json
import os
import random
import shutil
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch
import yaml
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from .config import PolicyConfig

MODEL, EMA, CONFIG, STATS = "model.safetensors", "ema.safetensors", "config.yaml", "stats.json"
STATE = "training_state"
CHECKPOINTS = "checkpoints"


class CheckpointError(Exception):
    """A checkpoint folder is missing a file, or a file is unreadable or does not fit the model."""


# ------------------------------------------------------------------------------------ reading
def _need(path: Path) -> Path:
    if not path.is_file():
        raise CheckpointError(f"{path}: missing file")
    return path


def read_tensors(path: Path) -> dict[str, torch.Tensor]:
    try:
        return load_file(_need(path))
    except SafetensorError as e:
        raise CheckpointError(f"{path}: not a readable safetensors file ({e})") from None


def read_yaml(path: Path) -> Any:
    try:
        return yaml.safe_load(_need(path).read_text())
    except yaml.YAMLError as e:
        raise CheckpointError(f"{path}: not valid YAML ({e})") from None


def read_json(path: Path) -> Any:
    try:
        return json.loads(_need(path).read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise CheckpointError(f"{path}: not valid JSON ({e})") from None


def load_config(ckpt: Path) -> tuple[PolicyConfig, dict[str, Any]]:
    """(policy config, training arguments) from ``config.yaml``."""
    path = ckpt / CONFIG
    doc = read_yaml(path)
    if not isinstance(doc, dict) or not isinstance(doc.get("policy"), dict):
        raise CheckpointError(f"{path}: has no 'policy' section")
    try:
        return PolicyConfig.from_dict(doc["policy"]), doc.get("train") or {}
    except (TypeError, ValueError) as e:
        raise CheckpointError(f"{path}: {e}") from None


def load_stats(ckpt: Path, keys: list[str]) -> dict[str, dict[str, list[float]]]:
    """The normaliser statistics of ``keys``; names the key whose entry is missing or broken."""
    path = ckpt / STATS
    doc = read_json(path)
    features = doc.get("features") if isinstance(doc, dict) else None
    if not isinstance(features, dict):
        raise CheckpointError(f"{path}: has no 'features' section")
    for key in keys:
        entry = features.get(key)
        if not isinstance(entry, dict) or not {"min", "max", "mean", "std"} <= set(entry):
            raise CheckpointError(f"{path}: no min/max/mean/std for {key!r}")
    return {k: features[k] for k in keys}


def load_weights(module: torch.nn.Module, path: Path) -> None:
    """Load a state dict strictly, naming the first missing, unexpected or misshapen key."""
    state = read_tensors(path)
    own = module.state_dict()
    missing = [k for k in own if k not in state]
    extra = [k for k in state if k not in own]
    if missing or extra:
        raise CheckpointError(
            f"{path}: does not fit the model described by {CONFIG}: "
            + (f"missing {missing[:5]}{'...' if len(missing) > 5 else ''} " if missing else "")
            + (f"unexpected {extra[:5]}{'...' if len(extra) > 5 else ''}" if extra else "")
        )
    for k, v in state.items():
        if v.shape != own[k].shape:
            raise CheckpointError(
                f"{path}: {k!r} has shape {tuple(v.shape)}, the model needs {tuple(own[k].shape)}"
            )
        if v.is_floating_point() and not torch.isfinite(v).all():
            raise CheckpointError(f"{path}: {k!r} holds NaN or inf")
    module.load_state_dict(state)


def resolve(path: str | os.PathLike) -> Path:
    """A step folder, or a run folder / ``checkpoints`` folder (then its newest step)."""
    path = Path(path)
    if (path / CONFIG).is_file() or (path / MODEL).is_file():
        return path
    for root in (path / CHECKPOINTS, path):
        steps = step_folders(root)
        if steps:
            return steps[-1]
    if not path.exists():
        raise CheckpointError(f"{path}: no such checkpoint folder")
    raise CheckpointError(f"{path}: missing file {CONFIG} (and no {CHECKPOINTS}/<step>/ inside)")


def step_folders(root: Path) -> list[Path]:
    """Complete step folders under ``root``, oldest first (temporary ones are skipped)."""
    if not root.is_dir():
        return []
    return sorted(p for p in root.iterdir() if p.is_dir() and p.name.isdigit())


# ------------------------------------------------------------------------------------ writing
def _contiguous(state: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    return {k: v.detach().cpu().contiguous() for k, v in state.items()}


def write_pretrained(
    folder: Path,
    model_state: Mapping[str, torch.Tensor],
    ema_state: Mapping[str, torch.Tensor] | None,
    cfg: PolicyConfig,
    stats: Mapping[str, Any],
    train_args: Mapping[str, Any] | None = None,
) -> None:
    """What ``Policy.from_pretrained`` reads (into an existing, not yet published folder)."""
    save_file(_contiguous(model_state), folder / MODEL)
    if ema_state is not None:
        save_file(_contiguous(ema_state), folder / EMA)
    doc = {"policy": cfg.to_dict(), "train": dict(train_args or {})}
    (folder / CONFIG).write_text(yaml.safe_dump(doc, sort_keys=False))
    (folder / STATS).write_text(json.dumps({"features": dict(stats)}, indent=1) + "\n")


def optimizer_to_files(state: dict[str, Any]) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """Split ``optimizer.state_dict()`` into tensors and JSON (param_groups, scalars)."""
    tensors, scalars = {}, {}
    for idx, entry in state["state"].items():
        for name, value in entry.items():
            if isinstance(value, torch.Tensor):
                tensors[f"{idx}.{name}"] = value
            else:
                scalars[f"{idx}.{name}"] = value
    return tensors, {"param_groups": state["param_groups"], "scalars": scalars}


def optimizer_from_files(tensors: dict[str, torch.Tensor], doc: dict[str, Any]) -> dict[str, Any]:
    state: dict[int, dict[str, Any]] = {}
    for key, value in [*tensors.items(), *doc["scalars"].items()]:
        idx, name = key.split(".", 1)
        state.setdefault(int(idx), {})[name] = value
    groups = [{**g, "betas": tuple(g["betas"])} if "betas" in g else g for g in doc["param_groups"]]
    return {"state": state, "param_groups": groups}


def rng_state() -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """Torch (CPU, and CUDA when present), Python and NumPy generator states."""
    tensors = {"torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        for i, s in enumerate(torch.cuda.get_rng_state_all()):
            tensors[f"cuda{i}"] = s
    version, internal, gauss = random.getstate()
    np_state = np.random.get_state()
    doc = {
        "python": [version, list(internal), gauss],
        "numpy": [np_state[0], np_state[1].tolist(), *map(float, np_state[2:])],
    }
    return tensors, doc


def set_rng_state(tensors: dict[str, torch.Tensor], doc: dict[str, Any]) -> None:
    torch.set_rng_state(tensors["torch"])
    if torch.cuda.is_available():
        states = [tensors[k] for k in sorted(tensors) if k.startswith("cuda")]
        if states:
            torch.cuda.set_rng_state_all(states)
    version, internal, gauss = doc["python"]
    random.setstate((version, tuple(internal), gauss))
    name, keys, pos, has_gauss, cached = doc["numpy"]
    np.random.set_state((name, np.asarray(keys, dtype=np.uint32), int(pos), int(has_gauss), cached))


def publish(folder_writer, root: Path, step: int) -> Path:
    """Run ``folder_writer(tmp)`` then rename ``tmp`` to ``root/<step:06d>`` and point ``last``."""
    root.mkdir(parents=True, exist_ok=True)
    final = root / f"{step:06d}"
    tmp = Path(tempfile.mkdtemp(dir=root, prefix=f".tmp-{step:06d}-"))
    try:
        folder_writer(tmp)
        for p in tmp.rglob("*"):
            if p.is_file():
                with open(p, "rb") as f:
                    os.fsync(f.fileno())
        if final.exists():  # a rerun of the same step: replace it whole
            shutil.rmtree(final)
        os.rename(tmp, final)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    link = root / f".last-{os.getpid()}"
    link.unlink(missing_ok=True)
    link.symlink_to(final.name)
    os.replace(link, root / "last")
    return final
