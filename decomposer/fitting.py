"""Offline backbones (``pixels``, ``state``, ``vip_local``): fitted on a demo folder.

Why a module of its own: fitting reads the demo folder and trains (PCA, standardisation, a
small conv net with the VIP objective), which the pretrained backbones never need.
``fit_backbone`` saves a safetensors file in ``DEMO_DIR/cache/backbones/``, named by a
fingerprint of the inputs and parameters, so a second run reuses it.
"""

from __future__ import annotations

import hashlib
import inspect
import json
import os
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from torch import nn

from demos.cache import fingerprint
from demos.episode import LOWDIM
from demos.errors import DemoFolderError
from demos.folder import DemoFolder
from demos.video import resize_center_crop

from . import nets
from .errors import DecomposerError
from .registry import BACKBONES, get_spec
from .weights import _save_offline


def default_camera(folder: DemoFolder, camera: str | None = None) -> str:
    cams = list(folder.info.cameras)
    if camera is None:
        if not cams:
            raise DecomposerError("dataset.json: the folder has no cameras; use backbone=state")
        return cams[0]
    if camera not in cams:
        raise DecomposerError(f"dataset.json: no camera {camera!r} (cameras: {cams})")
    return camera


def _sample_frames(folder: DemoFolder, camera: str, size: int, max_frames: int) -> list[np.ndarray]:
    """Per episode, its frames at size x size (uint8), every k-th so all fit in max_frames."""
    lengths = [len(folder.read_lowdim(ep, check=False)["action"]) for ep in folder.episode_ids]
    step = max(1, int(np.ceil(sum(lengths) / max_frames)))
    out = []
    for ep in folder.episode_ids:
        frames = [
            resize_center_crop(f, (size, size))
            for i, f in enumerate(folder.iter_frames(ep, camera))
            if i % step == 0
        ]
        if frames:
            out.append(np.stack(frames))
    if not out:
        raise DecomposerError(f"{folder.root}: no episodes with frames of {camera!r}")
    return out


def fit_pixels(
    folder: DemoFolder, camera: str, out: Path, *, components: int = 32, max_frames: int = 5000
) -> Path:
    spec = BACKBONES["pixels"]
    videos = _sample_frames(folder, camera, spec.size, max_frames)
    x = np.concatenate(videos).reshape(-1, spec.size, spec.size, 3)
    x = torch.from_numpy(x).permute(0, 3, 1, 2).float().div_(255.0).flatten(1)
    mean = x.mean(0)
    k = max(1, min(components, len(x) - 1, x.shape[1]))
    torch.manual_seed(0)  # randomised SVD: O(N * pixels * k), not the full O(N * pixels^2)
    _, _, v = torch.svd_lowrank(x - mean, q=min(k + 8, *x.shape), niter=4)
    info = {"camera": camera, "components": k, "frames": len(x)}
    return _save_offline(out, "pixels", {"mean": mean, "components": v[:, :k].T}, info)


def state_rows(folder: DemoFolder, episode: str, keys: list[str] | None = None) -> np.ndarray:
    keys = list(folder.info.state) if keys is None else keys
    return _columns(folder.read_lowdim(episode), keys, folder.rel(episode, LOWDIM))


def _columns(lowdim, keys: list[str], where: str) -> np.ndarray:
    """(T, sum of dims) float32: the ``keys`` of one episode's lowdim arrays, side by side."""
    missing = [k for k in keys if k not in lowdim]
    if missing:
        raise DemoFolderError(f"state keys {missing} are missing", where)
    return np.concatenate(
        [np.asarray(lowdim[k], np.float32).reshape(len(lowdim[k]), -1) for k in keys], 1
    )


def mean_std(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-column mean and standard deviation; a constant column gets std 1, so it
    standardises to 0 rather than blowing up."""
    mean, std = x.mean(0), x.std(0)
    return mean, np.where(std > 1e-6, std, 1.0)


def fit_state(folder: DemoFolder, camera: str | None, out: Path) -> Path:
    keys = list(folder.info.state)
    if not keys:
        raise DecomposerError("dataset.json: no state keys to embed; use an image backbone")
    x = np.concatenate([state_rows(folder, ep, keys) for ep in folder.episode_ids])
    mean, std = mean_std(x)
    info = {"keys": keys, "rows": len(x)}
    return _save_offline(
        out, "state", {"mean": torch.from_numpy(mean), "std": torch.from_numpy(std)}, info
    )


def vip_loss(net: nn.Module, o0, og, ot, ot1, gamma: float = 0.98) -> torch.Tensor:
    """The VIP objective (Ma et al. 2023) with value V(o; g) = -||phi(o) - phi(g)|| and
    reward -1 until the goal: keep starts near in value to their goal ((1-gamma) term) while
    every step (o_t -> o_t+1) must bring the distance to the goal down, weighted by a
    log-mean-exp so that the steps that break this most count most."""
    n = len(o0)
    e = net(torch.cat([o0, og, ot, ot1]))
    e0, eg, et, et1 = e[:n], e[n : 2 * n], e[2 * n : 3 * n], e[3 * n :]
    v0 = -torch.linalg.vector_norm(e0 - eg, dim=1)
    vt = -torch.linalg.vector_norm(et - eg, dim=1)
    vt1 = -torch.linalg.vector_norm(et1 - eg, dim=1)
    r = -1.0
    return (1 - gamma) * (-v0).mean() + torch.logsumexp(-(r + gamma * vt1 - vt), 0) - np.log(n)


def fit_vip_local(
    folder: DemoFolder,
    camera: str,
    out: Path,
    *,
    steps: int = 300,
    batch: int = 32,
    dim: int = 32,
    width: int = 16,
    size: int = 32,
    lr: float = 1e-3,
    seed: int = 0,
    max_frames: int = 20000,
    threads: int | None = 1,
) -> Path:
    """Train ``nets.SmallConv`` with ``vip_loss`` on the folder's videos (CPU: seconds).

    Each sample: an episode, a start s and goal g > s in it, and a step t -> t+1 in [s, g).
    ``threads``: torch CPU threads while training (1: a net this small runs fastest on one
    core, and a shared machine stays responsive); None leaves torch's setting.
    """
    videos = [v for v in _sample_frames(folder, camera, size, max_frames) if len(v) >= 2]
    if not videos:
        raise DecomposerError(f"{folder.root}: vip_local needs episodes of >= 2 frames")
    before = torch.get_num_threads()
    if threads:
        torch.set_num_threads(threads)
    try:
        net, losses = _train_vip(videos, steps, batch, dim, width, lr, seed)
    finally:
        torch.set_num_threads(before)
    info = {
        "camera": camera,
        "dim": dim,
        "width": width,
        "size": size,
        "steps": steps,
        "seed": seed,
        "loss_first": losses[0] if losses else None,
        "loss_last": float(np.mean(losses[-20:])) if losses else None,
    }
    return _save_offline(out, "vip_local", net.state_dict(), info)


def _train_vip(videos, steps, batch, dim, width, lr, seed) -> tuple[nn.Module, list[float]]:
    spec = BACKBONES["vip_local"]
    rng = np.random.default_rng(seed)
    torch.manual_seed(seed)
    net = nets.SmallConv(dim, width)
    opt = torch.optim.Adam(net.parameters(), lr=lr)
    mean = torch.tensor(spec.norm[0]).view(1, 3, 1, 1)
    std = torch.tensor(spec.norm[1]).view(1, 3, 1, 1)

    def prep(frames: np.ndarray) -> torch.Tensor:
        x = torch.from_numpy(frames).permute(0, 3, 1, 2).float().div_(255.0)
        return (x - mean) / std

    losses = []
    for _ in range(steps):
        idx = rng.integers(len(videos), size=batch)
        picks = []
        for i in idx:
            T = len(videos[i])
            s = rng.integers(0, T - 1)
            g = rng.integers(s + 1, T)
            t = rng.integers(s, g)
            picks.append((videos[i][s], videos[i][g], videos[i][t], videos[i][t + 1]))
        o0, og, ot, ot1 = (prep(np.stack(p)) for p in zip(*picks, strict=True))
        loss = vip_loss(net, o0, og, ot, ot1)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    return net, losses


ARM_KEYS = ("joint_pos", "eef_pos", "eef_quat", "eef_rot6d", "gripper_qpos")  # never objects


def fit_bc_local(
    folder: DemoFolder,
    camera: str,
    out: Path,
    *,
    proprio: list[str] | None = None,
    horizon: int = 8,
    steps: int = 4000,
    batch: int = 64,
    keypoints: int = 32,
    width: int = 32,
    size: int = 84,
    shift: int = 4,
    brightness: float = 0.0,
    lr: float = 1e-3,
    seed: int = 0,
    max_frames: int = 100_000,
    threads: int | None = None,
) -> Path:
    """Train ``nets.KeypointConv`` on the folder's demos by behaviour cloning, then freeze it.

    The net sees one camera's frame and a small head also sees the arm's own state
    (``proprio``; default: the folder's keys among ``ARM_KEYS``, never object poses), and both
    learn to predict the next ``horizon`` actions (standardised, mean squared error), with
    DrQ random shifts of ``shift`` pixels and, with ``brightness`` b > 0, each frame's pixels
    scaled by a factor drawn from [1 - b, 1 + b] (demos recorded under one lighting).
    What the net must learn is what the arm's state cannot tell: where the objects are,
    relative to the gripper. The first stage of "train end to end briefly, then freeze": the
    frozen keypoints are then cached, and a policy trains on them at state-policy speed.
    Frames are held in memory at ``size`` (21 kB each at 84 x 84): above ``max_frames``, every
    k-th frame of each episode is kept (the actions all are).
    """
    if proprio is None:
        proprio = [k for k in folder.info.state if k in ARM_KEYS]
    data = _bc_data(folder, camera, list(proprio), size, max_frames)
    before = torch.get_num_threads()
    if threads:
        torch.set_num_threads(threads)
    try:
        net, losses = _train_bc(*data, horizon, steps, batch, keypoints, width, shift,
                                brightness, lr, seed)  # fmt: skip
    finally:
        torch.set_num_threads(before)
    info = {
        "camera": camera,
        "dim": net.dim,
        "keypoints": keypoints,
        "width": width,
        "size": size,
        "proprio": list(proprio),
        "horizon": horizon,
        "steps": steps,
        "brightness": brightness,
        "seed": seed,
        "frames": int(sum(len(v) for v in data[0])),
        "loss_first": float(np.mean(losses[:20])) if losses else None,
        "loss_last": float(np.mean(losses[-20:])) if losses else None,
    }
    return _save_offline(out, "bc_local", net.state_dict(), info)


def _bc_data(folder: DemoFolder, camera: str, proprio: list[str], size: int, max_frames: int):
    """Per episode: uint8 frames (K, size, size, 3) at time steps ``kept`` (K,), proprio rows
    (T, P) and actions (T, A); every ``step``-th frame is kept so all fit in ``max_frames``."""
    from tqdm.auto import tqdm

    lowdim = {ep: folder.read_lowdim(ep) for ep in folder.episode_ids}  # small; read once
    step = max(1, int(np.ceil(sum(len(a["action"]) for a in lowdim.values()) / max_frames)))
    videos, kept, rows, actions = [], [], [], []
    for ep in tqdm(folder.episode_ids, desc=f"bc_local: frames of {camera}", disable=None):
        a = lowdim[ep]
        n = len(a["action"])
        frames = [
            resize_center_crop(f, (size, size))
            for t, f in enumerate(folder.iter_frames(ep, camera))
            if t % step == 0 and t < n
        ]
        if n < 2 or not frames:
            continue
        videos.append(np.stack(frames))
        kept.append(np.arange(0, n, step)[: len(frames)])
        rows.append(_columns(a, proprio, folder.rel(ep, LOWDIM)) if proprio else np.zeros((n, 0)))
        actions.append(np.asarray(a["action"], np.float32).reshape(n, -1))
    if not videos:
        raise DecomposerError(f"{folder.root}: bc_local needs episodes of >= 2 frames")
    return videos, kept, rows, actions


def _standardise(parts: list[np.ndarray]) -> list[torch.Tensor]:
    mean, std = mean_std(np.concatenate(parts))
    return [torch.from_numpy(((p - mean) / std).astype(np.float32)) for p in parts]


def random_shift(x: torch.Tensor, pad: int) -> torch.Tensor:
    """DrQ's augmentation: pad by ``pad`` pixels (edge copies), crop back at a random offset,
    one offset per image."""
    if pad <= 0:
        return x
    n, _, h, w = x.shape
    x = torch.nn.functional.pad(x, (pad, pad, pad, pad), mode="replicate")
    top = torch.randint(0, 2 * pad + 1, (n, 1, 1, 1))
    left = torch.randint(0, 2 * pad + 1, (n, 1, 1, 1))
    rows = (top + torch.arange(h).view(1, 1, h, 1)).expand(n, x.shape[1], h, w + 2 * pad)
    x = x.gather(2, rows)
    cols = (left + torch.arange(w).view(1, 1, 1, w)).expand(n, x.shape[1], h, w)
    return x.gather(3, cols)


def random_brightness(x: torch.Tensor, amount: float) -> torch.Tensor:
    """Each image of ``x`` (N, C, H, W in [0, 1]) times a factor from [1 - amount, 1 + amount],
    clipped to [0, 1]: a light that is dimmer or brighter than the demos'."""
    if amount <= 0:
        return x
    gain = 1.0 + (2.0 * torch.rand(x.shape[0], 1, 1, 1) - 1.0) * amount
    return (x * gain).clamp_(0.0, 1.0)


def _train_bc(videos, kept, proprio_rows, actions, horizon, steps, batch, keypoints, width, shift,
              brightness, lr, seed) -> tuple[nn.Module, list[float]]:  # fmt: skip
    from tqdm.auto import tqdm

    spec = BACKBONES["bc_local"]
    rng = np.random.default_rng(seed)
    torch.manual_seed(seed)
    states, acts = _standardise(proprio_rows), _standardise(actions)
    p_dim, a_dim = states[0].shape[1], acts[0].shape[1]
    net = nets.KeypointConv(keypoints, width)
    head = nn.Sequential(
        nn.Linear(net.dim + p_dim, 256), nn.ReLU(), nn.Linear(256, 256), nn.ReLU(),
        nn.Linear(256, horizon * a_dim),
    )  # fmt: skip
    opt = torch.optim.AdamW([*net.parameters(), *head.parameters()], lr=lr, weight_decay=1e-4)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, lr, total_steps=max(1, steps), pct_start=0.05)
    mean = torch.tensor(spec.norm[0]).view(1, 3, 1, 1)
    std = torch.tensor(spec.norm[1]).view(1, 3, 1, 1)
    offsets = np.arange(horizon)

    def chunk(e: int, t: int) -> torch.Tensor:  # the next ``horizon`` actions, the last repeated
        return acts[e][np.minimum(t + offsets, len(acts[e]) - 1)].flatten()

    losses = []
    for _ in tqdm(range(steps), desc="bc_local: fitting", disable=None):
        eps = rng.integers(len(videos), size=batch)
        js = [int(rng.integers(len(videos[e]))) for e in eps]
        frames = np.stack([videos[e][j] for e, j in zip(eps, js, strict=True)])
        ts = [int(kept[e][j]) for e, j in zip(eps, js, strict=True)]
        x = torch.from_numpy(frames).permute(0, 3, 1, 2).float().div_(255.0)
        x = random_shift((random_brightness(x, brightness) - mean) / std, shift)
        s = torch.stack([states[e][t] for e, t in zip(eps, ts, strict=True)])
        target = torch.stack([chunk(e, t) for e, t in zip(eps, ts, strict=True)])
        pred = head(torch.cat([net(x), s], 1))
        loss = (pred - target).square().mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
        sched.step()
        losses.append(loss.item())
    return net, losses


FITTERS: dict[str, Callable[..., Path]] = {
    "pixels": fit_pixels,
    "state": fit_state,
    "vip_local": fit_vip_local,
    "bc_local": fit_bc_local,
}


def fit_backbone(
    name: str, folder: DemoFolder | str | os.PathLike, camera: str | None = None, **params
) -> Path:
    """Fit an offline backbone on ``folder`` (or reuse the fit made from the same files and
    parameters): the path of its safetensors file in ``DEMO_DIR/cache/backbones/``."""
    spec = get_spec(name)
    if not spec.offline:
        raise DecomposerError(f"backbone {name} is pretrained: nothing to fit")
    folder = folder if isinstance(folder, DemoFolder) else DemoFolder(folder)
    if spec.inputs == "state":
        camera = None
        sources = [folder.episode_dir(ep) / LOWDIM for ep in folder.episode_ids]
    else:
        camera = default_camera(folder, camera)
        sources = [folder.video_path(ep, camera) for ep in folder.episode_ids]
        if spec.fits_actions:  # new actions, a new fit
            sources += [folder.episode_dir(ep) / LOWDIM for ep in folder.episode_ids]
    if not sources:
        raise DecomposerError(f"{folder.root}: no episodes to fit backbone {name} on")
    fit = FITTERS[name]
    try:  # the key holds every parameter, defaults included: new defaults mean a new fit
        bound = inspect.signature(fit).bind(folder, camera, None, **params)
    except TypeError as e:
        raise DecomposerError(f"fit_args for backbone {name}: {e}") from None
    bound.apply_defaults()
    resolved = {k: v for k, v in bound.arguments.items() if k not in ("folder", "camera", "out")}
    key = fingerprint(sources) + json.dumps(resolved, sort_keys=True, default=str)
    tag = hashlib.sha1(key.encode()).hexdigest()[:16]
    out = folder.root / "cache" / "backbones" / f"{name}-{camera or 'state'}-{tag}.safetensors"
    if out.is_file():
        return out
    out.parent.mkdir(parents=True, exist_ok=True)
    return fit(folder, camera, out, **params)
