"""The demo's one-page report: report.html with its figures and films beside it.

What a roboticist looks at first: success per policy with its 95% (Wilson) interval on each set
of orders, the interval of each difference against the UVD policy (Newcombe) and whether the
run separates them, how far episodes got (subtasks completed as asked), a film per policy of a
rollout next to its task demo and the goal frame it was conditioned on, the decomposition of a
few demos, and the training curves. Every number is read from the files this run's stages wrote
(or the cached stages whose settings match).
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

import numpy as np

from demos.atomic import atomic_write_bytes

from .intervals import newcombe, wilson

N_DECOMPOSITIONS = 3
COLOURS = {"uvd": "tab:blue", "final": "tab:gray", "equal": "tab:green"}
SET_TITLES = {"": "unseen orders", " seen": "seen orders (in-domain check)"}


def write_demo_report(
    report: Path,
    settings: Any,
    demos: Path,
    runs: Mapping[str, Path],
    evals: Mapping[str, Path],
    records: Mapping[str, Mapping[str, Any]],
) -> dict[str, Any]:
    """Write ``report`` (HTML) and its figures into ``report``'s folder; what it wrote.
    ``evals``: stage name ("eval uvd", "eval uvd seen") -> its evaluation folder."""
    out = report.parent
    out.mkdir(parents=True, exist_ok=True)
    infos = {name: json.loads((p / "eval_info.json").read_text()) for name, p in evals.items()}
    sets = _sets(settings, infos)
    figures = [
        _success_plot(settings, sets, out / "success.png"),
        _stages_plot(settings, sets, out / "stages.png"),
        _training_plot(runs, out / "training.png"),
    ]
    decompositions = _copy_decompositions(demos, out)
    films = _films(settings, sets, evals, out)
    page = _html(settings, sets, records, figures, decompositions, films)
    atomic_write_bytes(report, page.encode())
    made = [*figures, *decompositions, *(f for v in films.values() for f in v.values())]
    return {"summary": f"{report} with {len(made)} figures and films", "report": str(report),
            "comparisons": {t: s["comparisons"] for t, s in sets.items()}}  # fmt: skip


# ------------------------------------------------------------------------------ numbers
def _sets(settings, infos: Mapping[str, Mapping[str, Any]]) -> dict[str, dict[str, Any]]:
    """Per evaluation set: each goal's counts and intervals, and the differences to uvd."""
    out = {}
    for suffix, orders in settings.eval_sets.items():
        arms = {}
        for goal in settings.goals:
            info = infos[f"eval {goal}{suffix}"]
            n, k = info["episodes"], info["n_success"]
            stages = np.array([e["stages"] for e in info["per_episode"]])
            arms[goal] = {
                "k": k, "n": n, "rate": k / n, "ci": wilson(k, n), "info": info,
                "reached": [float((stages >= s).mean()) for s in range(1, info["n_stages"] + 1)],
                "mean_stages": info["mean_stages"], "n_stages": info["n_stages"],
            }  # fmt: skip
        comparisons = []
        if "uvd" in arms:
            a = arms["uvd"]
            for other in (g for g in settings.goals if g != "uvd"):
                b = arms[other]
                lo, hi = newcombe(a["k"], a["n"], b["k"], b["n"])
                comparisons.append({"vs": other, "diff": a["rate"] - b["rate"], "ci": (lo, hi),
                                    "separates": lo > 0 or hi < 0})  # fmt: skip
        title = SET_TITLES.get(suffix, suffix.strip())
        if orders is None:
            title = "seeded episodes"
        out[suffix] = {"title": title, "orders": orders, "arms": arms, "comparisons": comparisons}
    return out


def _pc(x: float) -> str:
    return f"{100 * x:.0f}"


# ------------------------------------------------------------------------------ figures
def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _success_plot(settings, sets, png: Path) -> str:
    """Success per goal and set, with 95% Wilson intervals as error bars."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(7, 3.4), layout="constrained")
    goals, width = list(settings.goals), 0.8 / len(settings.goals)
    for j, goal in enumerate(goals):
        xs, ys, err = [], [], [[], []]
        for i, s in enumerate(sets.values()):
            arm = s["arms"][goal]
            xs.append(i + (j - (len(goals) - 1) / 2) * width)
            ys.append(100 * arm["rate"])
            err[0].append(100 * (arm["rate"] - arm["ci"][0]))
            err[1].append(100 * (arm["ci"][1] - arm["rate"]))
        bars = ax.bar(xs, ys, width, yerr=err, capsize=3, label=f"goal={goal}",
                      color=COLOURS.get(goal))  # fmt: skip
        ax.bar_label(bars, [f"{y:.0f}%" for y in ys], padding=2, fontsize=8)
    n = next(iter(sets.values()))["arms"][goals[0]]["n"]
    ax.set_xticks(range(len(sets)), [s["title"] for s in sets.values()])
    title = f"{settings.task}: success, {n} seeded episodes per bar, 95% Wilson intervals"
    ax.set(ylim=(0, 112), ylabel="success (%)", title=title)
    ax.legend(loc="upper right", fontsize=8)
    fig.savefig(png, dpi=110)
    plt.close(fig)
    return png.name


def _stages_plot(settings, sets, png: Path) -> str:
    """Per goal: the share of episodes that completed at least s subtasks as asked."""
    plt = _plt()
    fig, axes = plt.subplots(1, len(sets), figsize=(3.6 * len(sets), 3.0), layout="constrained",
                             squeeze=False)  # fmt: skip
    for ax, s in zip(axes[0], sets.values(), strict=True):
        for goal, arm in s["arms"].items():
            stages = range(1, arm["n_stages"] + 1)
            ax.plot(stages, [100 * r for r in arm["reached"]], "o-", label=f"goal={goal}",
                    color=COLOURS.get(goal))  # fmt: skip
        ax.set(xlabel="subtasks completed as asked (at least)", ylabel="episodes (%)",
               ylim=(-3, 103), title=s["title"])  # fmt: skip
        ax.set_xticks(list(stages))
        ax.grid(alpha=0.3)
    axes[0][0].legend(fontsize=8)
    fig.savefig(png, dpi=110)
    plt.close(fig)
    return png.name


def _training_plot(runs: Mapping[str, Path], png: Path) -> str:
    plt = _plt()
    fig, ax = plt.subplots(figsize=(6, 3.2), layout="constrained")
    for goal, run in runs.items():
        rows = [json.loads(r) for r in (run / "metrics.jsonl").read_text().splitlines() if r]
        ax.plot([r["step"] for r in rows], [r["loss"] for r in rows], label=f"goal={goal}",
                color=COLOURS.get(goal))  # fmt: skip
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


def _films(settings, sets, evals: Mapping[str, Path], out: Path) -> dict[str, dict[str, str]]:
    """Per goal, the first filmed episode of the main set beside its task demo and its goal
    frames: {goal: {"video": mp4, "strip": png}}. One task demo per seed, shared by the goals."""
    import cv2

    from demos.video import read_video

    from .demo_film import compose_film, film_strip, task_demo_frames, write_h264

    suffix = next(iter(sets))
    demos: dict[tuple, np.ndarray] = {}
    films: dict[str, dict[str, str]] = {}
    for goal in settings.goals:
        info = sets[suffix]["arms"][goal]["info"]
        filmed = [e for e in info["per_episode"] if e.get("video") and not e.get("error")]
        if not filmed:
            continue
        ep = filmed[0]
        rollout = read_video(evals[f"eval {goal}{suffix}"] / ep["video"])
        key = (ep["seed"], tuple(ep.get("order") or ()))
        if key not in demos:
            demos[key] = task_demo_frames(settings.task, ep["seed"], ep.get("order"),
                                          settings.camera, rollout.shape[1:3])  # fmt: skip
        subgoals = (ep.get("demo") or {}).get("subgoals")
        film = compose_film(demos[key], rollout, subgoals, ep.get("subgoal_switches", []), goal)
        video = write_h264(out / f"film_{goal}.mp4", film, fps=20).name
        strip = out / f"film_{goal}.png"
        cv2.imwrite(str(strip), cv2.cvtColor(film_strip(film), cv2.COLOR_RGB2BGR))
        films[goal] = {"video": video, "strip": strip.name, "seed": ep["seed"],
                       "success": ep["success"], "task": ep.get("task", "")}  # fmt: skip
    return films


# ------------------------------------------------------------------------------ page
def _verdict(c: Mapping[str, Any], n: int) -> str:
    lo, hi = c["ci"]
    what = f"uvd − {c['vs']}: {100 * c['diff']:+.0f} points, 95% interval [{_pc(lo)}, {_pc(hi)}]"
    if c["separates"]:
        side = "ahead of" if c["diff"] > 0 else "behind"
        return f"{what}: the UVD policy is {side} goal={c['vs']} on these {n} episodes."
    return f"{what}: the interval contains 0, so this run does not separate the two."


def _set_html(s: Mapping[str, Any]) -> str:
    esc = html.escape
    rows = ""
    for goal, a in s["arms"].items():
        info = a["info"]
        reached = " / ".join(f"{_pc(r)}%" for r in a["reached"])
        seeds = f"{info['seed']}..{info['seed'] + info['episodes'] - 1}"
        rows += (
            f"<tr><td>{esc(goal)}</td><td><b>{_pc(a['rate'])}%</b> "
            f"[{_pc(a['ci'][0])}, {_pc(a['ci'][1])}]</td><td>{a['k']}/{a['n']}</td>"
            f"<td>{a['mean_stages']:.2f} / {a['n_stages']}</td><td>{reached}</td>"
            f"<td>{seeds}</td><td>{info.get('n_errors', 0)}</td></tr>"
        )
    n = next(iter(s["arms"].values()))["n"]
    verdicts = "".join(f"<li>{esc(_verdict(c, n))}</li>" for c in s["comparisons"])
    orders = f" (orders: {esc(str(s['orders']))})" if s["orders"] else ""
    return f"""<h3>{esc(s["title"])}{orders}</h3>
<table><tr><th>goal</th><th>success [95% CI]</th><th>episodes</th><th>mean subtasks</th>
<th>completed ≥1 / ≥2 …</th><th>seeds</th><th>errors</th></tr>{rows}</table>
<ul>{verdicts}</ul>"""


def _html(settings, sets, records, figures, decompositions, films) -> str:
    esc = html.escape
    success_png, stages_png, curves_png = figures
    stage_rows = "".join(
        f"<tr><td>{esc(name)}</td><td>{esc(str(r.get('summary', '')))}</td><td>{_took(r)}</td></tr>"
        for name, r in records.items()
    )
    imgs = "".join(f'<img src="{n}" alt="{n}">' for n in decompositions)
    film_html = "".join(
        f"<figure><figcaption>goal={esc(g)}: seed {f['seed']}, "
        f"{'success' if f['success'] else 'failure'}. {esc(f['task'])}</figcaption>"
        f'<video src="{f["video"]}" controls loop muted autoplay playsinline></video>'
        f'<details><summary>as frames</summary><img src="{f["strip"]}" alt="film strip, '
        f'goal={esc(g)}"></details></figure>'
        for g, f in films.items()
    )
    eyes = (
        f"cameras {', '.join(settings.cameras)} through the frozen <code>{esc(settings.backbone)}"
        "</code> backbone plus the arm's own state; no object pose reaches any policy"
        if settings.visual
        else "the simulator's state vector (object poses included)"
    )
    cfg = esc(json.dumps(asdict(settings), indent=2))
    date = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    demos_n = records["collect"].get("episodes")
    return f"""<!doctype html>
<html><head><meta charset="utf-8"><title>uvdiff demo: {esc(settings.task)}</title>
<style>
body {{ font-family: system-ui, sans-serif; max-width: 1100px; margin: 2em auto; padding: 0 1em; }}
img, video {{ max-width: 100%; margin: 0.3em 0; }}
video {{ image-rendering: pixelated; width: 720px; }}
table {{ border-collapse: collapse; }} td, th {{ border: 1px solid #ccc; padding: 0.3em 0.6em; }}
figure {{ margin: 1em 0; }} figcaption {{ font-weight: 600; }}
</style></head><body>
<h1>uvdiff demo: {esc(settings.task)}</h1>
<p>{len(settings.goals)} BESO policies trained on the same {esc(str(demos_n))} scripted demos with
the same budget ({settings.train_steps} steps each), differing only in the goal they are
conditioned on: <b>uvd</b> (the subgoals UVD cut from the demo video), <b>final</b> (the demo's
last frame) and <b>equal</b> (as many evenly spaced frames as UVD found on average). They see
{eyes}. Each seed's task demo (the scripted expert on that seed) is shared by all policies;
no demo used an evaluation seed. {date}.</p>
<h2>Success</h2>
{"".join(_set_html(s) for s in sets.values())}
<img src="{success_png}" alt="success by goal, with intervals">
<h2>How far episodes got</h2><img src="{stages_png}" alt="subtasks completed as asked">
<h2>Rollouts</h2>
<p>Left: the task demo. Middle: the policy. Right: the goal frame the policy was conditioned on
at that step (for goal=uvd and equal it changes as the relay moves to the next subgoal).</p>
{film_html}
<h2>Subgoals found by UVD</h2>
<p>{esc(str(records["decompose"].get("summary", "")))}</p>{imgs}
<h2>Training</h2><img src="{curves_png}" alt="training loss">
<h2>Stages of this run</h2><table><tr><th>stage</th><th>result</th><th>time</th></tr>
{stage_rows}</table>
<h2>Settings</h2><pre>{cfg}</pre>
</body></html>
"""


def _took(record: Mapping[str, Any]) -> str:
    return "cached" if record.get("cached") else f"{record.get('wall_s', 0):.0f} s"
