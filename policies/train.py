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
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from tqdm.auto import tqdm

from .batches import prepare
from .train_checkpoint import LOSS_PLOT, METRICS, RESUME_FIXED, save_checkpoint
from .train_setup import TrainOptions, TrainRun, build_run

__all__ = ["LOSS_PLOT", "METRICS", "RESUME_FIXED", "TrainResult", "train", "train_step"]


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
    backbone_fit: Mapping[str, Any] | None = None,
    steps: int = 20_000,
    batch_size: int = 256,
    lr: float = 1e-4,
    weight_decay: float = 1e-6,
    betas: Sequence[float] = (0.9, 0.999),
    warmup_steps: int = 500,
    min_lr_ratio: float = 0.0,
    grad_clip: float = 1.0,
    ema_decay: float = 0.999,
    checkpoint_every: int = 2000,
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
    or for bc_local / pixels / vip_local a fit on this folder with ``backbone_fit``), input key
    ``<camera>_emb`` (its goal: the embedding at the goal frame), read memory-mapped from the
    decomposer's embedding cache.
    The folder is validated before the model is built, so a broken
    folder stops the run before its first step. ``resume=True`` continues from the newest
    checkpoint in ``out_dir`` with the same arguments.
    """
    opts = TrainOptions(**locals())  # first: the arguments exactly as given, nothing else
    run = build_run(opts)
    out_dir, last_ckpt = opts.out_dir, run.resumed_from
    out_dir.mkdir(parents=True, exist_ok=True)
    run.model.train()
    with run.procs.main_only(lambda: open(out_dir / METRICS, "a")) as metrics:
        log = _Log(run, metrics)
        for step, batch in enumerate(run.loader, run.start + 1):
            loss, grad_norm = train_step(run, batch, step)
            log.add(loss)
            if step % log_every == 0 or step == steps:
                log.write(step, run.sched.get_last_lr()[0], grad_norm)
            log.bar.update(1)
            if step % checkpoint_every == 0 or step == steps:
                last_ckpt = save_checkpoint(run, step)  # log.write has flushed its rows
    log.bar.close()
    return TrainResult(out_dir, last_ckpt, steps, log.mean_loss, log.rate)


def train_step(run: TrainRun, batch: Any, step: int) -> tuple[float, torch.Tensor]:
    """One optimisation step on ``batch``: (its loss, the gradient norm before clipping)."""
    procs = run.procs
    if procs.rank > 0:  # its own noise, a function of the step: resume stays exact
        torch.manual_seed((run.opts.seed * 1_000_003 + step) * procs.world + procs.rank)
    obs, goal_in, action, pad = prepare(batch, run.cfg, run.norm, procs.device)
    loss = run.model(obs, goal_in, action, pad)
    if not torch.isfinite(loss):
        raise FloatingPointError(f"step {step}: loss is {loss.item()}; lower lr?")
    run.opt_step.zero_grad(set_to_none=True)
    procs.backward(loss)
    grad_norm = procs.clip_grad_norm(run.net, run.opts.grad_clip)
    run.opt_step.step()
    run.sched.step()
    run.ema.update(run.net, step)
    return loss.item(), grad_norm


class _Log:
    """A run's progress bar and metrics rows (``metrics``: the open metrics.jsonl on the main
    process, else None), with the mean loss and samples/s over each logging interval."""

    def __init__(self, run: TrainRun, metrics):
        show = run.opts.progress and run.procs.is_main
        self.bar = tqdm(
            total=run.opts.steps, initial=run.start, disable=not show, dynamic_ncols=True
        )
        self.metrics, self.batch_size = metrics, run.opts.batch_size
        self.loss_sum, self.n_loss, self.rate, self.mean_loss = 0.0, 0, 0.0, math.nan
        self.t_log = time.perf_counter()

    def add(self, loss: float) -> None:
        self.loss_sum, self.n_loss = self.loss_sum + loss, self.n_loss + 1

    def write(self, step: int, lr: float, grad_norm: torch.Tensor) -> None:
        """Close the interval at ``step``; the row is flushed at once (the loss plot reads it)."""
        now = time.perf_counter()
        self.rate = self.n_loss * self.batch_size / (now - self.t_log)
        self.mean_loss = self.loss_sum / self.n_loss
        row = {
            "step": step,
            "loss": self.mean_loss,
            "lr": lr,
            "grad_norm": float(grad_norm),
            "samples_per_s": self.rate,
        }
        if self.metrics is not None:
            self.metrics.write(json.dumps(row) + "\n")
            self.metrics.flush()
        self.bar.set_postfix(loss=f"{self.mean_loss:.4f}", lr=f"{lr:.2e}", sps=f"{self.rate:.0f}")
        self.loss_sum, self.n_loss, self.t_log = 0.0, 0, now
