"""One evaluation episode in simulation: a worker's env, policy and task demos, and the rollout.

``EpisodeRunner(job).episode(i)`` rolls out episode i with seed ``job.settings.seed + i``: the env
is reset with that seed, the policy's sampler seeded with it, and a goal-conditioned policy
is told the task by the scripted expert's demo for that seed or by a demo folder's episode
(``decomposer.task``). It never raises: an error ends the episode with its reason.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import time
import traceback
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from demos.atomic import atomic_write_bytes
from policies.chunks import seam_jumps

from .eval_report import STRIP_FRAMES
from .spec import ARM_ACTIONS

if TYPE_CHECKING:
    from .evaluate import EvalJob

VIDEOS = "videos"


def failed_episode(i: int, seed: int, error: str, wall: float) -> dict[str, Any]:
    """The record of episode i (seed ``seed + i``) that could not run, and why."""
    return dict(
        index=i, seed=seed + i, success=False, length=0, stages=0, task=None, order=None,
        error=error, wall_s=round(wall, 3), worker=None,
    )  # fmt: skip


class EpisodeRunner:
    """One worker's env, policy and expert; ``episode(i)`` never raises."""

    def __init__(self, job: EvalJob):
        from policies.embeddings import relay_embedder

        from .envs import make_env
        from .peer import load_policy

        self.job = job
        self.policy = load_policy(job.checkpoint, job.overrides)  # or another stack's (sim.peer)
        self.env = make_env(
            job.env_name,
            cameras=job.cameras,
            image_size=tuple(job.image_size),
            fast_render=job.settings.fast_render,
            scene=job.settings.scene,
        )
        self.expert = None
        self.folder = None
        if self.policy.config.uses_goal:
            if job.settings.goal_source == "expert":
                from .experts import Expert

                self.expert = Expert(job.env_name)
            else:
                from demos import DemoFolder

                self.folder = DemoFolder(job.settings.goal_source)
        self.embed = None
        if job.goal == "uvd":  # the relay's embedding: the goal's backbone, or its state
            self.embed = relay_embedder(Path(job.checkpoint), self.policy.config, job.goal_stats)[0]

    def close(self) -> None:
        self.env.close()
        close = getattr(self.policy, "close", None)  # a peer's process
        if close is not None:
            close()

    def episode(self, i: int) -> dict[str, Any]:
        t0, seed = time.perf_counter(), self.job.settings.seed
        try:
            r = self._episode(i, seed + i)
        except Exception as e:
            tb = traceback.format_exc(limit=4)
            r = failed_episode(i, seed, f"{type(e).__name__}: {e}\n{tb}", 0.0)
        r["wall_s"] = round(time.perf_counter() - t0, 3)
        r["worker"] = os.getpid()
        return r

    def _episode(self, i: int, seed: int) -> dict[str, Any]:
        job, env, policy = self.job, self.env, self.policy
        orders = job.orders
        options = {"order": orders[i % len(orders)]} if orders else None
        goal_source, demo_info = self._task(i, seed, options)
        obs, info = env.reset(seed=seed, options=options)
        policy.reset(seed=seed)
        film = i < job.settings.videos
        frames: list[np.ndarray] = []
        best, success, switches = info["stage"], False, []
        actions, handovers, act_s = [], [], 0.0
        limit = job.settings.max_steps or env.horizon
        for _ in range(limit):
            if film:
                frames.append(env.render(job.settings.video_camera, job.settings.video_size))
            goal = None
            if goal_source is not None:
                before = goal_source.active
                goal = goal_source(obs)
                if goal_source.active != before:
                    switches.append(env.elapsed_steps)
            tick = time.perf_counter()
            action = policy.act(obs, goal)  # frames no plan will read are not rendered
            act_s += time.perf_counter() - tick
            actions.append(action[ARM_ACTIONS])
            handovers.append(policy.handover)
            obs, _, _, truncated, info = env.step(action, render=policy.reads_next_observation())
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
            seams=seam_jumps(np.stack(actions), handovers),
            act_ms=round(1000 * act_s / len(actions), 3),  # per executed action, plans included
        )  # fmt: skip
        if demo_info:
            r["demo"] = demo_info
        if goal_source is not None and goal_source.relay is not None:
            r["subgoal_switches"] = switches  # steps at which the relay moved on
            r["subgoals_reached"] = goal_source.active + int(goal_source.done)
        if film:
            frames.append(env.render(job.settings.video_camera, job.settings.video_size))
            from demos.video import write_video

            path = Path(job.out_dir, VIDEOS, f"episode_{i:03d}.mp4")
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
        keys = [job.embedded.get(k, k) for k in job.goal_keys]
        if self.expert is not None:
            rows, info = self._expert_demo(seed, options, keys)
            demo = TaskDemo(rows, self.env.spec.fps, None, info)
        else:
            ep_id = self.folder.episode_ids[i % len(self.folder)]
            demo = read_task_demo(self.folder, ep_id, keys)
            demo.info["source"] = f"{job.settings.goal_source}:{ep_id}"
        uvd = job.goal == "uvd"
        goals = task_goals(demo.rows, relay=job.settings.relay if uvd else None, embed=self.embed,
                           fps=demo.fps, subgoals=demo.subgoals)  # fmt: skip
        if uvd:
            demo.info["subgoals"] = goals.subgoals
        return goals, demo.info

    def _expert_demo(self, seed: int, options, keys: list[str]):
        """The scripted expert's episode for ``seed``: its rows of ``keys`` and what it was.
        With ``settings.task_demos`` (a folder), each is kept there and reused by any later
        evaluation of the same env, seed, order, keys, frame size and look (the demo's policies
        share their task demos, and rendering them is most of an episode's cost)."""
        from .rollout import run_expert

        store = self.job.settings.task_demos
        path = None
        if store:
            order = ",".join((options or {}).get("order") or ())
            s = self.job.settings
            look = [list(self.env.image_size), s.scene.describe(), s.fast_render]
            tag = json.dumps([self.job.env_name, seed, order, sorted(keys), *look])
            path = Path(store, hashlib.sha1(tag.encode()).hexdigest()[:16] + ".npz")
            if path.is_file():
                with np.load(path) as saved:
                    info = json.loads(str(saved["__info__"]))
                    return {k: saved[k] for k in keys}, info
        r = run_expert(self.env, self.expert, seed, options=options, record=True)
        values = {**r.episode.state, **r.episode.frames}
        rows = {k: np.asarray(values[k]) for k in keys}
        info = {"source": "expert", "length": r.length, "success": r.success}
        if path is not None:
            buf = io.BytesIO()
            np.savez(buf, __info__=json.dumps(info), **rows)
            atomic_write_bytes(path, buf.getvalue())
        return rows, info


def _order(episode_info: Mapping[str, Any]) -> list[str] | None:
    order = episode_info.get("order")
    return None if order is None else [str(o) for o in order]


def worker_runner(job: EvalJob) -> EpisodeRunner:
    """The runner of a worker process: workers share the cores, and one intra-op torch thread
    each is fastest."""
    import torch

    torch.set_num_threads(1)
    return EpisodeRunner(job)


class ShippedRunner:
    """A runner on a Ray node: the checkpoint unpacked from the object store (once per node),
    videos written to a node-local folder and returned as bytes with the result, since the
    driver's ``out_dir`` may not exist here."""

    def __init__(self, job: EvalJob, shipped: tuple[str, Any, str]):
        import copy
        import tempfile

        import ray

        from .ray_pool import unpack

        digest, ref, name = shipped
        self.out = Path(tempfile.mkdtemp(prefix="uvdiff-eval-"))
        (self.out / VIDEOS).mkdir()
        job = copy.copy(job)
        job.checkpoint = str(unpack(digest, ray.get(ref), name))
        job.out_dir = str(self.out)
        self.inner = worker_runner(job)

    def episode(self, i: int) -> dict[str, Any]:
        r = self.inner.episode(i)
        if r.get("video"):
            video = self.out / r["video"]
            r["video_bytes"] = video.read_bytes()
            video.unlink()
        return r

    def close(self) -> None:
        import shutil

        self.inner.close()
        shutil.rmtree(self.out, ignore_errors=True)
