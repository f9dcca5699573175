"""uvdiff-eval checkpoint=PATH env=NAME episodes=50 seed=S [workers=2] [videos=2] [orders=...]
uvdiff-eval checkpoint=[A,B] env=[lift,can] [backend=ray]: a sweep, one report comparing them

A thin hydra app over ``sim.evaluate.evaluate``: prints the success rate and where the report
is; the config goes into ``eval_info.json``. Bad input ends in one line and exit 2.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .evaluate import EvalSettings


def run(cfg) -> int:
    """Evaluate as ``cfg`` (configs/eval.yaml) says; the exit status."""
    from omegaconf import OmegaConf

    from policies.checkpoint import CheckpointError

    from .errors import SimError
    from .evaluate import EVAL_INFO, REPORT_MD, evaluate

    checkpoints, envs = cfg.checkpoint, cfg.env
    if not isinstance(checkpoints, str) or not isinstance(envs, str):  # a sweep
        return run_sweep(cfg)
    try:
        result = evaluate(checkpoints, envs, out_dir=cfg.out_dir, settings=eval_settings(cfg))
    except (SimError, CheckpointError, ValueError) as e:
        print(f"uvdiff-eval: {e}", file=sys.stderr)
        return 2
    info_path = Path(result.out_dir, EVAL_INFO)
    info = {**result.info, "config": OmegaConf.to_container(cfg, resolve=True)}
    info_path.write_text(json.dumps(info, indent=2) + "\n")
    i = result.info
    print(
        f"{i['env']}: success {i['pc_success']:.1f}% ({i['n_success']}/{i['episodes']}; 95% "
        f"interval {i['ci95_success'][0]:.0f}-{i['ci95_success'][1]:.0f}%), "
        f"mean stages {i['mean_stages']:.2f} of {i['n_stages']}, {i['wall_s']:.0f} s; "
        f"report: {Path(result.out_dir, REPORT_MD)}"
    )
    for r in i["per_episode"]:
        if r["error"]:
            print(f"  episode {r['index']} (seed {r['seed']}): {r['error'].splitlines()[0]}")
    return 0


def run_sweep(cfg) -> int:
    """Every checkpoint on every env (lists in ``checkpoint=`` / ``env=``); one sweep report."""
    from omegaconf import OmegaConf

    from policies.checkpoint import CheckpointError

    from .errors import SimError
    from .sweep import sweep

    listed = lambda v: [v] if isinstance(v, str) else list(OmegaConf.to_container(v))  # noqa: E731
    try:
        rows = sweep(listed(cfg.checkpoint), listed(cfg.env), cfg.out_dir, eval_settings(cfg))
    except (SimError, CheckpointError, ValueError) as e:
        print(f"uvdiff-eval: {e}", file=sys.stderr)
        return 2
    for r in rows:
        i = r.info
        print(f"{r.label} on {r.env}: {i['pc_success']:.0f}% ({i['n_success']}/{i['episodes']})")
    print(f"sweep report: {Path(cfg.out_dir, 'sweep.md')}")
    return 0


def eval_settings(cfg) -> EvalSettings:
    """``EvalSettings`` from the command's config (configs/eval.yaml)."""
    from omegaconf import OmegaConf

    from configs.command import renamed_setting
    from decomposer.task import relay_settings

    from .evaluate import EvalSettings
    from .scene import SceneVariant
    from .spec import CONTROL_FPS

    plain = OmegaConf.to_container(cfg, resolve=True)
    inference = {k: plain[k] for k in ("sampler", "n_action_steps", "temporal_ensemble",
                                        "guidance", "schedule", "rtc", "delay")}  # fmt: skip
    inference["steps"] = renamed_setting(plain, "steps", "denoise_steps", "uvdiff-eval")
    return EvalSettings(
        episodes=int(plain["episodes"]),
        seed=int(plain["seed"]),
        workers=int(plain["workers"]),
        goal_source=str(plain["goal_source"]),
        orders=plain["orders"],
        videos=int(plain["videos"]),
        video_camera=plain["video_camera"],
        video_size=tuple(plain["video_size"]),
        max_steps=plain["max_steps"],
        fast_render=bool(plain["fast_render"]),
        progress=bool(plain["progress"]),
        relay=relay_settings(plain, fps=CONTROL_FPS),
        inference=inference,
        scene=SceneVariant(tuple(plain["camera_shift"]), float(plain["light_scale"])),
        backend=str(plain["backend"]),
        address=plain["address"],
    )


def main() -> None:
    from configs.command import command_main

    command_main("eval", run)


if __name__ == "__main__":
    main()
