"""Evaluating a policy checkpoint in simulation (``uvdiff-eval``), in parallel worker processes.

Episode i uses seed ``seed + i`` (and, for pickplace4, ``orders[i % len(orders)]``), whichever
worker runs it and however many workers there are: the env is reset with that seed and the
policy's sampler is seeded with it, so an evaluation can be rerun or extended exactly.

A goal-conditioned policy (trained with goal final, future or uvd) is told the task by a demo:
by default the one the scripted expert makes for the same seed (the same scene, the same order),
or episode ``i % n`` of a demo folder. goal=final/future: the demo's last observation is the
goal. goal=uvd: the demo's subgoals, walked by a subgoal relay (``decomposer.task``, the same
path the deploy loop takes).

Each worker reports every episode it finishes; a worker that dies (killed, segfault) costs only
the episode it was running, which is reported failed with the exit code, and a fresh worker
takes over the rest. Writes ``eval_info.json``, ``episodes.jsonl`` (one line per episode as
they finish), ``videos/episode_XXX.mp4`` for the first episodes, and ``report.md`` with
``report.png``.
"""

from __future__ import annotations

import json
import multiprocessing as mp
import os
import queue
import time
import traceback
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from .errors import SimError, UnknownEnvError
from .orders import resolve_orders
from .tasks import ENVS

if TYPE_CHECKING:
    from decomposer.task import RelaySettings

EVAL_INFO, EPISODES_LOG, REPORT_MD, REPORT_PNG, VIDEOS = (
    "eval_info.json",
    "episodes.jsonl",
    "report.md",
    "report.png",
    "videos",
)
STRIP_FRAMES = 6  # frames of one rollout in the report's film strip


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


# ------------------------------------------------------------------------------ the library call
def evaluate(
    checkpoint: str | os.PathLike,
    env_name: str,
    episodes: int = 50,
    seed: int = 0,
    *,
    out_dir: str | os.PathLike,
    workers: int = 2,
    goal_source: str = "expert",
    orders: str | Sequence[Any] | None = None,
    videos: int = 2,
    video_camera: str = "agentview",
    video_size: tuple[int, int] = (128, 128),
    sampler: str | None = None,
    steps: int | None = None,
    max_steps: int | None = None,
    relay: RelaySettings | None = None,
    fast_render: bool = True,
    progress: bool = True,
    inference: Mapping[str, Any] | None = None,
) -> EvalResult:
    """Roll out checkpoint ``checkpoint`` in env ``env_name`` for ``episodes`` seeds.

    ``workers``: worker processes (0 runs the episodes in this process, without crash
    isolation). ``goal_source``: "expert" (the scripted expert's demo for the episode's seed)
    or a demo folder (episode i uses its episode i % n). ``orders`` (pickplace4): a split name
    or a list of orders, round robin; None lets each seed draw its order. ``videos``: episodes
    0..videos-1 are filmed with ``video_camera``. ``sampler`` / ``steps``, and any other
    inference setting in ``inference`` (n_action_steps, guidance, schedule, ...): overrides.
    ``max_steps``: episode length limit (default: the task's horizon). ``relay``: how a goal=uvd
    policy walks the task demo's subgoals and how the demo is cut (``decomposer.task``;
    default ``RelaySettings()``).
    Raises SimError (or UnknownEnvError, CheckpointError) before any worker starts when the
    input cannot work.
    """
    job = _prepare(
        checkpoint,
        env_name,
        episodes,
        workers,
        goal_source,
        orders,
        videos,
        video_camera,
        video_size,
        sampler,
        steps,
        max_steps,
        relay,
        fast_render,
        inference,
    )
    out_dir = Path(out_dir)
    (out_dir / VIDEOS).mkdir(parents=True, exist_ok=True)
    job["out_dir"] = str(out_dir)
    log = out_dir / EPISODES_LOG
    log.write_text("")
    results: dict[int, dict[str, Any]] = {}
    bar = _progress(episodes, env_name, progress)
    t0 = time.perf_counter()

    def record(r: dict[str, Any]) -> None:
        results[r["index"]] = r
        with open(log, "a") as f:
            f.write(json.dumps({k: v for k, v in r.items() if k != "strip"}) + "\n")
        n_ok = sum(x["success"] for x in results.values())
        bar.set_postfix(success=f"{n_ok}/{len(results)}", refresh=False)
        bar.update(1)

    try:
        if workers == 0:
            runner = _Runner(job)
            try:
                for i in range(episodes):
                    record(runner.episode(i, seed))
            finally:
                runner.close()
        else:
            _run_pool(job, episodes, seed, min(workers, episodes), record)
    finally:
        bar.close()
    wall = time.perf_counter() - t0
    per_episode = [results[i] for i in range(episodes)]
    strip = next((r.get("strip") for r in per_episode if r.get("strip") is not None), None)
    for r in per_episode:
        r.pop("strip", None)
    info = _eval_info(job, episodes, seed, workers, per_episode, wall)
    (out_dir / EVAL_INFO).write_text(json.dumps(info, indent=2) + "\n")
    write_report(info, out_dir, strip)
    return EvalResult(out_dir, info)


# ------------------------------------------------------------------------------ checks up front
def _prepare(
    checkpoint,
    env_name,
    episodes,
    workers,
    goal_source,
    orders,
    videos,
    video_camera,
    video_size,
    sampler,
    steps,
    max_steps,
    relay,
    fast_render,
    inference=None,
) -> dict[str, Any]:
    """Everything that can be wrong with the input, found before a worker starts."""
    from dataclasses import asdict

    from decomposer.task import RelaySettings
    from policies.checkpoint import load_config, load_stats, resolve

    if env_name not in ENVS:
        raise UnknownEnvError(f"unknown env {env_name!r}; valid envs: {', '.join(ENVS)}")
    if episodes < 1 or workers < 0:
        raise SimError(f"episodes must be >= 1 and workers >= 0, got {episodes} and {workers}")
    if videos < 0 or (max_steps is not None and max_steps < 1):
        raise SimError(f"videos must be >= 0 and max_steps >= 1, got {videos} and {max_steps}")
    if orders is not None and env_name != "pickplace4":
        raise SimError(f"orders apply to pickplace4 only, not {env_name}")
    if relay is None:
        relay = RelaySettings()
    elif not isinstance(relay, RelaySettings):
        raise SimError(f"relay must be a decomposer.task.RelaySettings, got {relay!r}")
    orders = resolve_orders(orders)
    ckpt = resolve(checkpoint)
    cfg, _ = load_config(ckpt)
    image_size = _check_observations(cfg, env_name, ckpt, video_camera if videos else None)
    overrides = {k: v for k, v in (inference or {}).items() if v is not None}
    overrides.update({k: v for k, v in (("sampler", sampler), ("steps", steps)) if v is not None})
    policy = _load_policy(ckpt, overrides)  # the weights, stats and settings load here too
    goal_keys = cfg.resolved_goal_keys
    goal_cameras = [k for k in goal_keys if k in cfg.cameras or k in cfg.embeddings]
    if cfg.goal == "uvd" and goal_cameras:
        raise SimError(
            f"{ckpt}: goal=uvd with camera goals {goal_cameras} needs a visual backbone to "
            "decompose the task demo; evaluating it is not wired yet (state goals are)"
        )
    if goal_source != "expert" and cfg.uses_goal:
        _check_goal_folder(goal_source, goal_keys, cfg)
    return dict(
        checkpoint=str(ckpt),
        env_name=env_name,
        goal=cfg.goal,
        goal_keys=goal_keys,
        goal_stats=load_stats(ckpt, [k for k in goal_keys if k in cfg.state]),
        cameras=list(_policy_cameras(cfg)),
        embedded=_embedded_cameras(cfg),
        image_size=image_size,
        goal_source=goal_source,
        orders=orders,
        videos=videos,
        video_camera=video_camera,
        video_size=tuple(int(s) for s in video_size),
        overrides=overrides,
        settings=dict(policy.settings),
        max_steps=max_steps,
        relay=asdict(relay),
        fast_render=fast_render,
    )


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
    embedded = _embedded_cameras(cfg)
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


def _embedded_cameras(cfg) -> dict[str, str]:
    """Embedding key -> the camera whose frames the policy's recorded backbone embeds."""
    from policies.embeddings import embedding_key

    cams = (cfg.backbone or {}).get("cameras") or {}
    return {embedding_key(c): c for c in cams}


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
    embedded = _embedded_cameras(cfg)  # an embedding goal comes from its camera's frames
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


# ------------------------------------------------------------------------------ workers
def _run_pool(job, episodes: int, seed: int, workers: int, record) -> None:
    """Episodes from a shared queue; a dead worker's episode fails and a new worker goes on."""
    ctx = mp.get_context("spawn")  # a fresh interpreter: no inherited GL, MuJoCo or torch state
    tasks, results = ctx.Queue(), ctx.Queue()
    for i in range(episodes):
        tasks.put(i)
    for _ in range(workers):
        tasks.put(None)
    procs: dict[int, Any] = {}
    running: dict[int, tuple[int, float]] = {}  # worker -> (episode, start time)
    fatal: dict[int, str] = {}
    done: set[int] = set()
    seen_dead: set[int] = set()
    next_id = 0

    def start() -> None:
        nonlocal next_id
        p = ctx.Process(target=_worker, args=(job, seed, next_id, tasks, results), daemon=True)
        p.start()
        procs[next_id] = p
        next_id += 1

    for _ in range(workers):
        start()
    last_reap = time.monotonic()
    try:
        while len(done) < episodes:
            try:
                msg = results.get(timeout=1.0)
            except queue.Empty:
                msg = None
            if msg is None or time.monotonic() - last_reap > 5.0:
                _reap(procs, running, fatal, done, episodes, seed, tasks, record, start,
                      seen_dead, quiet=msg is None)  # fmt: skip
                last_reap = time.monotonic()
            if msg is None:
                continue
            kind, w = msg[0], msg[1]
            if kind == "start":
                running[w] = (msg[2], time.perf_counter())
            elif kind == "done":
                running.pop(w, None)
                if msg[2]["index"] not in done:
                    done.add(msg[2]["index"])
                    record(msg[2])
            elif kind == "fatal":
                fatal[w] = msg[2]
    finally:
        for p in procs.values():
            p.join(timeout=10)
            if p.is_alive():
                p.kill()


def _reap(procs, running, fatal, done, episodes, seed, tasks, record, start, seen_dead, *,
          quiet: bool) -> None:  # fmt: skip
    """Account for dead workers. A dead worker's last messages have all been read when the
    queue was ``quiet`` (no message for a second), or, while messages keep coming, by the
    next call after its death was first seen (5 s later)."""
    dead = [w for w, p in procs.items() if not p.is_alive() and p.exitcode is not None]
    if not quiet:
        dead, fresh = [w for w in dead if w in seen_dead], [w for w in dead if w not in seen_dead]
        seen_dead.update(fresh)
    for w in dead:
        p = procs.pop(w)
        if w in running:  # died inside an episode: that episode fails, a new worker goes on
            i, t0 = running.pop(w)
            if i not in done:
                done.add(i)
                why = f"worker process {p.pid} exited with code {p.exitcode} during this episode"
                record(_failed(i, seed, why, time.perf_counter() - t0))
            start()
    if procs or len(done) >= episodes:
        return
    # every worker is gone and episodes are left: workers that could not start say why
    why = next(iter(fatal.values()), "every worker process exited")
    while True:
        try:
            i = tasks.get_nowait()
        except queue.Empty:
            break
        if i is not None and i not in done:
            done.add(i)
            record(_failed(i, seed, why, 0.0))
    for i in range(episodes):  # anything still unaccounted for
        if i not in done:
            done.add(i)
            record(_failed(i, seed, why, 0.0))


def _failed(i: int, seed: int, error: str, wall: float) -> dict[str, Any]:
    return dict(
        index=i, seed=seed + i, success=False, length=0, stages=0, task=None, order=None,
        error=error, wall_s=round(wall, 3), worker=None,
    )  # fmt: skip


def _worker(job: dict, seed: int, w: int, tasks, results) -> None:
    """Takes episode indices from ``tasks`` until a None; reports start, done or fatal.
    Stops early when the evaluation that started it has died (the tasks were queued ahead)."""
    import torch

    parent = os.getppid()

    torch.set_num_threads(1)  # workers share the cores; one intra-op thread each is fastest
    try:
        runner = _Runner(job)
    except Exception as e:  # nothing can run here: say why once, leave the episodes to others
        results.put(("fatal", w, f"worker could not start: {type(e).__name__}: {e}"))
        return
    try:
        while os.getppid() == parent and (i := tasks.get()) is not None:
            results.put(("start", w, i))
            results.put(("done", w, runner.episode(i, seed)))
    finally:
        runner.close()


class _Runner:
    """One worker's env, policy and expert; ``episode(i, seed)`` never raises."""

    def __init__(self, job: dict):
        from decomposer.task import RelaySettings, state_embedder
        from policies import Policy

        from .envs import make_env

        self.job = job
        self.policy = Policy.from_pretrained(job["checkpoint"], **job["overrides"])
        self.env = make_env(
            job["env_name"],
            cameras=job["cameras"],
            image_size=tuple(job["image_size"]),
            fast_render=job["fast_render"],
        )
        self.expert = None
        self.folder = None
        if self.policy.config.uses_goal:
            if job["goal_source"] == "expert":
                from .experts import Expert

                self.expert = Expert(job["env_name"])
            else:
                from demos import DemoFolder

                self.folder = DemoFolder(job["goal_source"])
        self.embed = state_embedder(
            [k for k in job["goal_keys"] if k in job["goal_stats"]], job["goal_stats"]
        )
        self.relay = RelaySettings(**job["relay"])

    def close(self) -> None:
        self.env.close()

    def episode(self, i: int, seed: int) -> dict[str, Any]:
        t0 = time.perf_counter()
        try:
            r = self._episode(i, seed + i)
        except Exception as e:
            tb = traceback.format_exc(limit=4)
            r = _failed(i, seed, f"{type(e).__name__}: {e}\n{tb}", 0.0)
        r["wall_s"] = round(time.perf_counter() - t0, 3)
        r["worker"] = os.getpid()
        return r

    def _episode(self, i: int, seed: int) -> dict[str, Any]:
        job, env, policy = self.job, self.env, self.policy
        orders = job["orders"]
        options = {"order": orders[i % len(orders)]} if orders else None
        goal_source, demo_info = self._task(i, seed, options)
        obs, info = env.reset(seed=seed, options=options)
        policy.reset(seed=seed)
        film = i < job["videos"]
        frames: list[np.ndarray] = []
        best, success, switches = info["stage"], False, []
        limit = job["max_steps"] or env.horizon
        for _ in range(limit):
            if film:
                frames.append(env.render(job["video_camera"], job["video_size"]))
            goal = None
            if goal_source is not None:
                before = goal_source.active
                goal = goal_source(obs)
                if goal_source.active != before:
                    switches.append(env.elapsed_steps)
            obs, _, _, truncated, info = env.step(policy.act(obs, goal))
            best = max(best, info["stage"])
            if info["success"]:
                success = True
                break
            if truncated:
                break
        r = dict(
            index=i, seed=seed, success=success, length=env.elapsed_steps, stages=int(best),
            task=env.episode_info["task"], order=_order(env.episode_info), error=None,
            final_eef_pos=[round(float(x), 6) for x in obs["eef_pos"]],
        )  # fmt: skip
        if demo_info:
            r["demo"] = demo_info
        if goal_source is not None and goal_source.relay is not None:
            r["subgoal_switches"] = switches  # steps at which the relay moved on
            r["subgoals_reached"] = goal_source.active + int(goal_source.done)
        if film:
            frames.append(env.render(job["video_camera"], job["video_size"]))
            from demos.video import write_video

            path = Path(job["out_dir"], VIDEOS, f"episode_{i:03d}.mp4")
            write_video(path, frames, fps=env.spec.fps)
            r["video"] = str(Path(VIDEOS, path.name))
            picks = np.linspace(0, len(frames) - 1, STRIP_FRAMES).round().astype(int)
            r["strip"] = [frames[j] for j in picks]
        return r

    def _task(self, i: int, seed: int, options):
        """This episode's goal source (``decomposer.task``) from its task demo, and what the
        demo was (for the report)."""
        from decomposer.task import TaskDemo, read_task_demo, task_goals

        job = self.job
        if not self.policy.config.uses_goal:
            return None, None
        # an embedding goal key is given as its camera's raw frames: the policy embeds them
        keys = [job["embedded"].get(k, k) for k in job["goal_keys"]]
        if self.expert is not None:
            from .rollout import run_expert

            r = run_expert(self.env, self.expert, seed, options=options, record=True)
            values = {**r.episode.state, **r.episode.frames}
            info = {"source": "expert", "length": r.length, "success": r.success}
            demo = TaskDemo({k: np.asarray(values[k]) for k in keys}, self.env.spec.fps, None,
                            info)  # fmt: skip
        else:
            ep_id = self.folder.episode_ids[i % len(self.folder)]
            demo = read_task_demo(self.folder, ep_id, keys)
            demo.info["source"] = f"{job['goal_source']}:{ep_id}"
        uvd = job["goal"] == "uvd"
        goals = task_goals(demo.rows, relay=self.relay if uvd else None, embed=self.embed,
                           fps=demo.fps, subgoals=demo.subgoals)  # fmt: skip
        if uvd:
            demo.info["subgoals"] = goals.subgoals
        return goals, demo.info


def _order(episode_info: Mapping[str, Any]) -> list[str] | None:
    order = episode_info.get("order")
    return None if order is None else [str(o) for o in order]


def _progress(total: int, env_name: str, enabled: bool):
    from tqdm import tqdm

    return tqdm(total=total, desc=f"eval {env_name}", unit="ep", disable=not enabled)


# ------------------------------------------------------------------------------ outputs
def _eval_info(job, episodes, seed, workers, per_episode, wall) -> dict[str, Any]:
    n_stages = len(ENVS[job["env_name"]].stage_names)
    ok = [bool(r["success"]) for r in per_episode]
    info: dict[str, Any] = dict(
        checkpoint=job["checkpoint"],
        env=job["env_name"],
        episodes=episodes,
        seed=seed,
        workers=workers,
        pc_success=100.0 * sum(ok) / episodes,
        n_success=sum(ok),
        mean_stages=float(np.mean([r["stages"] for r in per_episode])),
        stage_names=list(ENVS[job["env_name"]].stage_names),
        n_stages=n_stages - 1,  # stage ids run 0..n-1; the last means done
        n_errors=sum(r["error"] is not None for r in per_episode),
        goal=job["goal"],
        goal_source=job["goal_source"] if job["goal"] != "none" else None,
        sampler=job["settings"]["sampler"],
        steps=job["settings"]["steps"],
        settings=job["settings"],
        max_steps=job["max_steps"],
        wall_s=round(wall, 2),
        date=datetime.now(UTC).isoformat(timespec="seconds"),
        per_episode=per_episode,
    )
    if job["goal"] == "uvd":
        info["relay"] = dict(
            **job["relay"], embedding="normalised state: " + ", ".join(job["goal_stats"])
        )
    return info


def success_by_order(per_episode: Sequence[Mapping[str, Any]]) -> dict[str, tuple[int, int]]:
    """order "a,b,c,d" -> (successes, episodes), for episodes that have an order."""
    out: dict[str, tuple[int, int]] = {}
    for r in per_episode:
        if r.get("order"):
            key = ",".join(r["order"])
            s, n = out.get(key, (0, 0))
            out[key] = (s + bool(r["success"]), n + 1)
    return dict(sorted(out.items()))


def write_report(info: Mapping[str, Any], out_dir: Path, strip: list[np.ndarray] | None) -> None:
    """report.png (success by order or by seed, stage histogram, film strip) and report.md."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    eps = info["per_episode"]
    by_order = success_by_order(eps)
    fig = plt.figure(figsize=(11, 8.5), layout="constrained")
    top, strip_row = fig.subfigures(2, 1, height_ratios=[1.4, 1])
    ax_goal, ax_stage = top.subplots(1, 2)
    if by_order:
        names = list(by_order)
        rates = [100 * s / n for s, n in by_order.values()]
        ax_goal.barh(range(len(names)), rates, color="tab:blue")
        ax_goal.set_yticks(range(len(names)), [f"{k} ({n})" for k, (_, n) in by_order.items()],
                           fontsize=6)  # fmt: skip
        ax_goal.set_xlim(0, 100)
        ax_goal.set_xlabel("success (%)")
        ax_goal.set_title("success by task order (episodes)")
    else:
        colours = ["tab:green" if r["success"] else "tab:red" for r in eps]
        ax_goal.bar([r["seed"] for r in eps], [1] * len(eps), color=colours, width=1.0)
        ax_goal.set_yticks([])
        ax_goal.set_xlabel("seed (green: success, red: failure)")
        ax_goal.set_title(f"success {info['pc_success']:.1f}% of {info['episodes']} episodes")
    n_stages = info["n_stages"]
    counts = np.bincount([r["stages"] for r in eps], minlength=n_stages + 1)
    ax_stage.bar(range(n_stages + 1), counts, color="tab:orange")
    ax_stage.set_xticks(range(n_stages + 1), info["stage_names"][: n_stages + 1], rotation=30,
                        fontsize=7)  # fmt: skip
    ax_stage.set_ylabel("episodes")
    ax_stage.set_title(f"furthest stage reached (mean {info['mean_stages']:.2f} of {n_stages})")
    axes = strip_row.subplots(1, STRIP_FRAMES)
    for j, ax in enumerate(np.atleast_1d(axes)):
        ax.axis("off")
        if strip is not None:
            ax.imshow(strip[j])
    first = next((r for r in eps if r.get("video")), None)
    strip_row.suptitle(
        f"episode {first['index']} (seed {first['seed']}, "
        f"{'success' if first['success'] else 'failure'}, {first['length']} steps)"
        if first and strip is not None
        else "no rollout filmed (videos=0)",
        fontsize=10,
    )
    fig.suptitle(f"{info['env']}: {Path(info['checkpoint']).name}, goal={info['goal']}")
    fig.savefig(out_dir / REPORT_PNG, dpi=90)
    plt.close(fig)
    (out_dir / REPORT_MD).write_text(_report_md(info, by_order))


def _report_md(info: Mapping[str, Any], by_order: Mapping[str, tuple[int, int]]) -> str:
    eps = info["per_episode"]
    lines = [
        f"# Evaluation of {info['checkpoint']} on {info['env']}",
        "",
        f"- success: **{info['pc_success']:.1f}%** ({info['n_success']}/{info['episodes']}), "
        f"seeds {info['seed']}..{info['seed'] + info['episodes'] - 1}",
        f"- mean stages completed: {info['mean_stages']:.2f} of {info['n_stages']} "
        f"({', '.join(info['stage_names'])})",
        f"- goal: {info['goal']}"
        + (f" from {info['goal_source']} demos" if info["goal_source"] else ""),
        f"- sampler {info['sampler']}, {info['steps']} steps; "
        f"{info['workers']} workers, {info['wall_s']:.0f} s; {info['date']}",
    ]
    if info["n_errors"]:
        lines.append(f"- **{info['n_errors']} episodes ended in an error** (see below)")
    lines += ["", f"![report]({REPORT_PNG})", ""]
    if by_order:
        lines += ["| order | success |", "|---|---|"]
        lines += [f"| {k} | {s}/{n} |" for k, (s, n) in by_order.items()]
        lines.append("")
    videos = [r for r in eps if r.get("video")]
    if videos:
        lines.append("Videos: " + ", ".join(f"[{r['index']}]({r['video']})" for r in videos))
        lines.append("")
    errors = [r for r in eps if r["error"]]
    if errors:
        lines.append("Errors:")
        lines += [f"- episode {r['index']} (seed {r['seed']}): "
                  f"{r['error'].splitlines()[0]}" for r in errors]  # fmt: skip
        lines.append("")
    return "\n".join(lines)
