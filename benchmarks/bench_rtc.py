"""Chunk seams and success under inference delay: plain chunking, temporal ensembling and RTC.

One checkpoint, one task, the same seeds for every arm. Delay is injected in control steps
(``delay=d``: the plan made at step k runs from k + d; the old chunk runs meanwhile; plain
chunking replaces the old chunk on arrival, its first d actions skipped). For each arm:
success with its 95% Wilson interval, and the arm's mean action jump |a_t - a_t-1| where a new
chunk takes over against within a chunk, measured on the policy's actions before any shield.
Paired differences of success (Newcombe's paired interval) answer issue 19's questions.
Resumable: each arm's evaluation is kept under OUT/<arm>/ and skipped when there.

    MUJOCO_GL=egl .venv/bin/python benchmarks/bench_rtc.py --checkpoint RUN --env lift \\
        --out /tmp/rtc_lift --episodes 50
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

ENSEMBLE_M = 0.01  # ACT's default


def arms(delays: list[int], modes: list[str]) -> dict[str, dict]:
    """Arm name -> inference overrides. ``rtcsN``: RTC executing N actions per plan instead of
    the checkpoint's n_action_steps: plans come more often (fresher observations) and part of
    the old plans beyond the committed actions stays a soft overlap (RTC's regime); with a
    delay d > N several plans are in flight and the committed actions join them."""
    out = {}
    for mode in modes:
        for d in delays:
            if mode == "plain":
                out[f"plain_d{d}"] = {"rtc": False, "delay": d}
            elif mode == "rtc":
                out[f"rtc_d{d}"] = {"rtc": True, "delay": d}
            elif mode == "ensemble":
                out[f"ensemble_d{d}"] = {"temporal_ensemble": ENSEMBLE_M, "delay": d}
            elif mode.startswith("rtcs") and mode[4:].isdigit():
                out[f"{mode}_d{d}"] = {"rtc": True, "delay": d, "n_action_steps": int(mode[4:])}
            else:
                raise SystemExit(f"mode {mode!r}: use plain, rtc, rtcsN or ensemble")
    return out


def run_arm(a, name: str, overrides: dict) -> dict:
    from sim.evaluate import evaluate

    out = a.out / name
    done = out / "eval_info.json"
    if done.is_file():
        return json.loads(done.read_text())
    res = evaluate(a.checkpoint, a.env, a.episodes, seed=a.seed, out_dir=out,
                   workers=a.workers, videos=0, progress=False, inference=overrides)  # fmt: skip
    return res.info


def step_jump(info: dict) -> float | None:
    """The mean jump over every step (ensembling blends a new chunk in at every step, so its
    handover/within split says nothing)."""
    parts = [e["seams"] for e in info["per_episode"] if e.get("seams")]
    n = sum(p["handover"][1] + p["within"][1] for p in parts)
    return sum(p["handover"][0] + p["within"][0] for p in parts) / n if n else None


def table(results: dict[str, dict]) -> list[str]:
    from sim.intervals import rate_text

    rows = ["| arm | success [95% interval] | jump at handover | jump within | ratio | s |",
            # ensembling blends a new chunk in every step: its row gives the mean jump per step
            "|---|---|---:|---:|---:|---:|"]  # fmt: skip
    for name, info in results.items():
        s = info.get("seams") or {}
        if name.startswith("ensemble"):
            jump = step_jump(info)
            s = {"handover": jump, "within": jump, "ratio": None}

        def f(key, s=s):
            return "-" if s.get(key) is None else f"{s[key]:.4f}"

        ratio = "-" if s.get("ratio") is None else f"{s['ratio']:.2f}x"
        rate = rate_text(info["n_success"], info["episodes"])
        rows.append(f"| {name} | {rate} | {f('handover')} | {f('within')} | {ratio} | "
                    f"{info['wall_s']:.0f} |")  # fmt: skip
    return rows


def compare(results: dict[str, dict], first: str, second: str) -> str | None:
    from sim.intervals import paired_counts, paired_text

    if first not in results or second not in results:
        return None
    x = [e["success"] for e in results[first]["per_episode"]]
    y = [e["success"] for e in results[second]["per_episode"]]
    counts = paired_counts(x, y)
    return (f"{first} - {second}: {paired_text(*counts)} "
            f"(both {counts[0]}, only the first {counts[1]}, only the second {counts[2]}, "
            f"neither {counts[3]})")  # fmt: skip


def plot(results: dict[str, dict], path: Path, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    from sim.intervals import wilson

    order = ["plain", "ensemble", "rtc"]
    modes = sorted({n.rsplit("_d", 1)[0] for n in results},
                   key=lambda m: (order.index(m) if m in order else len(order), m))  # fmt: skip
    delays = sorted({int(n.rsplit("_d", 1)[1]) for n in results})
    fig, (ax_s, ax_j) = plt.subplots(1, 2, figsize=(10, 3.6))
    width = 0.8 / len(modes)
    for j, mode in enumerate(modes):
        xs, ys, err, ratio, labels = [], [], [[], []], [], []
        for i, d in enumerate(delays):
            info = results.get(f"{mode}_d{d}")
            if info is None:
                continue
            p = info["n_success"] / info["episodes"]
            lo, hi = wilson(info["n_success"], info["episodes"])
            xs.append(i + (j - (len(modes) - 1) / 2) * width)
            ys.append(100 * p)
            err[0].append(100 * (p - lo))
            err[1].append(100 * (hi - p))
            seams = info.get("seams") or {}
            jump = step_jump(info) if mode == "ensemble" else seams.get("handover")
            ratio.append(np.nan if jump is None else jump)
            labels.append("" if mode == "ensemble" or seams.get("ratio") is None
                          else f"{seams['ratio']:.2f}x")  # fmt: skip
        color = {"plain": "C0", "ensemble": "C1", "rtc": "C2"}.get(mode, "C3")  # same in every plot
        label = f"rtc, a plan per {mode[4:]} steps" if mode.startswith("rtcs") else mode
        ax_s.bar(xs, ys, width, yerr=err, capsize=3, label=label, color=color)
        bars = ax_j.bar(xs, ratio, width, label=label, color=color)
        ax_j.bar_label(bars, labels, fontsize=7)
    for ax in (ax_s, ax_j):
        ax.set_xticks(range(len(delays)), [f"d={d}" for d in delays])
        ax.set_xlabel("inference delay (control steps at 20 Hz)")
    ax_s.set_ylabel("success % (95% Wilson)")
    ax_s.set_ylim(0, 105)
    ax_j.set_ylabel("mean |a_t - a_t-1| at handovers\n(ensemble: every step)")
    ax_j.set_title("labels: handover / within-chunk jump", fontsize=9)
    ax_j.legend(fontsize=8)
    fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--checkpoint", required=True)
    p.add_argument("--env", required=True)
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--episodes", type=int, default=50)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--workers", type=int, default=1)
    p.add_argument("--delays", type=int, nargs="+", default=[0, 2, 4, 8])
    p.add_argument("--modes", nargs="+", default=["plain", "ensemble", "rtc"])
    p.add_argument("--only", nargs="+", help="just these arms of the grid, e.g. rtc_d4 plain_d0")
    a = p.parse_args()
    a.out.mkdir(parents=True, exist_ok=True)
    grid = arms(a.delays, a.modes)
    unknown = sorted(set(a.only or ()) - set(grid))
    if unknown:
        raise SystemExit(f"--only {unknown}: not in the grid {sorted(grid)}")
    results = {}
    for name, overrides in grid.items():
        if a.only and name not in a.only:
            continue
        results[name] = run_arm(a, name, overrides)
        print(table({name: results[name]})[-1], flush=True)
    lines = [f"# Chunk seams and delay: {a.env}, {a.checkpoint}",
             f"seeds {a.seed}..{a.seed + a.episodes - 1}", "", *table(results), ""]  # fmt: skip
    pairs = [
        ("rtc_d0", "plain_d0"),
        ("rtc_d4", "rtc_d0"),
        ("rtc_d8", "plain_d8"),
        ("rtc_d4", "plain_d4"),
        ("rtc_d2", "plain_d2"),
        ("ensemble_d0", "plain_d0"),
    ]
    for mode in sorted({n.rsplit("_d", 1)[0] for n in results} - {"plain", "ensemble", "rtc"}):
        pairs += [
            (f"{mode}_d0", "plain_d0"),
            (f"{mode}_d4", "rtc_d0"),
            (f"{mode}_d4", f"{mode}_d0"),
            (f"{mode}_d4", "rtc_d4"),
            (f"{mode}_d4", "plain_d4"),
            (f"{mode}_d8", "plain_d8"),
            (f"{mode}_d8", "rtc_d8"),
        ]
    for first, second in pairs:
        line = compare(results, first, second)
        if line:
            lines.append(f"- {line}")
    text = "\n".join(lines) + "\n"
    (a.out / "rtc.md").write_text(text)
    plot(results, a.out / "rtc.png", f"{a.env}: chunking under inference delay")
    print(text)


if __name__ == "__main__":
    main()
