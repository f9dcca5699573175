"""Training a BESO policy on a demo folder: ``train(data, out_dir, ...)`` with plain arguments.

AdamW, linear warm-up then cosine decay, gradient clipping, an EMA of the weights, metrics as JSON
lines plus a loss plot, and checkpoints that resume exactly: batch ``s`` is a pure function of
(seed, s), and the torch generator state is saved with the optimizer and scheduler.
Under ``accelerate launch`` (several GPUs, or ``--cpu`` processes) the same loop runs in every
process on its shard of each global batch (``policies.distributed``).
"""

from __future__ import annotations

import json
import math
import os
import shutil
import time
from collections.abc import Callable, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors.torch import save_file
from tqdm.auto import tqdm

from demos.errors import DemoFolderError
from demos.folder import DemoFolder

from .batches import Batches, prepare
from .checkpoint import (
    CHECKPOINTS,
    EMA,
    MODEL,
    STATE,
    CheckpointError,
    load_config,
    load_weights,
    optimizer_from_files,
    optimizer_to_files,
    publish,
    read_json,
    read_tensors,
    rng_state,
    set_rng_state,
    step_folders,
    write_pretrained,
)
from .config import PolicyConfig
from .distributed import processes
from .edm import sigma_data_from
from .ema import EMA as WeightAverage
from .goals import uvd_goal_indices
from .metrics import plot_loss, truncate_metrics
from .model import BesoModel
from .normalize import Normalizers

METRICS, LOSS_PLOT = "metrics.jsonl", "loss.png"
# arguments that must not change when a run is resumed (they shape the trajectory)
RESUME_FIXED = (
    "goal",
    "steps",
    "batch_size",
    "lr",
    "weight_decay",
    "betas",
    "warmup_steps",
    "min_lr_ratio",
    "grad_clip",
    "ema_decay",
    "seed",
    "image_size",
)


@dataclass
class TrainResult:
    out_dir: Path
    checkpoint: Path  # the last one written
    steps: int
    loss: float  # mean over the last logging interval
    samples_per_s: float


def train(
    data: str | os.PathLike,
    out_dir: str | os.PathLike,
    *,
    policy: Mapping[str, Any] | None = None,
    goal: str = "future",
    state_keys: Sequence[str] | None = None,
    cameras: Sequence[str] = (),
    image_size: Sequence[int] | None = None,
    embeddings: Sequence[str] = (),
    backbone: str | None = None,
    backbone_weights: str | os.PathLike | None = None,
    steps: int = 10_000,
    batch_size: int = 256,
    lr: float = 1e-4,
    weight_decay: float = 1e-6,
    betas: Sequence[float] = (0.9, 0.999),
    warmup_steps: int = 500,
    min_lr_ratio: float = 0.0,
    grad_clip: float = 1.0,
    ema_decay: float = 0.999,
    checkpoint_every: int = 1000,
    log_every: int = 50,
    seed: int = 0,
    num_workers: int = 0,
    device: str = "cpu",
    resume: bool = False,
    progress: bool = True,
    on_checkpoint: Callable[[int, Path], None] | None = None,
) -> TrainResult:
    """Train on the windows of the demo folder ``data``; write ``out_dir``.

    ``policy``: ``PolicyConfig`` fields (network, sizes, noise, inference defaults);
    ``sigma_data: auto`` sets it to the std of the normalised actions. ``goal``: final, future
    (hindsight), uvd (each episode's ``subgoals.json``) or none. ``state_keys`` (None: all) and
    ``cameras`` pick the inputs. ``embeddings``: cameras seen through the frozen decomposer
    ``backbone`` (``decomposer.registry.BACKBONES``; ``backbone_weights`` a file, else the cache,
    or for pixels / vip_local a fit on this folder), input key ``<camera>_emb`` (its goal: the
    embedding at the goal frame), read memory-mapped from the decomposer's embedding cache.
    The folder is validated before the model is built, so a broken
    folder stops the run before its first step. ``resume=True`` continues from the newest
    checkpoint in ``out_dir`` with the same arguments.
    """
    out_dir = Path(out_dir)
    args = {
        "data": str(data),
        "goal": goal,
        "state_keys": None if state_keys is None else list(state_keys),
        "cameras": list(cameras),
        "image_size": None if image_size is None else list(image_size),
        "embeddings": list(embeddings),
        "backbone": backbone,
        "backbone_weights": None if backbone_weights is None else str(backbone_weights),
        "steps": steps,
        "batch_size": batch_size,
        "lr": lr,
        "weight_decay": weight_decay,
        "betas": list(betas),
        "warmup_steps": warmup_steps,
        "min_lr_ratio": min_lr_ratio,
        "grad_clip": grad_clip,
        "ema_decay": ema_decay,
        "checkpoint_every": checkpoint_every,
        "seed": seed,
    }
    ckpt_root = out_dir / CHECKPOINTS
    previous = step_folders(ckpt_root)
    if previous and not resume:
        raise FileExistsError(f"{ckpt_root} has checkpoints: pass resume=True or a new out_dir")
    if resume and not previous:
        raise CheckpointError(f"resume=True but {ckpt_root} holds no checkpoint")

    torch.manual_seed(seed)
    procs = processes(device)
    device = procs.device
    folder = DemoFolder(data)
    cfg, sigma_auto = _policy_config(folder, policy or {}, goal, state_keys, cameras, image_size)
    if bool(embeddings) != (backbone is not None):
        raise ValueError(
            f"embeddings={list(embeddings)} and backbone={backbone!r}: give both (cameras and the "
            "decomposer backbone that embeds them) or neither"
        )
    emb_arrays: dict[str, list[np.ndarray]] = {}
    backbone_files: dict[str, Path] = {}
    if embeddings:
        from demos.cache import validate_once

        from .embeddings import folder_embeddings

        validate_once(folder)  # a broken folder is named before anything is fitted or embedded
        with _main_first(procs):  # the main process fits and caches; the others read the cache
            record, emb_arrays, backbone_files = folder_embeddings(
                folder,
                embeddings,
                backbone,
                weights=backbone_weights,
                device=device,
                progress=progress and procs.is_main,
            )
        dims = {k: int(a[0].shape[1]) for k, a in emb_arrays.items()}
        cfg = cfg.replace(embeddings=dims, backbone=record)
    with _main_first(procs):
        dataset = _windows(folder, cfg, image_size, progress and procs.is_main, emb_arrays)
    if len(dataset) < batch_size:
        raise ValueError(f"{data}: {len(dataset)} windows, fewer than batch_size={batch_size}")
    stats = {k: dataset.stats[k] for k in ["action", *cfg.state]}
    norm = Normalizers(stats, stats, cfg.normalization)
    if sigma_auto:
        actions = torch.from_numpy(np.array(dataset.lowdim["action"], dtype=np.float32))
        cfg = cfg.replace(sigma_data=round(sigma_data_from(norm.normalize("action", actions)), 6))

    model = BesoModel(cfg).to(device)
    opt = torch.optim.AdamW(
        model.parameters(), lr, betas=tuple(betas), weight_decay=weight_decay, fused=True
    )
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, _warmup_cosine(warmup_steps, steps, min_lr_ratio)
    )
    ema = WeightAverage(model, ema_decay)
    norm.to(device)
    start = 0
    if resume:
        start = _restore(previous[-1], model, ema, opt, sched, cfg, args)
        if procs.is_main:
            truncate_metrics(out_dir / METRICS, start)
    net = model  # the bare module: EMA, checkpoints
    model, opt_step = procs.prepare(model, opt)

    batches = Batches(dataset, batch_size, seed, cfg, shard=(procs.rank, procs.world))
    if num_workers > 0:
        loader = torch.utils.data.DataLoader(  # own generator: leave the global RNG untouched
            batches,
            batch_size=None,
            sampler=range(start, steps),
            num_workers=num_workers,
            generator=torch.Generator().manual_seed(seed),
        )
    else:
        loader = (batches[s] for s in range(start, steps))

    def save(step: int) -> Path:
        procs.check_in_sync(net, step)
        path = ckpt_root / f"{step:06d}"
        if procs.is_main:
            path = publish(
                lambda tmp: _write_checkpoint(
                    tmp, step, net, ema, opt, sched, cfg, stats, args, backbone_files, procs
                ),
                ckpt_root,
                step,
            )
            plot_loss(out_dir / METRICS, out_dir / LOSS_PLOT)
            if on_checkpoint is not None:
                on_checkpoint(step, path)
        procs.wait()
        return path

    out_dir.mkdir(parents=True, exist_ok=True)
    bar = tqdm(
        total=steps, initial=start, disable=not (progress and procs.is_main), dynamic_ncols=True
    )
    last_ckpt = previous[-1] if resume else None
    loss_sum, n_loss, rate, mean_loss = 0.0, 0, 0.0, math.nan
    t_log = time.perf_counter()
    model.train()
    with procs.main_only(lambda: open(out_dir / METRICS, "a")) as metrics:
        for step, batch in enumerate(loader, start + 1):
            if procs.rank > 0:  # its own noise, a function of the step: resume stays exact
                torch.manual_seed((seed * 1_000_003 + step) * procs.world + procs.rank)
            obs, goal_in, action, pad = prepare(batch, cfg, norm, device)
            loss = model(obs, goal_in, action, pad)
            if not torch.isfinite(loss):
                raise FloatingPointError(f"step {step}: loss is {loss.item()}; lower lr?")
            opt_step.zero_grad(set_to_none=True)
            procs.backward(loss)
            grad_norm = procs.clip_grad_norm(net, grad_clip)
            opt_step.step()
            sched.step()
            ema.update(net, step)
            loss_sum, n_loss = loss_sum + loss.item(), n_loss + 1
            if step % log_every == 0 or step == steps:
                now = time.perf_counter()
                rate, mean_loss = n_loss * batch_size / (now - t_log), loss_sum / n_loss
                row = {
                    "step": step,
                    "loss": mean_loss,
                    "lr": sched.get_last_lr()[0],
                    "grad_norm": float(grad_norm),
                    "samples_per_s": rate,
                }
                if metrics is not None:
                    metrics.write(json.dumps(row) + "\n")
                    metrics.flush()
                bar.set_postfix(loss=f"{mean_loss:.4f}", lr=f"{row['lr']:.2e}", sps=f"{rate:.0f}")
                loss_sum, n_loss, t_log = 0.0, 0, now
            bar.update(1)
            if step % checkpoint_every == 0 or step == steps:
                if metrics is not None:
                    metrics.flush()
                last_ckpt = save(step)
    bar.close()
    return TrainResult(out_dir, last_ckpt, steps, mean_loss, rate)


# ---------------------------------------------------------------------------- set-up
@contextmanager
def _main_first(procs):
    """The main process runs the block first (it fills caches); the others follow."""
    if not procs.is_main:
        procs.wait()
    yield
    if procs.is_main:
        procs.wait()


def _policy_config(folder, policy, goal, state_keys, cameras, image_size):
    info = folder.info
    keys = list(info.state) if state_keys is None else list(state_keys)
    unknown = [k for k in keys if k not in info.state] + [
        c for c in cameras if c not in info.cameras
    ]
    if unknown:
        raise DemoFolderError(
            f"{unknown} are not among the state keys {sorted(info.state)} or cameras "
            f"{sorted(info.cameras)}",
            "dataset.json",
        )
    policy = dict(policy)
    sigma_auto = policy.get("sigma_data") == "auto"
    if sigma_auto:
        policy.pop("sigma_data")
    for derived in ("action_dim", "state", "cameras", "goal", "embeddings", "backbone"):
        if derived in policy:
            raise ValueError(f"policy.{derived} comes from the data and the goal argument")
    size = lambda c: list(image_size) if image_size else list(info.cameras[c])  # noqa: E731
    cfg = PolicyConfig(
        action_dim=info.action_dim,
        state={k: info.state[k] for k in keys},
        cameras={c: size(c) for c in cameras},
        goal=goal,
        **policy,
    )
    return cfg, sigma_auto


def _windows(folder: DemoFolder, cfg: PolicyConfig, image_size, progress: bool, embeddings=None):
    from demos.cache import validate_once
    from demos.windows import WindowDataset

    validate_once(folder)  # raises DemoFolderError naming every fault, before anything is built
    mode = {"uvd": "subgoal"}.get(cfg.goal, cfg.goal)
    return WindowDataset(
        folder,
        n_obs=cfg.n_obs,
        horizon=cfg.horizon,
        state_keys=list(cfg.state),
        cameras=list(cfg.cameras),
        image_size=None if image_size is None else tuple(image_size),
        goal=mode,
        goal_indices=uvd_goal_indices(folder) if cfg.goal == "uvd" else None,
        embeddings=embeddings,
        check=False,
        progress=progress,
    )


def _warmup_cosine(warmup: int, total: int, floor: float) -> Callable[[int], float]:
    def factor(step: int) -> float:
        if step < warmup:
            return (step + 1) / warmup
        progress = min(1.0, (step - warmup) / max(1, total - warmup))
        return floor + (1 - floor) * 0.5 * (1 + math.cos(math.pi * progress))

    return factor


# ---------------------------------------------------------------------------- checkpoints
def _write_checkpoint(
    tmp: Path, step, model, ema, opt, sched, cfg, stats, args, files, procs=None
) -> None:
    write_pretrained(tmp, model.state_dict(), ema.state_dict(), cfg, stats, args)
    for name, src in files.items():  # fitted backbone weights: the checkpoint stands alone
        shutil.copyfile(src, tmp / name)
    st = tmp / STATE
    st.mkdir()
    tensors, doc = optimizer_to_files(opt.state_dict())
    save_file({k: v.contiguous() for k, v in tensors.items()}, st / "optimizer.safetensors")
    (st / "optimizer.json").write_text(json.dumps(doc))
    sched_state = {k: v for k, v in sched.state_dict().items() if k != "lr_lambdas"}
    (st / "scheduler.json").write_text(json.dumps(sched_state))
    rng_tensors, rng_doc = rng_state()
    save_file(rng_tensors, st / "rng.safetensors")
    (st / "rng.json").write_text(json.dumps(rng_doc))
    state = {"step": step, "samples": step * args["batch_size"]}
    if procs is not None:  # how it was trained: process count and precision
        state.update(processes=procs.world, mixed_precision=procs.mixed_precision)
    (st / "state.json").write_text(json.dumps(state))


def _restore(ckpt: Path, model, ema, opt, sched, cfg: PolicyConfig, args) -> int:
    saved_cfg, saved_args = load_config(ckpt)
    changed = [k for k in RESUME_FIXED if saved_args.get(k) != args[k]]
    if saved_cfg.to_dict() != cfg.to_dict():
        a, b = saved_cfg.to_dict(), cfg.to_dict()
        changed += [f"policy.{k}" for k in a if a[k] != b[k]]
    if changed:
        raise CheckpointError(f"{ckpt}: cannot resume with different {changed}")
    load_weights(model, ckpt / MODEL)
    shadow = BesoModel(cfg)
    load_weights(shadow, ckpt / EMA)
    ema.load_state_dict(shadow.state_dict())
    st = ckpt / STATE
    opt.load_state_dict(
        optimizer_from_files(
            read_tensors(st / "optimizer.safetensors"), read_json(st / "optimizer.json")
        )
    )
    sched.load_state_dict({**read_json(st / "scheduler.json"), "lr_lambdas": [None]})
    set_rng_state(read_tensors(st / "rng.safetensors"), read_json(st / "rng.json"))
    return int(read_json(st / "state.json")["step"])
