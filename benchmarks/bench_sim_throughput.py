"""Simulator throughput and scripted-expert success, on this machine's CPU.

1. env steps/s of one task with no camera, with one 84x84 camera rendered with robosuite's look
   (shadows, reflections, 4x multisampling) and with ``fast_render`` (none of the three), all
   in the same process, so the ratio is the speed-up; per-frame cost = 1/camera - 1/no camera.
2. The scripted experts' success rate per task over N seeds (through ``sim.collect``, state
   only, so it is the pipeline ``uvdiff-collect`` runs), with episode length and wall time.

Usage: python benchmarks/bench_sim_throughput.py [--env lift] [--steps 300]
       [--seeds 20] [--tasks lift,can,square,stack,pickplace4] [--workers 2] [--json PATH]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time

import numpy as np

from sim import EXPERTS, collect, make_env


def steps_per_s(env_name: str, steps: int, **kw) -> float:
    """Env steps/s over ``steps`` steps of a fixed random action sequence, after a warm-up."""
    actions = np.random.default_rng(0).uniform(-0.3, 0.3, (steps, 7))
    with make_env(env_name, **kw) as env:
        env.reset(seed=0)
        for a in actions[:20]:
            env.step(a)
        env.reset(seed=0)
        t = time.perf_counter()
        for a in actions:
            env.step(a)
        return steps / (time.perf_counter() - t)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--env", default="lift", help="task for the steps/s figures")
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--seeds", type=int, default=20, help="expert episodes per task (0: skip)")
    parser.add_argument("--seed", type=int, default=1000, help="first seed of the expert runs")
    parser.add_argument("--tasks", default=",".join(EXPERTS))
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--json", help="also write the figures here")
    args = parser.parse_args()
    print(f"command: {' '.join([os.path.basename(sys.executable), *sys.argv])}")
    print(f"MUJOCO_GL={os.environ.get('MUJOCO_GL')}, {os.cpu_count()} CPUs")
    results: dict = {"command": sys.argv, "throughput": {}, "experts": {}}

    cam = {"cameras": ("agentview",), "image_size": (84, 84)}
    rates = {
        "no camera": steps_per_s(args.env, args.steps),
        "1 camera 84x84, default render": steps_per_s(
            args.env, args.steps, fast_render=False, **cam
        ),
        "1 camera 84x84, fast_render": steps_per_s(args.env, args.steps, fast_render=True, **cam),
    }
    print(f"\n{args.env}: env steps/s ({args.steps} steps each)")
    print("| setting | steps/s | ms per frame |\n|---|---|---|")
    for name, rate in rates.items():
        frame_ms = "" if name == "no camera" else f"{1e3 / rate - 1e3 / rates['no camera']:.1f}"
        print(f"| {name} | {rate:.1f} | {frame_ms} |")
    speedup = rates["1 camera 84x84, fast_render"] / rates["1 camera 84x84, default render"]
    print(f"fast_render speed-up with one camera: {speedup:.2f}x")
    results["throughput"] = {"env": args.env, "steps_per_s": rates, "fast_render_speedup": speedup}

    if args.seeds > 0:
        print(
            f"\nscripted experts, seeds {args.seed}..{args.seed + args.seeds - 1}, "
            f"{args.workers} workers"
        )
        print(
            "| task | success | mean length (steps) | wall s | failed seeds |\n"
            "|---|---|---|---|---|"
        )
        for task in args.tasks.split(","):
            with tempfile.TemporaryDirectory() as tmp:
                s = collect(
                    task,
                    args.seeds,
                    f"{tmp}/{task}",
                    args.seed,
                    workers=args.workers,
                    progress=False,
                )
            print(
                f"| {task} | {s.succeeded}/{s.attempted} ({100 * s.success_rate:.0f}%) | "
                f"{s.mean_length:.0f} | {s.wall_s:.0f} | {sorted(s.failed) or '-'} |",
                flush=True,
            )
            results["experts"][task] = {
                "success_rate": s.success_rate,
                "succeeded": s.succeeded,
                "attempted": s.attempted,
                "mean_length": s.mean_length,
                "wall_s": s.wall_s,
                "failed": {str(k): v.splitlines()[0] for k, v in s.failed.items()},
            }
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=2)


if __name__ == "__main__":
    main()
