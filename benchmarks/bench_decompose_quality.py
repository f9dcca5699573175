"""How well subgoals land on ground-truth stage ends, per offline backbone and per baseline.

On scripted sim demos (``stage`` recorded by the simulator), for every task folder: fit the
offline backbones (pixels, state, vip_local) on the folder, embed every episode (cached), run
UVD and the change-point baseline on each backbone's embeddings and the embedding-free
baselines once, and pool over episodes: boundary precision and recall within +-0.5 s
(one-to-one matching), the mean signed offset (negative: early) and subgoals per episode. A
true stage end within 0.5 s of the last frame is the final goal (met by the final subgoal).

``--sweep`` adds, per backbone, the UVD parameters with the best F1 over a small grid
(min_interval x gamma): tuned on the same episodes, so an upper bound, not a held-out figure.

Usage:
  python benchmarks/bench_decompose_quality.py --collect --out /tmp/uvdq --tasks stack can
      pickplace4 --episodes 10          (collects with sim, agentview 84x84, then scores)
  python benchmarks/bench_decompose_quality.py --data /tmp/uvdq/stack /tmp/uvdq/pickplace4
"""

from __future__ import annotations

import argparse
import itertools
import os
import platform
import time
from pathlib import Path

import numpy as np

from decomposer.backbones import episode_embeddings
from decomposer.baselines import get_method
from decomposer.pipeline import prepare_encoder
from decomposer.relabel import boundary_scores
from decomposer.uvd import decompose
from demos import DemoFolder

BACKBONES = ("pixels", "state", "vip_local")
FREE = ("final", "equal", "random", "near_future", "oracle")
GRID = list(itertools.product((6, 10, 18, 30, 50), (0.08, 0.02, 0.005, 0.001)))


def pooled(subgoals: dict, stages: dict, fps: float, tol: float) -> dict:
    n = np.zeros(3)
    off = []
    for ep, s in subgoals.items():
        sc = boundary_scores(s, stages[ep], fps, tol, final_within_s=tol)
        n += (sc["n_matched"], sc["n_pred"], sc["n_true"])
        if sc["n_matched"]:
            off.append(sc["mean_offset_s"] * sc["n_matched"])
    p = n[0] / n[1] if n[1] else 1.0
    r = n[0] / n[2] if n[2] else 1.0
    return {
        "precision": p,
        "recall": r,
        "f1": 2 * p * r / (p + r) if p + r else 0.0,
        "offset": sum(off) / n[0] if n[0] else float("nan"),
        "per_ep": np.mean([len(s) for s in subgoals.values()]),
        "true_per_ep": n[2] / len(subgoals),
    }


def row(task, backbone, method, params, s) -> str:
    return (
        f"| {task} | {backbone} | {method} | {params} | {s['precision']:.2f} | {s['recall']:.2f} "
        f"| {s['offset']:+.2f} | {s['per_ep']:.1f} |"
    )


def score_folder(path: Path, tol: float, sweep: bool, min_interval: int, gamma: float) -> None:
    folder = DemoFolder(path)
    fps = float(folder.info.fps)
    task = path.name
    stages = {ep: folder.read_lowdim(ep)["stage"] for ep in folder.episode_ids}
    T = {ep: len(s) for ep, s in stages.items()}
    lengths = np.array(list(T.values()))
    print(
        f"\n{task}: {len(T)} episodes, {lengths.mean():.0f} frames on average at {fps:g} fps; "
        f"true stage ends per episode (before the final one): "
        f"{np.mean([len(np.flatnonzero(np.diff(s))) for s in stages.values()]):.1f}"
    )
    print(
        "| task | backbone | method | parameters | precision | recall | offset (s) | subgoals/ep |"
    )
    print("|---|---|---|---|---:|---:|---:|---:|")
    for method in FREE:
        fn = get_method(method)
        subs = {}
        for ep, n in T.items():
            dummy = np.zeros((n, 1))
            subs[ep] = fn(dummy, stage=stages[ep]) if method == "oracle" else fn(dummy)
        print(row(task, "-", method, "defaults", pooled(subs, stages, fps, tol)))
    for name in BACKBONES:
        t0 = time.perf_counter()
        enc = prepare_encoder(folder, name)
        E = {ep: episode_embeddings(folder, ep, enc) for ep in folder.episode_ids}
        prep_s = time.perf_counter() - t0
        subs = {ep: decompose(e, min_interval=min_interval, gamma=gamma) for ep, e in E.items()}
        s = pooled(subs, stages, fps, tol)
        print(
            row(task, name, "uvd", f"mi={min_interval} g={gamma}", s) + f" fit+embed {prep_s:.0f}s"
        )
        cp = get_method("changepoint")
        subs = {ep: cp(e) for ep, e in E.items()}
        print(row(task, name, "changepoint", "pen=log T", pooled(subs, stages, fps, tol)))
        if sweep:
            best = None
            for mi, g in GRID:
                subs = {ep: decompose(e, min_interval=mi, gamma=g) for ep, e in E.items()}
                s = pooled(subs, stages, fps, tol)
                if best is None or s["f1"] > best[0]["f1"]:
                    best = (s, mi, g)
            s, mi, g = best
            print(row(task, name, "uvd (best F1 of grid)", f"mi={mi} g={g}", s))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", nargs="*", default=[], help="demo folders with stage labels")
    ap.add_argument("--collect", action="store_true", help="collect scripted demos first")
    ap.add_argument("--out", default="/tmp/uvdq", help="where --collect writes <task>/")
    ap.add_argument("--tasks", nargs="*", default=["stack", "can", "pickplace4"])
    ap.add_argument("--episodes", type=int, default=10)
    ap.add_argument("--seed", type=int, default=100)
    ap.add_argument("--size", type=int, default=84, help="camera image side")
    ap.add_argument("--tolerance-s", type=float, default=0.5)
    ap.add_argument("--min-interval", type=int, default=18)
    ap.add_argument("--gamma", type=float, default=0.08)
    ap.add_argument("--sweep", action="store_true", help="also the best-F1 UVD parameters")
    args = ap.parse_args()

    folders = [Path(d) for d in args.data]
    if args.collect:
        os.environ.setdefault("MUJOCO_GL", "egl")
        from sim.collect import collect

        for task in args.tasks:
            out = Path(args.out) / task
            if not (out / "dataset.json").exists():
                stats = collect(
                    task,
                    args.episodes,
                    out,
                    args.seed,
                    workers=1,
                    cameras=("agentview",),
                    image_size=(args.size, args.size),
                    progress=False,
                )
                print(stats.summary())
            folders.append(out)
    print(
        f"# decomposition quality, {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, "
        f"{platform.machine()} {os.cpu_count()} CPUs; tolerance +-{args.tolerance_s} s"
    )
    for path in folders:
        score_folder(path, args.tolerance_s, args.sweep, args.min_interval, args.gamma)


if __name__ == "__main__":
    main()
