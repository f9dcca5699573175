"""How well subgoals land on ground-truth stage ends, per offline backbone and per baseline.

On scripted sim demos (``stage`` recorded by the simulator), for every task folder: fit the
offline backbones (pixels, state, vip_local, bc_local) on the folder, embed every episode
(cached), run UVD and the change-point baseline on each backbone's embeddings and the
embedding-free
baselines once, and pool over episodes: boundary precision and recall within +-0.5 s
(one-to-one matching), the mean signed offset (negative: early) and subgoals per episode. A
true stage end within 0.5 s of the last frame is the final goal (met by the final subgoal).

``--phases`` (sim folders collected with workers=1 from ``--seed`` on) re-runs the scripted
expert without cameras for the same seeds and records its segment names (approach, descend,
grasp, lift, carry, ...): the column "on a phase change" is the share of predicted boundaries
within the tolerance of one of the expert's segment switches (or a stage end), which says
whether the subgoals that match no stage end are arbitrary or the expert's own sub-steps.

``--sweep`` adds, per backbone, the UVD parameters with the best F1 over a small grid
(min_interval x gamma): tuned on the same episodes, so an upper bound, not a held-out figure.

``--prominence F ...`` adds, per backbone, UVD that only accepts peaks whose prominence is at
least F times the curve's maximum: a test of whether the stage ends stand out from the other
peaks by height (not part of UVD; it would become an option of ``decompose`` if it did).

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
from scipy.signal import peak_prominences

from decomposer.baselines import get_method
from decomposer.embed_cache import episode_embeddings
from decomposer.pipeline import prepare_encoder
from decomposer.relabel import boundary_scores
from decomposer.uvd import decompose, get_smoother, strict_peaks
from demos import DemoFolder

BACKBONES = ("pixels", "state", "vip_local", "bc_local")
FREE = ("final", "equal", "random", "near_future", "oracle")
GRID = list(itertools.product((6, 10, 18, 30, 50), (0.08, 0.02, 0.005, 0.001)))


def pooled(subgoals: dict, stages: dict, fps: float, tol: float, phases=None) -> dict:
    n = np.zeros(3)
    off = []
    on_phase = np.zeros(2)
    for ep, s in subgoals.items():
        sc = boundary_scores(s, stages[ep], fps, tol, final_within_s=tol)
        n += (sc["n_matched"], sc["n_pred"], sc["n_true"])
        if sc["n_matched"]:
            off.append(sc["mean_offset_s"] * sc["n_matched"])
        if phases and ep in phases:
            T = len(stages[ep])
            p = np.asarray(s[:-1])
            p = p[(T - 1 - p) / fps > tol + 1e-9]
            events = np.union1d(phases[ep], np.flatnonzero(np.diff(stages[ep])))
            if len(p):
                near = np.abs(p[:, None] - events[None, :]).min(1) / fps <= tol + 1e-9
                on_phase += (near.sum(), len(p))
    p = n[0] / n[1] if n[1] else 1.0
    r = n[0] / n[2] if n[2] else 1.0
    return {
        "precision": p,
        "recall": r,
        "f1": 2 * p * r / (p + r) if p + r else 0.0,
        "offset": sum(off) / n[0] if n[0] else float("nan"),
        "per_ep": np.mean([len(s) for s in subgoals.values()]),
        "true_per_ep": n[2] / len(subgoals),
        "on_phase": on_phase[0] / on_phase[1] if on_phase[1] else float("nan"),
    }


def row(task, backbone, method, params, s) -> str:
    ph = "-" if np.isnan(s["on_phase"]) else f"{s['on_phase']:.2f}"
    return (
        f"| {task} | {backbone} | {method} | {params} | {s['precision']:.2f} | {s['recall']:.2f} "
        f"| {s['offset']:+.2f} | {s['per_ep']:.1f} | {ph} |"
    )


def decompose_prominent(
    e: np.ndarray, fraction: float, min_interval: int, gamma: float
) -> list[int]:
    """UVD over whole prefixes, keeping only peaks of prominence >= fraction * max(curve)."""
    smooth = get_smoother("rbf", gamma).fn
    subgoals = [len(e) - 1]
    while True:
        g = subgoals[-1]
        s = smooth(np.linalg.norm(e[: g + 1] - e[g], axis=1))
        p = strict_peaks(s)
        p = p[(p > min_interval) & (g - p > min_interval)]
        if len(p):
            p = p[peak_prominences(s, p)[0] >= fraction * s.max()]
        if not len(p):
            return subgoals[::-1]
        subgoals.append(int(p[-1]))


def expert_phases(folder: DemoFolder, task: str, seed: int) -> dict[str, np.ndarray]:
    """Per episode, the frames after which the scripted expert switches segment, from a
    camera-free re-run of the same seeds (episodes matched in order by their stage arrays)."""
    os.environ.setdefault("MUJOCO_GL", "egl")
    from sim.envs import make_env
    from sim.experts import Expert
    from sim.rollout import SETTLE_STEPS, expert_seed

    env, expert = make_env(task, cameras=()), Expert(task)
    out, todo, s = {}, list(folder.episode_ids), seed
    while todo and s < seed + 3 * len(folder.episode_ids) + 10:
        _, info = env.reset(seed=s)
        expert.reset(env, expert_seed(s))
        names, stage, held = [], [], 0
        for _ in range(env.horizon):
            action = expert.act()
            names.append(expert.phase)
            stage.append(info["stage"])
            _, _, _, truncated, info = env.step(action)
            held = held + 1 if info["success"] else 0
            if held >= SETTLE_STEPS or truncated:
                break
        s += 1
        if held < SETTLE_STEPS:
            continue  # a failed seed wrote no episode
        ep = todo[0]
        if np.array_equal(folder.read_lowdim(ep)["stage"], np.asarray(stage)):
            out[ep] = np.flatnonzero([a != b for a, b in zip(names, names[1:], strict=False)])
            todo.pop(0)
    env.close()
    return out


def score_folder(
    path: Path,
    tol: float,
    sweep: bool,
    min_interval: int,
    gamma: float,
    phase_seed: int | None,
    prominence: tuple[float, ...] = (),
    max_episodes: int | None = None,
    backbones: tuple[str, ...] = BACKBONES,
) -> None:
    folder = DemoFolder(path)
    episode_ids = list(folder.episode_ids)[:max_episodes]
    fps = float(folder.info.fps)
    task = path.name
    phases = None
    if phase_seed is not None:
        phases = expert_phases(folder, task, phase_seed)
        print(f"{task}: expert segments recovered for {len(phases)}/{len(folder)} episodes")
    stages = {ep: folder.read_lowdim(ep)["stage"] for ep in episode_ids}
    T = {ep: len(s) for ep, s in stages.items()}
    lengths = np.array(list(T.values()))
    print(
        f"\n{task}: {len(T)} episodes, {lengths.mean():.0f} frames on average at {fps:g} fps; "
        f"true stage ends per episode (before the final one): "
        f"{np.mean([len(np.flatnonzero(np.diff(s))) for s in stages.values()]):.1f}"
    )
    print(
        "| task | backbone | method | parameters | precision | recall | offset (s) | subgoals/ep "
        "| on a phase change |"
    )
    print("|---|---|---|---|---:|---:|---:|---:|---:|")
    for method in FREE:
        fn = get_method(method)
        subs = {}
        for ep, n in T.items():
            dummy = np.zeros((n, 1))
            subs[ep] = fn(dummy, stage=stages[ep]) if method == "oracle" else fn(dummy)
        print(row(task, "-", method, "defaults", pooled(subs, stages, fps, tol, phases)))
    for name in backbones:
        t0 = time.perf_counter()
        enc = prepare_encoder(folder, name)
        E = {ep: episode_embeddings(folder, ep, enc) for ep in episode_ids}
        prep_s = time.perf_counter() - t0
        subs = {ep: decompose(e, min_interval=min_interval, gamma=gamma) for ep, e in E.items()}
        s = pooled(subs, stages, fps, tol, phases)
        print(
            row(task, name, "uvd", f"mi={min_interval} g={gamma}", s) + f" fit+embed {prep_s:.0f}s"
        )
        cp = get_method("changepoint")
        subs = {ep: cp(e) for ep, e in E.items()}
        print(row(task, name, "changepoint", "pen=log T", pooled(subs, stages, fps, tol, phases)))
        if sweep:
            best = None
            for mi, g in GRID:
                subs = {ep: decompose(e, min_interval=mi, gamma=g) for ep, e in E.items()}
                s = pooled(subs, stages, fps, tol, phases)
                if best is None or s["f1"] > best[0]["f1"]:
                    best = (s, mi, g)
            s, mi, g = best
            print(row(task, name, "uvd (best F1 of grid)", f"mi={mi} g={g}", s))
        for f in prominence:
            subs = {ep: decompose_prominent(e, f, min_interval, gamma) for ep, e in E.items()}
            s = pooled(subs, stages, fps, tol, phases)
            print(row(task, name, "uvd, prominence >= f x max", f"f={f}", s))


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
    ap.add_argument("--phases", action="store_true", help="score against expert segments too")
    ap.add_argument(
        "--prominence", nargs="*", type=float, default=[], help="UVD with peak prominence >= F*max"
    )
    ap.add_argument("--backbones", nargs="*", default=list(BACKBONES), choices=BACKBONES)
    ap.add_argument("--max-episodes", type=int, default=None, help="score the first N episodes")
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
        seed = args.seed if args.phases else None
        score_folder(
            path,
            args.tolerance_s,
            args.sweep,
            args.min_interval,
            args.gamma,
            seed,
            tuple(args.prominence),
            args.max_episodes,
            tuple(args.backbones),
        )


if __name__ == "__main__":
    main()
