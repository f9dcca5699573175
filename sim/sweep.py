"""Several checkpoints x tasks in one call (``uvdiff-eval checkpoint=[A,B] env=[lift,can]``).

Each pair is evaluated as ``uvdiff-eval`` would (same seeds, its own folder under ``out_dir``)
and one report compares them: ``sweep.md`` (success with its 95% Wilson interval, mean stages,
wall time) and ``sweep.png``. With ``backend=ray`` the cluster is joined once for the sweep.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from demos.atomic import atomic_write_bytes

from .intervals import rate_text, wilson


@dataclass
class SweepRow:
    checkpoint: str
    label: str
    env: str
    out_dir: Path
    info: dict[str, Any]


def checkpoint_label(checkpoint: str | os.PathLike) -> str:
    """ "run@003000" for run/checkpoints/003000 (or the run folder, by its newest step)."""
    from policies.checkpoint import resolve

    step = resolve(checkpoint)
    return f"{step.parent.parent.name}@{step.name}"


def sweep(
    checkpoints: Sequence[str | os.PathLike],
    envs: Sequence[str],
    out_dir: str | os.PathLike,
    settings: Any,
) -> list[SweepRow]:
    """Evaluate every checkpoint on every env with ``settings`` (an ``EvalSettings``)."""
    from .evaluate import evaluate
    from .ray_pool import connect

    out = Path(out_dir)
    labels = [checkpoint_label(c) for c in checkpoints]  # a bad path fails before any episode
    if len(set(labels)) < len(labels):
        labels = [f"{i}:{label}" for i, label in enumerate(labels)]
    started = settings.backend == "ray" and connect(settings.address, max(1, settings.workers))
    rows = []
    try:
        for ckpt, label in zip(checkpoints, labels, strict=True):
            for env in envs:
                folder = out / f"{label.replace('@', '-').replace(':', '-')}_{env}"
                result = evaluate(ckpt, env, out_dir=folder, settings=settings)
                rows.append(SweepRow(str(ckpt), label, env, folder, result.info))
    finally:
        if started:
            import ray

            ray.shutdown()
    write_sweep_report(rows, out)
    return rows


def write_sweep_report(rows: Sequence[SweepRow], out: Path) -> None:
    """sweep.md (one row per checkpoint and env) and sweep.png (success with intervals)."""
    lines = ["| checkpoint | env | success [95% interval] | mean stages | seeds | wall |",
             "|---|---|---|---|---|---|"]  # fmt: skip
    for r in rows:
        i = r.info
        seeds = f"{i['seed']}..{i['seed'] + i['episodes'] - 1}"
        lines.append(
            f"| {r.label} | {r.env} | {rate_text(i['n_success'], i['episodes'])} | "
            f"{i['mean_stages']:.2f} / {i['n_stages']} | {seeds} | {i['wall_s']:.0f} s |"
        )
    atomic_write_bytes(out / "sweep.md", ("\n".join(["# Sweep", "", *lines]) + "\n").encode())
    atomic_write_bytes(
        out / "sweep.json",
        json.dumps([{"checkpoint": r.checkpoint, "label": r.label, "env": r.env,
                     "out_dir": str(r.out_dir), "n_success": r.info["n_success"],
                     "episodes": r.info["episodes"]} for r in rows], indent=2).encode(),
    )  # fmt: skip
    _plot(rows, out / "sweep.png")


def _plot(rows: Sequence[SweepRow], png: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 0.45 * len(rows) + 1.2), layout="constrained")
    names = [f"{r.label} / {r.env}" for r in rows]
    rates, lo, hi = [], [], []
    for r in rows:
        k, n = r.info["n_success"], r.info["episodes"]
        a, b = wilson(k, n)
        rates.append(100 * k / n)
        lo.append(100 * (k / n - a))
        hi.append(100 * (b - k / n))
    ax.barh(names, rates, xerr=[lo, hi], capsize=3, color="tab:blue")
    ax.invert_yaxis()
    ax.set(xlim=(0, 100), xlabel="success (%), 95% Wilson interval", title="sweep")
    fig.savefig(png, dpi=100)
    plt.close(fig)
