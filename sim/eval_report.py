"""What an evaluation writes besides its episodes: eval_info.json's figures, report.md and
report.png (success by seed or by task order, furthest stage reached, a film strip)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from policies.chunks import seam_ratio

from .intervals import wilson
from .tasks import ENVS

if TYPE_CHECKING:
    from .evaluate import EvalJob

REPORT_MD, REPORT_PNG = "report.md", "report.png"
STRIP_FRAMES = 6  # frames of one rollout in the report's film strip


def eval_info(job: EvalJob, per_episode: list[dict[str, Any]], wall: float) -> dict[str, Any]:
    """The content of eval_info.json: the figures, the settings and every episode."""
    from dataclasses import asdict

    s, names = job.settings, ENVS[job.env_name].stage_names
    ok = [bool(r["success"]) for r in per_episode]
    info: dict[str, Any] = dict(
        checkpoint=job.checkpoint,
        env=job.env_name,
        episodes=s.episodes,
        seed=s.seed,
        workers=s.workers,
        pc_success=100.0 * sum(ok) / s.episodes,
        ci95_success=[round(100 * x, 1) for x in wilson(sum(ok), s.episodes)],  # Wilson, %
        n_success=sum(ok),
        mean_stages=float(np.mean([r["stages"] for r in per_episode])),
        stage_names=list(names),
        n_stages=len(names) - 1,  # stage ids run 0..n-1; the last means done
        n_errors=sum(r["error"] is not None for r in per_episode),
        goal=job.goal,
        goal_source=s.goal_source if job.goal != "none" else None,
        sampler=job.policy_settings["sampler"],
        steps=job.policy_settings["steps"],
        settings=job.policy_settings,
        max_steps=s.max_steps,
        wall_s=round(wall, 2),
        date=datetime.now(UTC).isoformat(timespec="seconds"),
        per_episode=per_episode,
    )
    seams = [r["seams"] for r in per_episode if r.get("seams")]
    if seams:  # the arm's action jumps where a new chunk takes over, against within a chunk
        info["seams"] = {
            k: None if v is None else round(v, 6) for k, v in seam_ratio(seams).items()
        }
    timed = [r for r in per_episode if r.get("act_ms") is not None]
    if timed:  # the policy's time per executed action, weighted by episode length
        steps = sum(r["length"] for r in timed)
        info["act_ms"] = round(sum(r["act_ms"] * r["length"] for r in timed) / steps, 3)
    if job.goal == "uvd":
        info["relay"] = dict(**asdict(s.relay), embedding=job.relay_embedding)
    if not s.scene.is_default:
        info["scene"] = s.scene.describe()
    return info


def success_by_order(per_episode: Sequence[Mapping[str, Any]]) -> dict[str, tuple[int, int]]:
    """order "a,b,c,d" -> (successes, episodes), for episodes that have an order."""
    out: dict[str, tuple[int, int]] = {}
    for r in per_episode:
        if r.get("order"):
            key = ",".join(r["order"])
            s, n = out.get(key, (0, 0))
            out[key] = (s + bool(r["success"]), n + 1)
    return dict(sorted(out.items()))


def write_report(info: Mapping[str, Any], out_dir: Path, strip: list[np.ndarray] | None) -> None:
    """report.png (success by order or by seed, stage histogram, film strip) and report.md."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    eps = info["per_episode"]
    by_order = success_by_order(eps)
    fig = plt.figure(figsize=(11, 8.5), layout="constrained")
    top, strip_row = fig.subfigures(2, 1, height_ratios=[1.4, 1])
    ax_goal, ax_stage = top.subplots(1, 2)
    if by_order:
        names = list(by_order)
        rates = [100 * s / n for s, n in by_order.values()]
        ax_goal.barh(range(len(names)), rates, color="tab:blue")
        ax_goal.set_yticks(range(len(names)), [f"{k} ({n})" for k, (_, n) in by_order.items()],
                           fontsize=6)  # fmt: skip
        ax_goal.set_xlim(0, 100)
        ax_goal.set_xlabel("success (%)")
        ax_goal.set_title("success by task order (episodes)")
    else:
        colours = ["tab:green" if r["success"] else "tab:red" for r in eps]
        ax_goal.bar([r["seed"] for r in eps], [1] * len(eps), color=colours, width=1.0)
        ax_goal.set_yticks([])
        ax_goal.set_xlabel("seed (green: success, red: failure)")
        ax_goal.set_title(f"success {info['pc_success']:.1f}% of {info['episodes']} episodes")
    n_stages = info["n_stages"]
    counts = np.bincount([r["stages"] for r in eps], minlength=n_stages + 1)
    ax_stage.bar(range(n_stages + 1), counts, color="tab:orange")
    ax_stage.set_xticks(range(n_stages + 1), info["stage_names"][: n_stages + 1], rotation=30,
                        fontsize=7)  # fmt: skip
    ax_stage.set_ylabel("episodes")
    ax_stage.set_title(f"furthest stage reached (mean {info['mean_stages']:.2f} of {n_stages})")
    axes = strip_row.subplots(1, STRIP_FRAMES)
    for j, ax in enumerate(np.atleast_1d(axes)):
        ax.axis("off")
        if strip is not None:
            ax.imshow(strip[j])
    first = next((r for r in eps if r.get("video")), None)
    strip_row.suptitle(
        f"episode {first['index']} (seed {first['seed']}, "
        f"{'success' if first['success'] else 'failure'}, {first['length']} steps)"
        if first and strip is not None
        else "no rollout filmed (videos=0)",
        fontsize=10,
    )
    fig.suptitle(f"{info['env']}: {Path(info['checkpoint']).name}, goal={info['goal']}")
    fig.savefig(out_dir / REPORT_PNG, dpi=90)
    plt.close(fig)
    (out_dir / REPORT_MD).write_text(_report_md(info, by_order))


def _report_md(info: Mapping[str, Any], by_order: Mapping[str, tuple[int, int]]) -> str:
    eps = info["per_episode"]
    lines = [
        f"# Evaluation of {info['checkpoint']} on {info['env']}",
        "",
        f"- success: **{info['pc_success']:.1f}%** ({info['n_success']}/{info['episodes']}; "
        f"95% interval {info['ci95_success'][0]:.0f}-{info['ci95_success'][1]:.0f}%, Wilson), "
        f"seeds {info['seed']}..{info['seed'] + info['episodes'] - 1}",
        f"- mean stages completed: {info['mean_stages']:.2f} of {info['n_stages']} "
        f"({', '.join(info['stage_names'])})",
        f"- goal: {info['goal']}"
        + (f" from {info['goal_source']} demos" if info["goal_source"] else ""),
        f"- sampler {info['sampler']}, {info['steps']} steps; "
        f"{info['workers']} workers, {info['wall_s']:.0f} s; {info['date']}",
    ]
    seams = info.get("seams") or {}
    if seams.get("ratio") is not None:
        lines.append(
            f"- action jumps (the arm's, mean |a_t - a_t-1|): {seams['handover']:.4f} where a "
            f"new chunk takes over, {seams['within']:.4f} within chunks ({seams['ratio']:.2f}x)"
        )
    if info.get("act_ms") is not None:
        lines.append(
            f"- policy time: {info['act_ms']:.2f} ms per executed action (planning included)"
        )
    if info["n_errors"]:
        lines.append(f"- **{info['n_errors']} episodes ended in an error** (see below)")
    lines += ["", f"![report]({REPORT_PNG})", ""]
    if by_order:
        lines += ["| order | success |", "|---|---|"]
        lines += [f"| {k} | {s}/{n} |" for k, (s, n) in by_order.items()]
        lines.append("")
    videos = [r for r in eps if r.get("video")]
    if videos:
        lines.append("Videos: " + ", ".join(f"[{r['index']}]({r['video']})" for r in videos))
        lines.append("")
    errors = [r for r in eps if r["error"]]
    if errors:
        lines.append("Errors:")
        lines += [f"- episode {r['index']} (seed {r['seed']}): "
                  f"{r['error'].splitlines()[0]}" for r in errors]  # fmt: skip
        lines.append("")
    return "\n".join(lines)
