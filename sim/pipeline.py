"""The main job (``uvdiff-demo``): collect, decompose, train, evaluate, report, each stage cached.

Every stage writes into ``cache_dir/<stage>-<key>/``, where the key hashes the settings of that
stage and of every stage before it. A rerun with the same settings finds the finished stages
and skips them; changing, say, the number of training steps reruns training and what follows,
not collection. A killed training run resumes from its last checkpoint. The report of each run
goes to its own ``out_dir``.
"""

from __future__ import annotations

import json
import shutil
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from demos.atomic import atomic_write_json, staging_dir

from .demo_settings import PROPRIO_KEYS, DemoSettings, quick_settings, settings_from

__all__ = ["DemoResult", "DemoSettings", "quick_settings", "run_demo", "settings_from"]

DONE = "stage.json"  # written last in a stage's folder: the stage finished


@dataclass
class DemoResult:
    out_dir: Path
    report: Path
    success: dict[str, float]  # goal mode -> pc_success of this run's evaluation
    stages: dict[str, dict[str, Any]]  # stage -> what it recorded (and whether it was cached)
    wall_s: float


def run_demo(
    settings: DemoSettings,
    out_dir: str | Path,
    cache_dir: str | Path,
    *,
    progress: bool = True,
) -> DemoResult:
    """Run every stage (skipping the cached ones) and write ``out_dir/report.html``."""
    from tqdm.auto import tqdm

    t0 = time.perf_counter()
    out_dir, cache_dir = Path(out_dir), Path(cache_dir)
    keys = settings.stage_keys()
    evals_named = [f"eval {g}{x}" for x in settings.eval_sets for g in settings.goals]
    names = ["collect", "validate", "decompose"]
    names += ["decompose equal"] if "equal" in settings.goals else []
    names += [f"train {g}" for g in settings.goals] + evals_named + ["report"]
    bar = tqdm(total=len(names), desc="uvdiff-demo", unit="stage", disable=not progress,
               dynamic_ncols=True, position=0)  # fmt: skip
    records: dict[str, dict[str, Any]] = {}

    def stage(name: str, fn: Callable[[], dict[str, Any]]) -> dict[str, Any]:
        bar.set_description(f"uvdiff-demo [{name}]")
        t = time.perf_counter()
        rec = fn()
        rec.setdefault("wall_s", round(time.perf_counter() - t, 2))
        records[name] = rec
        bar.update(1)
        if progress:
            how = "cached" if rec.get("cached") else f"{rec['wall_s']:.0f} s"
            tqdm.write(f"[{len(records)}/{len(names)}] {name}: {rec.get('summary', '')} ({how})")
        return rec

    demos = cache_dir / f"demos-{keys['collect']}"
    folders = {"uvd": demos, "final": demos}
    try:
        stage("collect", lambda: _collect(settings, demos, progress))
        stage("validate", lambda: _validate(demos))
        stage("decompose", lambda: _decompose(settings, demos, cache_dir, keys, progress))
        if "equal" in settings.goals:
            folders["equal"] = cache_dir / f"demos_equal-{keys['decompose equal']}"
            count = round(records["decompose"]["subgoals_per_demo"])
            stage("decompose equal", lambda: _decompose_equal(demos, folders["equal"], count))
        runs = {}
        for goal in settings.goals:
            runs[goal] = cache_dir / f"train_{goal}-{keys[f'train {goal}']}"
            stage(f"train {goal}",
                  lambda g=goal: _train(settings, g, folders[g], runs[g], progress))  # fmt: skip
        evals: dict[str, Path] = {}
        for suffix, orders in settings.eval_sets.items():
            for goal in settings.goals:
                name = f"eval {goal}{suffix}"
                evals[name] = cache_dir / f"eval_{goal}{suffix.replace(' ', '_')}-{keys[name]}"
                stage(name, lambda g=goal, n=name, o=orders: _evaluate(settings, runs[g], evals[n],
                                                                    o, progress))  # fmt: skip
        from .demo_report import write_demo_report

        report = out_dir / "report.html"
        stage("report", lambda: write_demo_report(report, settings, demos, runs, evals, records))
    finally:
        bar.close()
    success = {g: float(records[f"eval {g}"]["pc_success"]) for g in settings.goals}
    wall = time.perf_counter() - t0
    result = DemoResult(out_dir, out_dir / "report.html", success, records, wall)
    atomic_write_json(
        out_dir / "demo_result.json",
        {"settings": asdict(settings), "success": success, "stages": records, "wall_s": wall},
    )
    return result


# ----------------------------------------------------------------------------------- stages
def _cached(folder: Path) -> dict[str, Any] | None:
    done = folder / DONE
    if done.is_file():
        return {**json.loads(done.read_text()), "cached": True}
    return None


def _collect(s: DemoSettings, demos: Path, progress: bool) -> dict[str, Any]:
    """Scripted demos with frames and stage labels; the folder appears only when complete."""
    from .collect import collect

    if (rec := _cached(demos)) is not None:
        return rec
    if demos.exists():  # a folder without its stage.json is a leftover of a killed run
        shutil.rmtree(demos)
    with staging_dir(demos) as tmp:
        tmp.rmdir()  # collect creates the folder itself
        stats = collect(
            s.task, s.episodes, tmp, s.seed, workers=max(1, s.workers), cameras=tuple(s.cameras),
            image_size=tuple(s.image_size), orders=s.train_orders, progress=progress,
        )  # fmt: skip
        if not stats.written:
            raise RuntimeError(f"{s.task}: the expert succeeded in no episode: {stats.failed}")
        rec = {
            "summary": stats.summary().replace(str(tmp), str(demos)),
            "episodes": len(stats.written),
            "expert_success_rate": stats.success_rate,
            "mean_length": stats.mean_length,
            "wall_s": round(stats.wall_s, 2),
        }
        atomic_write_json(tmp / DONE, rec)
    return rec


def _validate(demos: Path) -> dict[str, Any]:
    from demos.validate import validate

    report = validate(demos)
    report.raise_if_bad()
    return {"summary": report.summary(), "episodes": report.episodes, "frames": report.frames}


def _decompose(
    s: DemoSettings, demos: Path, cache_dir: Path, keys: dict[str, str], progress: bool
) -> dict[str, Any]:
    """UVD subgoals for every demo (subgoals.json in the folder; skipped when they are there)."""
    from decomposer.fitting import fit_backbone
    from decomposer.pipeline import decompose_folder
    from decomposer.registry import get_spec

    marker = cache_dir / f"decompose-{keys['decompose']}.json"
    if marker.is_file() and _subgoals_match(demos, s.backbone):
        return {**json.loads(marker.read_text()), "cached": True}
    summary = decompose_folder(
        demos, s.backbone, camera=s.camera if s.visual else None, min_interval_s=s.min_interval_s,
        fit_args=_fit_args(s), plots=True, progress=progress,
    )  # fmt: skip
    if s.visual and get_spec(s.backbone).offline:  # every camera's fit here, with every thread
        for cam in s.cameras:
            fit_backbone(s.backbone, demos, cam, **(_fit_args(s) or {}))
    pooled = summary.pooled or {}
    n = [len(e.subgoals) for e in summary.episodes]
    rec = {
        "summary": (
            f"{s.backbone}: {sum(n) / len(n):.1f} subgoals per demo; stage boundaries found "
            f"{100 * pooled.get('recall', float('nan')):.0f}% (recall), "
            f"precision {100 * pooled.get('precision', float('nan')):.0f}% within 0.5 s"
        ),
        "backbone": s.backbone,
        "subgoals_per_demo": sum(n) / len(n),
        "boundaries": pooled,
    }
    atomic_write_json(marker, rec)
    return rec


def _fit_args(s: DemoSettings) -> dict[str, Any] | None:
    """``fit_steps`` for a backbone whose fit is trained in steps (bc_local, vip_local); the
    others (pixels: a PCA) have nothing to shorten."""
    import inspect

    from decomposer.fitting import FITTERS

    fit = FITTERS.get(s.backbone)
    if not s.fit_steps or fit is None or "steps" not in inspect.signature(fit).parameters:
        return None
    return {"steps": s.fit_steps}


def _subgoals_match(demos: Path, backbone: str | None, method: str = "uvd") -> bool:
    """Whether every episode's subgoals.json came from ``backbone`` and ``method`` (another run
    may have decomposed the same cached demos with another backbone since)."""
    from demos import DemoFolder, DemoFolderError
    from demos.subgoals import has_subgoals, read_subgoals

    folder = DemoFolder(demos)
    try:
        for ep in folder.episode_ids:
            doc = has_subgoals(folder, ep) and read_subgoals(folder, ep)
            if not doc or doc.backbone != backbone or doc.method != method:
                return False
        return True
    except DemoFolderError:  # a broken file: decompose again
        return False


def _decompose_equal(demos: Path, mirror: Path, n_subgoals: int) -> dict[str, Any]:
    """The baseline's subgoals: ``n_subgoals`` evenly spaced frames per demo, in a mirror of
    the demo folder (its files linked, its own subgoals.json), so the goal=uvd machinery
    trains and relays on them unchanged."""
    from decomposer.pipeline import decompose_folder

    n_subgoals = max(1, int(n_subgoals))
    if mirror.is_dir() and _subgoals_match(mirror, None, "equal"):
        return {**json.loads((mirror / DONE).read_text()), "cached": True}
    if mirror.exists():
        shutil.rmtree(mirror)
    with staging_dir(mirror) as tmp:
        link_folder(demos, tmp)
        decompose_folder(tmp, method="equal", method_args={"n_subgoals": n_subgoals},
                         plots=False, progress=False)  # fmt: skip
        rec = {"summary": f"{n_subgoals} evenly spaced subgoals per demo (UVD's mean count)",
               "n_subgoals": n_subgoals}  # fmt: skip
        atomic_write_json(tmp / DONE, rec)
    return rec


def link_folder(src: Path, dst: Path) -> None:
    """``dst`` becomes a demo folder holding ``src``'s files as symlinks (its cache shared, so
    fitted backbones and embeddings are reused), with no subgoals of its own yet."""
    from demos.subgoals import SUBGOALS

    dst.mkdir(parents=True, exist_ok=True)
    for name in ("dataset.json", "stats.json", "cache"):
        if (src / name).exists():
            (dst / name).symlink_to((src / name).resolve(), target_is_directory=name == "cache")
    for ep in sorted((src / "episodes").iterdir()):
        (dst / "episodes" / ep.name).mkdir(parents=True)
        for f in ep.iterdir():
            if f.name != SUBGOALS and f.suffix != ".png":  # the source's own decomposition
                (dst / "episodes" / ep.name / f.name).symlink_to(f.resolve())


def _train(s: DemoSettings, goal: str, demos: Path, run: Path, progress: bool) -> dict[str, Any]:
    """A BESO policy on the cameras' embeddings (or on state, for backbone=state); resumes a
    run that was killed, skips one that finished. goal=equal trains as goal=uvd on the mirror
    folder's evenly spaced subgoals."""
    import torch

    from policies.checkpoint import CHECKPOINTS, step_folders
    from policies.train import train

    if (rec := _cached(run)) is not None:
        return rec
    resume = bool(step_folders(run / CHECKPOINTS))
    threads = torch.get_num_threads()
    torch.set_num_threads(s.train_threads)
    try:
        visual = {}
        if s.visual:  # cameras through the frozen backbone, and the arm's own state
            visual = dict(state_keys=list(PROPRIO_KEYS), embeddings=list(s.cameras),
                          backbone=s.backbone, backbone_fit=_fit_args(s))  # fmt: skip
        result = train(
            demos, run, policy=dict(s.policy), goal="uvd" if goal == "equal" else goal,
            steps=s.train_steps, **visual,
            batch_size=s.batch_size, lr=s.lr, warmup_steps=min(500, s.train_steps // 10),
            checkpoint_every=max(1, s.train_steps // 4), seed=s.seed, resume=resume,
            progress=progress,
        )  # fmt: skip
    finally:
        torch.set_num_threads(threads)
    rec = {
        "summary": f"goal={goal}: {result.steps} steps, final loss {result.loss:.4f}, "
        f"{result.samples_per_s:,.0f} samples/s" + (" (resumed)" if resume else ""),
        "checkpoint": str(result.checkpoint),
        "loss": result.loss,
        "samples_per_s": result.samples_per_s,
        "resumed": resume,
    }
    atomic_write_json(run / DONE, rec)
    return rec


def _evaluate(
    s: DemoSettings, run: Path, out: Path, orders: str | None, progress: bool
) -> dict[str, Any]:
    """Seeded rollouts; goal=uvd policies follow the expert demo's subgoals with the relay."""
    from decomposer.task import RelaySettings

    from .evaluate import evaluate

    if (rec := _cached(out)) is not None:
        return rec
    if out.exists():
        shutil.rmtree(out)
    with staging_dir(out) as tmp:
        result = evaluate(
            run, s.task, s.eval_episodes, s.eval_seed, out_dir=tmp, workers=s.workers,
            videos=s.videos, video_camera=s.camera, orders=orders, progress=progress,
            relay=RelaySettings(rule=s.relay), max_steps=s.max_steps,
            task_demos=str(out.parent / "task_demos"),  # one per seed, shared by the policies
        )  # fmt: skip
        info = result.info
        rec = {
            "summary": f"{out.name.split('-')[0].removeprefix('eval_')}: "
            f"{info['pc_success']:.0f}% success "
            f"({info['n_success']}/{info['episodes']}), mean stages {info['mean_stages']:.2f}",
            "pc_success": info["pc_success"],
            "n_success": info["n_success"],
            "episodes": info["episodes"],
            "mean_stages": info["mean_stages"],
            "errors": info["n_errors"],
        }
        atomic_write_json(tmp / DONE, rec)
    return rec
