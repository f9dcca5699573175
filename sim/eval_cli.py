"""uvdiff-eval checkpoint=PATH env=NAME episodes=50 seed=S [workers=2] [videos=2] [orders=...]

A thin hydra app over ``sim.evaluate.evaluate``: prints the success rate and where the report
is; the config goes into ``eval_info.json``. Bad input ends in one line and exit 2.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path


def run(cfg) -> int:
    """Evaluate as ``cfg`` (configs/eval.yaml) says; the exit status."""
    from omegaconf import OmegaConf

    from configs.command import renamed_setting
    from policies.checkpoint import CheckpointError

    from .errors import SimError
    from .evaluate import EVAL_INFO, REPORT_MD, evaluate

    orders = cfg.orders
    if orders is not None and not isinstance(orders, str):
        orders = OmegaConf.to_container(orders)
    try:
        from decomposer.task import relay_settings

        from .spec import CONTROL_FPS

        result = evaluate(
            cfg.checkpoint,
            cfg.env,
            int(cfg.episodes),
            int(cfg.seed),
            out_dir=cfg.out_dir,
            workers=int(cfg.workers),
            goal_source=str(cfg.goal_source),
            orders=orders,
            videos=int(cfg.videos),
            video_camera=cfg.video_camera,
            video_size=tuple(cfg.video_size),
            sampler=cfg.sampler,
            steps=_int_or_none(renamed_setting(cfg, "steps", "denoise_steps", "uvdiff-eval")),
            max_steps=None if cfg.max_steps is None else int(cfg.max_steps),
            relay=relay_settings(cfg, fps=CONTROL_FPS),
            fast_render=bool(cfg.fast_render),
            progress=bool(cfg.progress),
            inference={
                k: cfg[k] for k in ("n_action_steps", "temporal_ensemble", "guidance", "schedule")
            },
        )
    except (SimError, CheckpointError, ValueError) as e:
        print(f"uvdiff-eval: {e}", file=sys.stderr)
        return 2
    info_path = Path(result.out_dir, EVAL_INFO)
    info = {**result.info, "config": OmegaConf.to_container(cfg, resolve=True)}
    info_path.write_text(json.dumps(info, indent=2) + "\n")
    i = result.info
    print(
        f"{i['env']}: success {i['pc_success']:.1f}% ({i['n_success']}/{i['episodes']}), "
        f"mean stages {i['mean_stages']:.2f} of {i['n_stages']}, {i['wall_s']:.0f} s; "
        f"report: {Path(result.out_dir, REPORT_MD)}"
    )
    for r in i["per_episode"]:
        if r["error"]:
            print(f"  episode {r['index']} (seed {r['seed']}): {r['error'].splitlines()[0]}")
    return 0


def _int_or_none(x):
    return None if x is None else int(x)


def main() -> None:
    from configs.command import command_main

    command_main("eval", run)


if __name__ == "__main__":
    main()
