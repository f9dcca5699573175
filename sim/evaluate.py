"""Evaluating a policy checkpoint in simulation (``uvdiff-eval``), in parallel worker processes.

Episode i uses seed ``seed + i`` (and, for a task with orders, ``orders[i % len(orders)]``),
whichever worker runs it and however many workers there are: the env is reset with that seed and
the policy's sampler is seeded with it, so an evaluation can be rerun or extended exactly.

A goal-conditioned policy (trained with goal final, future or uvd) is told the task by a demo:
by default the one the scripted expert makes for the same seed (the same scene, the same order),
or episode ``i % n`` of a demo folder. goal=final/future: the demo's last observation is the
goal. goal=uvd: the demo's subgoals, walked by a subgoal relay (``decomposer.task``, the same
path the deploy loop takes).

Episodes run in worker processes (``sim.pool``): a worker that dies costs only the episode it
was running. The rollout is ``sim.eval_episode``, the report ``sim.eval_report``. Writes
``eval_info.json``, ``episodes.jsonl`` (one line per episode as they finish),
``videos/episode_XXX.mp4`` for the first episodes, and ``report.md`` with ``report.png``.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from functools import partial
from pathlib import Path
from typing import Any

from decomposer.task import RelaySettings
from demos.atomic import atomic_write_bytes
from policies.embeddings import embedded_cameras

from .errors import SimError, UnknownEnvError
from .eval_episode import VIDEOS, EpisodeRunner, failed_episode, worker_runner
from .eval_report import REPORT_MD, REPORT_PNG, eval_info, write_report
from .orders import resolve_orders
from .peer import PeerPolicy, is_peer_spec
from .pool import BACKENDS, run_episodes
from .scene import SceneVariant
from .tasks import ENVS

EVAL_INFO, EPISODES_LOG = "eval_info.json", "episodes.jsonl"
__all__ = [
    "EPISODES_LOG",
    "EVAL_INFO",
    "REPORT_MD",
    "REPORT_PNG",
    "EvalJob",
    "EvalResult",
    "EvalSettings",
    "evaluate",
]


@dataclass
class EvalResult:
    """What ``evaluate`` wrote (``info`` is the content of eval_info.json)."""

    out_dir: Path
    info: dict[str, Any]

    @property
    def pc_success(self) -> float:
        return float(self.info["pc_success"])

    @property
    def episodes(self) -> list[dict[str, Any]]:
        return self.info["per_episode"]


# ------------------------------------------------------------------------------ settings
@dataclass(frozen=True)
class EvalSettings:
    """How an evaluation runs (``configs/eval.yaml`` maps onto it; defaults live here).

    ``workers``: worker processes (0 runs the episodes in this process, without crash
    isolation). ``goal_source``: "expert" (the scripted expert's demo for the episode's seed) or
    a demo folder (episode i uses its episode i % n). ``orders`` (pickplace4, arrange): a split
    name or a list of orders, round robin; None lets each seed draw its order. ``videos``:
    episodes 0..videos-1 are filmed with ``video_camera`` at ``video_size``. ``max_steps``:
    episode length limit (None: the task's horizon). ``relay``: how a goal=uvd policy walks the
    task demo's subgoals and how the demo is cut (``decomposer.task``). ``inference``: overrides
    of the checkpoint's inference settings (sampler, steps, schedule, guidance, n_action_steps,
    temporal_ensemble, rtc, delay; None values are left out). ``scene``: a look the demos never
    had (cameras moved, lights changed: ``sim.scene``), for robustness checks.
    """

    episodes: int = 50
    seed: int = 0
    workers: int = 2
    goal_source: str = "expert"
    orders: str | Sequence[Any] | None = None
    videos: int = 2
    video_camera: str = "agentview"
    video_size: tuple[int, int] = (128, 128)
    max_steps: int | None = None
    fast_render: bool = True
    progress: bool = True
    relay: RelaySettings = field(default_factory=RelaySettings)
    inference: Mapping[str, Any] = field(default_factory=dict)
    scene: SceneVariant = field(default_factory=SceneVariant)
    task_demos: str | None = None  # a folder keeping each seed's expert task demo for reuse
    backend: str = "local"  # local worker processes, or ray (sim.ray_pool)
    address: str | None = None  # ray: None starts a local instance; "auto" / "host:port" joins


@dataclass
class EvalJob:
    """What every worker needs, checked and resolved once before any worker starts."""

    checkpoint: str
    env_name: str
    settings: EvalSettings
    orders: list | None  # resolved from settings.orders
    goal: str
    goal_keys: list[str]
    goal_stats: dict[str, Any]
    cameras: list[str]  # rendered for the policy
    embedded: dict[str, str]  # embedding key -> its camera
    image_size: list[int]
    overrides: dict[str, Any]  # inference overrides, None values dropped
    policy_settings: dict[str, Any]  # the policy's inference settings after the overrides
    relay_embedding: str = ""  # goal=uvd: what the relay compares (for the report)
    out_dir: str = ""


# ------------------------------------------------------------------------------ the library call
def evaluate(
    checkpoint: str | os.PathLike,
    env_name: str,
    episodes: int | None = None,
    seed: int | None = None,
    *,
    out_dir: str | os.PathLike,
    settings: EvalSettings | None = None,
    sampler: str | None = None,
    steps: int | None = None,
    **changes: Any,
) -> EvalResult:
    """Roll out checkpoint ``checkpoint`` in env ``env_name`` as ``settings`` say.

    ``episodes``, ``seed`` and any other ``EvalSettings`` field given as a keyword change
    ``settings`` (default ``EvalSettings()``); ``sampler`` and ``steps`` (denoising steps) are
    shortcuts into ``inference``. Episode i uses seed ``seed + i``. Raises SimError (or
    UnknownEnvError, CheckpointError) before any worker starts when the input cannot work.
    """
    from dataclasses import replace

    given = {k: v for k, v in (("episodes", episodes), ("seed", seed)) if v is not None}
    try:
        s = replace(settings or EvalSettings(), **given, **changes)
    except TypeError as e:  # a keyword that is not a setting
        raise SimError(f"evaluate: {e}") from None
    shortcuts = {k: v for k, v in (("sampler", sampler), ("steps", steps)) if v is not None}
    if shortcuts:
        s = replace(s, inference={**s.inference, **shortcuts})
    job = _prepare(checkpoint, env_name, s)
    out = Path(out_dir)
    (out / VIDEOS).mkdir(parents=True, exist_ok=True)
    job.out_dir = str(out)
    log = out / EPISODES_LOG
    log.write_text("")
    results: dict[int, dict[str, Any]] = {}
    bar = _progress(s.episodes, env_name, s.progress)
    t0 = time.perf_counter()

    def record(r: dict[str, Any]) -> None:
        video = r.pop("video_bytes", None)  # from a Ray node
        if video is not None:
            atomic_write_bytes(out / r["video"], video)
        results[r["index"]] = r
        with open(log, "a") as f:
            f.write(json.dumps({k: v for k, v in r.items() if k != "strip"}) + "\n")
        n_ok = sum(x["success"] for x in results.values())
        bar.set_postfix(success=f"{n_ok}/{len(results)}", refresh=False)
        bar.update(1)

    make_runner = partial(worker_runner if s.workers else EpisodeRunner, job)
    started = False
    try:
        if s.backend == "ray":  # the checkpoint travels once per node, in Ray's object store
            import ray

            from .eval_episode import ShippedRunner
            from .ray_pool import connect, pack

            started = connect(s.address, max(1, s.workers))
            digest, data = pack(job.checkpoint)
            shipped = (digest, ray.put(data), Path(job.checkpoint).name)
            make_runner = partial(ShippedRunner, job, shipped)
        run_episodes(make_runner, range(s.episodes), s.workers, record,
                     partial(_failed_with_seed, s.seed), backend=s.backend,
                     address=s.address)  # fmt: skip
    finally:
        bar.close()
        if started:
            import ray

            ray.shutdown()
    wall = time.perf_counter() - t0
    per_episode = [results[i] for i in range(s.episodes)]
    strip = next((r.get("strip") for r in per_episode if r.get("strip") is not None), None)
    for r in per_episode:
        r.pop("strip", None)
    info = eval_info(job, per_episode, wall)
    (out / EVAL_INFO).write_text(json.dumps(info, indent=2) + "\n")
    write_report(info, out, strip)
    return EvalResult(out, info)


def _failed_with_seed(seed: int, i: int, why: str, wall: float) -> dict[str, Any]:
    return failed_episode(i, seed, why, wall)


def _progress(total: int, env_name: str, enabled: bool):
    from tqdm import tqdm

    return tqdm(total=total, desc=f"eval {env_name}", unit="ep", disable=not enabled)


# ------------------------------------------------------------------------------ checks up front
def _prepare(checkpoint, env_name: str, s: EvalSettings) -> EvalJob:
    """Everything that can be wrong with the input, found before a worker starts."""
    from policies.checkpoint import load_config, load_stats, resolve

    if env_name not in ENVS:
        raise UnknownEnvError(f"unknown env {env_name!r}; valid envs: {', '.join(ENVS)}")
    if s.episodes < 1 or s.workers < 0:
        raise SimError(f"episodes must be >= 1 and workers >= 0, got {s.episodes} and {s.workers}")
    if s.backend not in BACKENDS:
        raise SimError(f"backend={s.backend!r}: use one of {', '.join(BACKENDS)}")
    if s.videos < 0 or (s.max_steps is not None and s.max_steps < 1):
        raise SimError(f"videos must be >= 0 and max_steps >= 1, got {s.videos} and {s.max_steps}")
    if not isinstance(s.relay, RelaySettings):
        raise SimError(f"relay must be a decomposer.task.RelaySettings, got {s.relay!r}")
    orders = resolve_orders(s.orders, env_name)
    overrides = {k: v for k, v in s.inference.items() if v is not None}
    if is_peer_spec(checkpoint):  # another stack's policy in its own process (sim.peer)
        return _prepare_peer(Path(checkpoint).resolve(), env_name, s, orders, overrides)
    ckpt = resolve(checkpoint)
    cfg, _ = load_config(ckpt)
    image_size = _check_observations(cfg, env_name, ckpt, s.video_camera if s.videos else None)
    policy = _load_policy(ckpt, overrides)  # the weights, stats and settings load here too
    goal_keys = cfg.resolved_goal_keys
    goal_stats = load_stats(ckpt, [k for k in goal_keys if k in cfg.state])
    relay_embedding = ""
    if cfg.goal == "uvd":
        from policies.embeddings import relay_embedder

        try:  # what the relay compares: the goal's backbone on its camera, or its state
            relay_embedding = relay_embedder(ckpt, cfg, goal_stats)[1]
        except ValueError as e:
            raise SimError(str(e)) from None
    if s.goal_source != "expert" and cfg.uses_goal:
        _check_goal_folder(s.goal_source, goal_keys, cfg)
    s = replace(s, video_size=tuple(int(v) for v in s.video_size))
    if cfg.goal == "uvd":  # task demos are cut as the training subgoals were
        s = replace(s, relay=s.relay.for_policy(cfg.subgoal_cut))
    return EvalJob(
        checkpoint=str(ckpt),
        env_name=env_name,
        settings=s,
        orders=orders,
        goal=cfg.goal,
        goal_keys=goal_keys,
        goal_stats=goal_stats,
        relay_embedding=relay_embedding,
        cameras=list(_policy_cameras(cfg)),
        embedded=embedded_cameras(cfg),
        image_size=image_size,
        overrides=overrides,
        policy_settings=dict(policy.settings),
    )


def _prepare_peer(spec: Path, env_name: str, s: EvalSettings, orders, overrides) -> EvalJob:
    """A peer's job: its hello says what it reads, checked against the env like a checkpoint."""
    if overrides:
        raise SimError(f"{spec}: inference settings {sorted(overrides)} are the peer's own; "
                       "set them in the peer's command")  # fmt: skip
    peer = PeerPolicy(spec)
    try:
        cfg = peer.config
        image_size = _check_observations(cfg, env_name, spec, s.video_camera if s.videos else None)
    finally:
        peer.close()
    return EvalJob(checkpoint=str(spec), env_name=env_name,
                   settings=replace(s, video_size=tuple(int(v) for v in s.video_size)),
                   orders=orders, goal="none", goal_keys=[], goal_stats={}, relay_embedding="",
                   cameras=list(_policy_cameras(cfg)), embedded=embedded_cameras(cfg),
                   image_size=image_size, overrides={},
                   policy_settings=dict(peer.settings))  # fmt: skip


def _check_observations(cfg, env_name: str, ckpt: Path, video_camera: str | None):
    """The env must give every observation key the checkpoint reads; returns the image size."""
    from .envs import make_env

    with make_env(env_name) as env:
        state = dict(env.spec.state)
        cameras = list(env.raw.sim.model.camera_names)
        probe = next(iter(_policy_cameras(cfg)), video_camera)
        if probe in cameras:  # frames are needed: a renderer that cannot start fails here,
            env.render(probe, (8, 8))  # once, naming MUJOCO_GL, not in every worker
    problems = [f"{k} (a {d}-vector)" for k, d in cfg.state.items() if k not in state]
    problems += [
        f"{k} with {d} numbers (the env's {k} has {state[k]})"
        for k, d in cfg.state.items()
        if k in state and state[k] != d
    ]
    problems += [f"camera {c}" for c in cfg.cameras if c not in cameras]
    embedded = embedded_cameras(cfg)
    problems += [
        f"embedding {k} (the checkpoint records no backbone camera for it)"
        for k in cfg.embeddings
        if k not in embedded
    ]
    problems += [f"camera {c} (for {k})" for k, c in embedded.items() if c not in cameras]
    if problems:
        raise SimError(
            f"{ckpt} needs observations env {env_name} cannot provide: {'; '.join(problems)}. "
            f"The env provides state {', '.join(f'{k} ({d})' for k, d in state.items())} "
            f"and cameras {', '.join(cameras)}"
        )
    if video_camera is not None and video_camera not in cameras:
        raise SimError(f"env {env_name} has no camera {video_camera!r}; cameras: {cameras}")
    sizes = {tuple(hw) for hw in _policy_cameras(cfg).values()}
    if len(sizes) > 1:
        raise SimError(
            f"{ckpt}: cameras of different sizes {_policy_cameras(cfg)} are not supported"
        )
    return list(sizes.pop()) if sizes else [84, 84]


def _policy_cameras(cfg) -> dict[str, list[int]]:
    """Every camera the env renders for the policy, with its [h, w]: the cameras it encodes
    itself and those its frozen backbone embeds (the policy embeds the raw frames)."""
    cams = {c: list(hw) for c, hw in cfg.cameras.items()}
    for c, entry in ((cfg.backbone or {}).get("cameras") or {}).items():
        cams.setdefault(c, list(entry.get("size") or [84, 84]))
    return cams


def _load_policy(ckpt: Path, overrides: Mapping[str, Any]):
    from policies import Policy

    try:
        return Policy.from_pretrained(ckpt, **overrides)
    except ValueError as e:  # a bad sampler or steps override
        raise SimError(f"{ckpt}: {e}") from None


def _check_goal_folder(path: str, goal_keys: Sequence[str], cfg) -> None:
    from demos import DemoFolder
    from demos.errors import DemoFolderError

    try:
        folder = DemoFolder(path)
        info = folder.info
    except (DemoFolderError, OSError) as e:
        raise SimError(f"goal_source={path!r} is not 'expert' or a demo folder: {e}") from None
    have = {**info.state, **{c: list(hw) for c, hw in info.cameras.items()}}
    embedded = embedded_cameras(cfg)  # an embedding goal comes from its camera's frames
    missing = [embedded.get(k, k) for k in goal_keys if embedded.get(k, k) not in have]
    if missing or not len(folder):
        raise SimError(
            f"goal demo folder {path} lacks the goal keys {missing} or has no episodes"
            if missing
            else f"goal demo folder {path} has no episodes"
        )
    for c in (k for k in goal_keys if k in cfg.cameras):
        if list(info.cameras[c]) != list(cfg.cameras[c]):
            raise SimError(f"goal demo folder {path}: camera {c} is {info.cameras[c]}, the policy "
                           f"sees {cfg.cameras[c]}")  # fmt: skip
