"""Everything one training run needs, built from ``train``'s arguments before its first step,
so that ``train`` itself is only the loop: the folder checked and windowed, the policy config,
model, optimizer, schedule, EMA, the launched processes, the resumed checkpoint, the batches.
The build order is the order the random generators are drawn in (model init, backbone fits,
restored generator states): change it and runs no longer match their checkpoints or goldens.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Iterable, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from demos.errors import DemoFolderError
from demos.folder import DemoFolder

from .batches import Batches
from .config import PolicyConfig
from .distributed import Processes, processes
from .edm import sigma_data_from
from .ema import EMA as WeightAverage
from .goals import subgoal_cut, uvd_goal_indices
from .metrics import truncate_metrics
from .model import BesoModel
from .normalize import Normalizers
from .train_checkpoint import METRICS, restore, resume_point


@dataclass
class TrainOptions:
    """``train``'s arguments exactly as given (see ``policies.train.train``)."""

    data: str | os.PathLike
    out_dir: str | os.PathLike
    policy: Mapping[str, Any] | None
    goal: str
    state_keys: Sequence[str] | None
    cameras: Sequence[str]
    image_size: Sequence[int] | None
    embeddings: Sequence[str]
    backbone: str | None
    backbone_weights: str | os.PathLike | None
    backbone_fit: Mapping[str, Any] | None
    steps: int
    batch_size: int
    lr: float
    weight_decay: float
    betas: Sequence[float]
    warmup_steps: int
    min_lr_ratio: float
    grad_clip: float
    ema_decay: float
    checkpoint_every: int
    log_every: int
    seed: int
    num_workers: int
    device: str
    resume: bool
    progress: bool
    on_checkpoint: Callable[[int, Path], None] | None

    def __post_init__(self) -> None:
        self.out_dir = Path(self.out_dir)

    def record(self) -> dict[str, Any]:
        """The arguments each checkpoint's config.yaml keeps (a resume compares them)."""
        listed = lambda xs: None if xs is None else list(xs)  # noqa: E731
        return {
            "data": str(self.data),
            "goal": self.goal,
            "state_keys": listed(self.state_keys),
            "cameras": list(self.cameras),
            "image_size": listed(self.image_size),
            "embeddings": list(self.embeddings),
            "backbone": self.backbone,
            "backbone_weights": None
            if self.backbone_weights is None
            else str(self.backbone_weights),
            "backbone_fit": dict(self.backbone_fit or {}),
            "steps": self.steps,
            "batch_size": self.batch_size,
            "lr": self.lr,
            "weight_decay": self.weight_decay,
            "betas": list(self.betas),
            "warmup_steps": self.warmup_steps,
            "min_lr_ratio": self.min_lr_ratio,
            "grad_clip": self.grad_clip,
            "ema_decay": self.ema_decay,
            "checkpoint_every": self.checkpoint_every,
            "seed": self.seed,
        }


@dataclass
class TrainRun:
    """A run ready for its first (or, resumed, its next) step."""

    opts: TrainOptions
    args: dict[str, Any]  # opts.record(): written into every checkpoint
    procs: Processes
    cfg: PolicyConfig
    stats: dict[str, Any]  # normaliser statistics, written into every checkpoint
    norm: Normalizers
    net: BesoModel  # the bare module: EMA, checkpoints
    model: torch.nn.Module  # what a step calls: DDP-wrapped under a launcher
    opt: torch.optim.Optimizer  # the bare optimizer, whose state is checkpointed
    opt_step: Any  # the prepared optimizer that steps (mixed precision under a launcher)
    sched: torch.optim.lr_scheduler.LambdaLR
    ema: WeightAverage
    loader: Iterable[Any]  # this process's batches for steps start+1 .. steps
    start: int  # steps already done
    resumed_from: Path | None
    backbone_files: dict[str, Path]  # fitted backbone weights, copied into every checkpoint


def build_run(opts: TrainOptions) -> TrainRun:
    """Validate, load and build everything (in the generators' order), resuming if asked."""
    args = opts.record()
    resumed_from = resume_point(opts.out_dir, opts.resume)
    torch.manual_seed(opts.seed)
    procs = processes(opts.device)
    folder = DemoFolder(opts.data)
    cfg, sigma_auto = _policy_config(
        folder, opts.policy or {}, opts.goal, opts.state_keys, opts.cameras, opts.image_size
    )
    cfg, emb_arrays, backbone_files = _embeddings(folder, cfg, opts, procs)
    with _main_first(procs):
        progress = opts.progress and procs.is_main
        dataset = _windows(folder, cfg, opts.image_size, progress, emb_arrays)
    if len(dataset) < opts.batch_size:
        raise ValueError(
            f"{opts.data}: {len(dataset)} windows, fewer than batch_size={opts.batch_size}"
        )
    stats = {k: dataset.stats[k] for k in ["action", *cfg.state]}
    norm = Normalizers(stats, stats, cfg.normalization)
    if sigma_auto:
        actions = torch.from_numpy(np.array(dataset.lowdim["action"], dtype=np.float32))
        cfg = cfg.replace(sigma_data=round(sigma_data_from(norm.normalize("action", actions)), 6))
    model, opt, sched, ema = _optimisation(cfg, opts, procs.device)
    norm.to(procs.device)
    start = 0
    if resumed_from is not None:
        start = restore(resumed_from, model, ema, opt, sched, cfg, args)
        if procs.is_main:
            truncate_metrics(opts.out_dir / METRICS, start)
    net = model
    model, opt_step = procs.prepare(model, opt)
    loader = _batch_stream(dataset, cfg, opts, procs, start)
    return TrainRun(
        opts=opts,
        args=args,
        procs=procs,
        cfg=cfg,
        stats=stats,
        norm=norm,
        net=net,
        model=model,
        opt=opt,
        opt_step=opt_step,
        sched=sched,
        ema=ema,
        loader=loader,
        start=start,
        resumed_from=resumed_from,
        backbone_files=backbone_files,
    )


@contextmanager
def _main_first(procs: Processes):
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
    for derived in ("action_dim", "state", "cameras", "goal", "embeddings", "backbone",
                    "subgoal_cut"):  # fmt: skip
        if derived in policy:
            raise ValueError(f"policy.{derived} comes from the data and the goal argument")
    size = lambda c: list(image_size) if image_size else list(info.cameras[c])  # noqa: E731
    cfg = PolicyConfig(
        action_dim=info.action_dim,
        state={k: info.state[k] for k in keys},
        cameras={c: size(c) for c in cameras},
        goal=goal,
        subgoal_cut=subgoal_cut(folder) if goal == "uvd" else None,
        **policy,
    )
    return cfg, sigma_auto


def _embeddings(folder: DemoFolder, cfg: PolicyConfig, opts: TrainOptions, procs: Processes):
    """(cfg with the embedding inputs, their arrays, fitted backbone files) for ``embeddings``."""
    embeddings, backbone = opts.embeddings, opts.backbone
    if bool(embeddings) != (backbone is not None):
        raise ValueError(
            f"embeddings={list(embeddings)} and backbone={backbone!r}: give both (cameras and the "
            "decomposer backbone that embeds them) or neither"
        )
    if not embeddings:
        return cfg, {}, {}
    from demos.cache import validate_once

    from .embeddings import folder_embeddings

    validate_once(folder)  # a broken folder is named before anything is fitted or embedded
    with _main_first(procs):  # the main process fits and caches; the others read the cache
        record, arrays, files = folder_embeddings(
            folder,
            embeddings,
            backbone,
            weights=opts.backbone_weights,
            fit_args=opts.backbone_fit,
            device=procs.device,
            progress=opts.progress and procs.is_main,
        )
    dims = {k: int(a[0].shape[1]) for k, a in arrays.items()}
    return cfg.replace(embeddings=dims, backbone=record), arrays, files


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


def _optimisation(cfg: PolicyConfig, opts: TrainOptions, device: torch.device):
    """Model (drawing its initial weights), AdamW, warm-up + cosine schedule, weight EMA."""
    model = BesoModel(cfg).to(device)
    opt = torch.optim.AdamW(
        model.parameters(),
        opts.lr,
        betas=tuple(opts.betas),
        weight_decay=opts.weight_decay,
        fused=True,
    )
    schedule = _warmup_cosine(opts.warmup_steps, opts.steps, opts.min_lr_ratio)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, schedule)
    return model, opt, sched, WeightAverage(model, opts.ema_decay)


def _warmup_cosine(warmup: int, total: int, floor: float) -> Callable[[int], float]:
    def factor(step: int) -> float:
        if step < warmup:
            return (step + 1) / warmup
        progress = min(1.0, (step - warmup) / max(1, total - warmup))
        return floor + (1 - floor) * 0.5 * (1 + math.cos(math.pi * progress))

    return factor


def _batch_stream(dataset, cfg: PolicyConfig, opts: TrainOptions, procs: Processes, start: int):
    """This process's shard of the batches of steps ``start+1 .. steps``."""
    batches = Batches(dataset, opts.batch_size, opts.seed, cfg, shard=(procs.rank, procs.world))
    steps = range(start, opts.steps)
    if opts.num_workers > 0:
        return torch.utils.data.DataLoader(  # own generator: leave the global RNG untouched
            batches,
            batch_size=None,
            sampler=steps,
            num_workers=opts.num_workers,
            generator=torch.Generator().manual_seed(opts.seed),
        )
    return (batches[s] for s in steps)
