"""Evaluation wall time: N lift episodes through ``sim.evaluate`` with 1 and with 2 workers.

The wall time covers what ``uvdiff-eval`` does: worker start-up (a fresh interpreter importing
torch and robosuite, loading the checkpoint, building the env), the expert's task demo for each
seed (goal-conditioned policies), the rollouts and the report. The ratio says how much the
second worker buys on this machine. Without ``--checkpoint`` a small goal=final policy is
trained first on 3 expert demos (its success rate is not the point: a failing episode runs to
``--max-steps``, so each episode's length is fixed and the timing is comparable).

``--ray``: the 2-worker evaluation again with ``backend=ray`` (a local Ray instance started
by the call, its start-up included), and the overhead per episode against the local pool.

Usage: python benchmarks/bench_eval.py [--checkpoint DIR] [--episodes 8] [--max-steps N]
       [--ray] [--json PATH]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import torch

from sim.evaluate import evaluate
from sim.testing import expert_folder, mlp_policy, train_checkpoint


def tiny_checkpoint(root: Path) -> Path:
    """A small goal=final MLP policy on 3 expert lift demos (about a minute on a CPU)."""
    folder = expert_folder(root / "demos", "lift", range(3))
    return train_checkpoint(
        folder.root,
        root / "run",
        "final",
        policy=mlp_policy(64, horizon=8),
        steps=200,
        batch_size=32,
        lr=1e-3,
        warmup_steps=10,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--checkpoint", help="a lift checkpoint (default: train a small one)")
    parser.add_argument("--episodes", type=int, default=8)
    parser.add_argument(
        "--max-steps",
        type=int,
        help="episode limit (default: the task horizon; 100 for the "
        "small policy trained here, which rarely succeeds)",
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--ray", action="store_true", help="also 2 workers on backend=ray")
    parser.add_argument("--json", help="also write the figures here")
    args = parser.parse_args()
    print(f"command: {' '.join([os.path.basename(sys.executable), *sys.argv])}")
    print(f"MUJOCO_GL={os.environ.get('MUJOCO_GL')}, {os.cpu_count()} CPUs")
    torch.set_num_threads(1)
    results: dict = {"command": sys.argv, "episodes": args.episodes, "wall_s": {}}
    with tempfile.TemporaryDirectory() as tmp:
        ckpt = args.checkpoint
        if ckpt is None:
            ckpt = tiny_checkpoint(Path(tmp))
            args.max_steps = args.max_steps or 100
        runs = [(1, "local"), (2, "local")] + ([(2, "ray")] if args.ray else [])
        finals = {}
        for workers, backend in runs:
            t = time.perf_counter()
            res = evaluate(
                ckpt,
                "lift",
                args.episodes,
                args.seed,
                out_dir=Path(tmp, f"w{workers}{backend}"),
                workers=workers,
                videos=0,
                max_steps=args.max_steps,
                progress=False,
                backend=backend,
            )
            wall = time.perf_counter() - t
            steps = sum(e["length"] + e.get("demo", {}).get("length", 0) for e in res.episodes)
            key = workers if backend == "local" else f"{workers} ray"
            results["wall_s"][key] = wall
            finals[key] = [e["final_eef_pos"] for e in res.episodes]
            print(f"workers={workers} backend={backend}: {args.episodes} episodes in {wall:.1f} s "
                  f"({wall / args.episodes:.2f} s/episode, {steps / wall:.0f} env steps/s incl. "
                  f"task demos), success {res.pc_success:.0f}%")  # fmt: skip
    ratio = results["wall_s"][1] / results["wall_s"][2]
    results["speedup_2_workers"] = ratio
    print(f"2 workers are {ratio:.2f}x as fast as 1")
    if args.ray:
        extra = (results["wall_s"]["2 ray"] - results["wall_s"][2]) / args.episodes
        results["ray_overhead_s_per_episode"] = extra
        same = finals["2 ray"] == finals[2]
        print(f"ray: {results['wall_s']['2 ray'] / results['wall_s'][2]:.2f}x the local pool's "
              f"wall time, {extra:+.2f} s per episode (Ray start-up included); "
              f"same final states per seed: {same}")  # fmt: skip
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
