"""The demo's one-page report: report.html with its PNGs beside it, from this run's stages.

Figures: the decomposition of a few demos (the decomposer's own plots), the training curves of
every policy on one axis, success rates side by side, and each evaluation's film strip. Every
number on the page is read from the files the stages wrote in this run (or the cached run whose
settings match).
"""

from __future__ import annotations

import html
import json
import shutil
from collections.abc import Mapping
from dataclasses import asdict
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from demos.atomic import atomic_write_bytes

N_DECOMPOSITIONS = 3


def write_demo_report(
    report: Path,
    settings: Any,
    demos: Path,
    runs: Mapping[str, Path],
    evals: Mapping[str, Path],
    records: Mapping[str, Mapping[str, Any]],
) -> dict[str, Any]:
    """Write ``report`` (HTML) and its figures into ``report``'s folder; what it wrote."""
    out = report.parent
    out.mkdir(parents=True, exist_ok=True)
    infos = {g: json.loads((p / "eval_info.json").read_text()) for g, p in evals.items()}
    success_png = _success_plot(infos, out / "success.png")
    curves_png = _training_plot(runs, out / "training.png")
    decompositions = _copy_decompositions(demos, out)
    strips = {}
    for goal, p in evals.items():
        if (p / "report.png").is_file():
            strips[goal] = shutil.copyfile(p / "report.png", out / f"eval_{goal}.png").name
    page = _html(settings, infos, records, success_png, curves_png, decompositions, strips)
    atomic_write_bytes(report, page.encode())
    figures = [success_png, curves_png, *decompositions, *strips.values()]
    return {"summary": f"{report} with {len(figures)} figures", "report": str(report)}


def _success_plot(infos: Mapping[str, Mapping[str, Any]], png: Path) -> str:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    goals = list(infos)
    fig, (ax_s, ax_st) = plt.subplots(1, 2, figsize=(8, 3.2), layout="constrained")
    rates = [infos[g]["pc_success"] for g in goals]
    bars = ax_s.bar(goals, rates, color=["tab:blue", "tab:gray", "tab:green"][: len(goals)])
    ax_s.bar_label(bars, [f"{r:.0f}%" for r in rates])
    ax_s.set(ylim=(0, 105), ylabel="success (%)", title="task success by goal")
    stages = [infos[g]["mean_stages"] for g in goals]
    n_stages = max(infos[g]["n_stages"] for g in goals)
    bars = ax_st.bar(goals, stages, color="tab:orange")
    ax_st.bar_label(bars, [f"{s:.2f}" for s in stages])
    ax_st.set(ylim=(0, n_stages + 0.3), ylabel=f"stages (of {n_stages})",
              title="mean furthest stage")  # fmt: skip
    fig.savefig(png, dpi=100)
    plt.close(fig)
    return png.name


def _training_plot(runs: Mapping[str, Path], png: Path) -> str:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 3.2), layout="constrained")
    for goal, run in runs.items():
        rows = [json.loads(r) for r in (run / "metrics.jsonl").read_text().splitlines() if r]
        ax.plot([r["step"] for r in rows], [r["loss"] for r in rows], label=f"goal={goal}")
    ax.set(xlabel="step", ylabel="EDM loss", yscale="log", title="training loss")
    ax.grid(alpha=0.3)
    ax.legend()
    fig.savefig(png, dpi=100)
    plt.close(fig)
    return png.name


def _copy_decompositions(demos: Path, out: Path) -> list[str]:
    names = []
    for ep in sorted((demos / "episodes").iterdir())[:N_DECOMPOSITIONS]:
        src = ep / "decomposition.png"
        if src.is_file():
            names.append(shutil.copyfile(src, out / f"decomposition_{ep.name}.png").name)
    return names


def _html(settings, infos, records, success_png, curves_png, decompositions, strips) -> str:
    esc = html.escape
    goals = list(infos)
    rows = "".join(
        f"<tr><td>{esc(g)}</td><td><b>{infos[g]['pc_success']:.0f}%</b></td>"
        f"<td>{infos[g]['n_success']}/{infos[g]['episodes']}</td>"
        f"<td>{infos[g]['mean_stages']:.2f} / {infos[g]['n_stages']}</td>"
        f"<td>{esc(infos[g]['sampler'])}, {infos[g]['steps']} steps</td>"
        f"<td>{infos[g]['seed']}..{infos[g]['seed'] + infos[g]['episodes'] - 1}</td></tr>"
        for g in goals
    )
    stage_rows = "".join(
        f"<tr><td>{esc(name)}</td><td>{esc(str(r.get('summary', '')))}</td><td>{_took(r)}</td></tr>"
        for name, r in records.items()
    )
    imgs = "".join(f'<img src="{n}" alt="{n}">' for n in decompositions)
    strip_html = "".join(
        f'<h3>goal={esc(g)}</h3><img src="{n}" alt="rollouts, goal={esc(g)}">'
        for g, n in strips.items()
    )
    cfg = esc(json.dumps(asdict(settings), indent=2))
    date = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    return f"""<!doctype html>
<html><head><meta charset="utf-8"><title>uvdiff demo: {esc(settings.task)}</title>
<style>
body {{ font-family: system-ui, sans-serif; max-width: 1100px; margin: 2em auto; padding: 0 1em; }}
img {{ max-width: 100%; margin: 0.3em 0; }}
table {{ border-collapse: collapse; }} td, th {{ border: 1px solid #ccc; padding: 0.3em 0.6em; }}
</style></head><body>
<h1>uvdiff demo: {esc(settings.task)}</h1>
<p>{len(goals)} BESO policies trained on the same {esc(str(records["collect"].get("episodes")))}
scripted demos with the same budget ({settings.train_steps} steps), differing only in the goal
they are conditioned on; evaluated on the same {settings.eval_episodes} seeds, which no demo used.
{date}.</p>
<h2>Success</h2>
<table><tr><th>goal</th><th>success</th><th>episodes</th><th>mean stages</th><th>sampler</th>
<th>seeds</th></tr>{rows}</table>
<img src="{success_png}" alt="success by goal">
<h2>Subgoals found by UVD</h2>
<p>{esc(str(records["decompose"].get("summary", "")))}</p>{imgs}
<h2>Training</h2><img src="{curves_png}" alt="training loss">
<h2>Rollouts</h2>{strip_html}
<h2>Stages</h2><table><tr><th>stage</th><th>result</th><th>time</th></tr>{stage_rows}</table>
<h2>Settings</h2><pre>{cfg}</pre>
</body></html>
"""


def _took(record: Mapping[str, Any]) -> str:
    return "cached" if record.get("cached") else f"{record.get('wall_s', 0):.0f} s"
