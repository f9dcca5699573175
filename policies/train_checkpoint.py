"""A training run's checkpoints: which one to resume from, writing one, and restoring one.

``policies.checkpoint`` knows the files of a step folder and how to publish it safely; this
module knows what a run keeps in them (weights, EMA, optimizer, schedule, generator states,
the training arguments) so that a resumed run goes on exactly as if it had never stopped, and
which arguments a resume may not change.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from safetensors.torch import save_file

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
from .metrics import plot_loss
from .model import BesoModel

if TYPE_CHECKING:
    from .train_setup import TrainRun

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


def resume_point(out_dir: Path, resume: bool) -> Path | None:
    """The newest checkpoint to resume from (``resume``), else None; refuses to overwrite one."""
    ckpt_root = out_dir / CHECKPOINTS
    previous = step_folders(ckpt_root)
    if previous and not resume:
        raise FileExistsError(f"{ckpt_root} has checkpoints: pass resume=True or a new out_dir")
    if resume and not previous:
        raise CheckpointError(f"resume=True but {ckpt_root} holds no checkpoint")
    return previous[-1] if resume else None


def save_checkpoint(run: TrainRun, step: int) -> Path:
    """Checkpoint ``step`` (the main process writes it and the loss plot); every process waits."""
    procs, out_dir = run.procs, run.opts.out_dir
    procs.check_in_sync(run.net, step)
    ckpt_root = out_dir / CHECKPOINTS
    path = ckpt_root / f"{step:06d}"
    if procs.is_main:
        path = publish(lambda tmp: write_checkpoint(tmp, step, run), ckpt_root, step)
        plot_loss(out_dir / METRICS, out_dir / LOSS_PLOT)
        if run.opts.on_checkpoint is not None:
            run.opts.on_checkpoint(step, path)
    procs.wait()
    return path


def write_checkpoint(tmp: Path, step: int, run: TrainRun) -> None:
    """Fill the unpublished step folder ``tmp``: the pretrained files, then the training state."""
    write_pretrained(tmp, run.net.state_dict(), run.ema.state_dict(), run.cfg, run.stats, run.args)
    for name, src in run.backbone_files.items():  # fitted backbone weights: it stands alone
        shutil.copyfile(src, tmp / name)
    st = tmp / STATE
    st.mkdir()
    tensors, doc = optimizer_to_files(run.opt.state_dict())
    save_file({k: v.contiguous() for k, v in tensors.items()}, st / "optimizer.safetensors")
    (st / "optimizer.json").write_text(json.dumps(doc))
    sched_state = {k: v for k, v in run.sched.state_dict().items() if k != "lr_lambdas"}
    (st / "scheduler.json").write_text(json.dumps(sched_state))
    rng_tensors, rng_doc = rng_state()
    save_file(rng_tensors, st / "rng.safetensors")
    (st / "rng.json").write_text(json.dumps(rng_doc))
    state = {"step": step, "samples": step * run.args["batch_size"]}
    # how it was trained: process count and precision
    state.update(processes=run.procs.world, mixed_precision=run.procs.mixed_precision)
    (st / "state.json").write_text(json.dumps(state))


def restore(ckpt: Path, model, ema, opt, sched, cfg: PolicyConfig, args: Mapping[str, Any]) -> int:
    """Load ``ckpt`` into the bare model, EMA, optimizer, schedule and the process's generators;
    return its step. Refuses a checkpoint whose config or fixed arguments differ."""
    _check_unchanged(ckpt, cfg, args)
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


def _check_unchanged(ckpt: Path, cfg: PolicyConfig, args: Mapping[str, Any]) -> None:
    saved_cfg, saved_args = load_config(ckpt)
    changed = [k for k in RESUME_FIXED if saved_args.get(k) != args[k]]
    if saved_cfg.to_dict() != cfg.to_dict():
        a, b = saved_cfg.to_dict(), cfg.to_dict()
        changed += [f"policy.{k}" for k in a if a[k] != b[k]]
    if changed:
        raise CheckpointError(f"{ckpt}: cannot resume with different {changed}")
