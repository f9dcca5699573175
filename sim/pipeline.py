"""The main job (``uvdiff-demo``): collect, decompose, train, evaluate, report, each stage cached.

Every stage writes into ``cache_dir/<stage>-<key>/``, where the key hashes the settings of that
stage and of every stage before it. A rerun with the same settings finds the finished stages
and skips them; changing, say, the number of training steps reruns training and what follows,
not collection. A killed training run resumes from its last checkpoint. The report of each run
goes to its own ``out_dir``.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import time
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from demos.atomic import atomic_write_json, staging_dir

from .spec import OBS_LAYOUT

DONE = "stage.json"  # written last in a stage's folder: the stage finished


@dataclass
class DemoSettings:
    """What the demo runs; configs/demo.yaml holds the defaults, ``quick`` a smaller set."""

    task: str = "stack"
    episodes: int = 40  # scripted demos (seeds seed..seed+episodes-1)
    camera: str = "agentview"  # recorded with the demos: UVD and the report's film strips
    image_size: tuple[int, int] = (84, 84)
    backbone: str = "state"  # decomposer backbone for the subgoals
    min_interval_s: float = 0.9  # UVD: at least this long between subgoals
    goals: tuple[str, ...] = ("uvd", "final")  # one policy per goal mode, same data and budget
    policy: dict[str, Any] = field(default_factory=dict)  # PolicyConfig overrides
    train_steps: int = 3000
    batch_size: int = 256
    lr: float = 3e-4
    train_threads: int = 1  # one never stalls on a busy machine (BENCHMARKS.md: pipeline)
    eval_episodes: int = 20
    eval_seed: int = 1000  # evaluation seeds never overlap the demos' seeds
    videos: int = 2
    workers: int = 2
    seed: int = 0
    # pickplace4 only: the task orders of the demos and of the evaluation, a split name
    # (train: 16 orders, heldout: the other 8, all) or None for each seed's own draw.
    # UVD's compositional protocol: train_orders=train eval_orders=heldout
    train_orders: str | None = None
    eval_orders: str | None = None
    relay: str = "relative"  # how the goal=uvd policy walks the task demo's subgoals

    def __post_init__(self) -> None:
        from decomposer.task import RELAY_RULES

        from .errors import SimError
        from .orders import resolve_orders

        if self.relay not in RELAY_RULES:
            raise ValueError(f"relay={self.relay!r}: use one of {', '.join(RELAY_RULES)}")
        for name in ("train_orders", "eval_orders"):
            try:  # an unknown split is named here, before any stage runs
                resolve_orders(getattr(self, name), self.task)
            except SimError as e:
                raise ValueError(f"{name}={getattr(self, name)!r}: {e}") from None

    def stage_keys(self) -> dict[str, str]:
        """Each stage's cache key: a hash of its own settings and its inputs' keys."""
        s = asdict(self)
        orders = [s["train_orders"]] if s["train_orders"] else []  # keys of order-free runs stay
        collect = _key(
            s["task"], s["episodes"], s["camera"], s["image_size"], s["seed"], *orders,
            f"obs{OBS_LAYOUT}",
        )  # fmt: skip
        decompose = _key(collect, s["backbone"], s["min_interval_s"])
        keys = {"collect": collect, "decompose": decompose}
        for goal in self.goals:
            upstream = decompose if goal == "uvd" else collect
            train = _key(upstream, goal, s["policy"], s["train_steps"], s["batch_size"], s["lr"])
            keys[f"train {goal}"] = train
            held = [s["eval_orders"]] if s["eval_orders"] else []
            if goal == "uvd" and s["relay"] != "relative":  # keys of earlier runs stay
                held.append(s["relay"])
            keys[f"eval {goal}"] = _key(
                train, s["eval_episodes"], s["eval_seed"], s["videos"], *held
            )
        return keys


@dataclass
class DemoResult:
    out_dir: Path
    report: Path
    success: dict[str, float]  # goal mode -> pc_success of this run's evaluation
    stages: dict[str, dict[str, Any]]  # stage -> what it recorded (and whether it was cached)
    wall_s: float


def _key(*parts: Any) -> str:
    return hashlib.sha1(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()[:10]


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
    names = ["collect", "validate", "decompose"]
    names += [f"train {g}" for g in settings.goals] + [f"eval {g}" for g in settings.goals]
    names.append("report")
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
    try:
        stage("collect", lambda: _collect(settings, demos, progress))
        stage("validate", lambda: _validate(demos))
        stage("decompose", lambda: _decompose(settings, demos, cache_dir, keys, progress))
        runs = {}
        for goal in settings.goals:
            runs[goal] = cache_dir / f"train_{goal}-{keys[f'train {goal}']}"
            stage(f"train {goal}", lambda g=goal: _train(settings, g, demos, runs[g], progress))
        evals = {}
        for goal in settings.goals:
            evals[goal] = cache_dir / f"eval_{goal}-{keys[f'eval {goal}']}"
            stage(f"eval {goal}", lambda g=goal: _evaluate(settings, runs[g], evals[g], progress))
        from .demo_report import write_demo_report

        report = out_dir / "report.html"
        stage(
            "report",
            lambda: write_demo_report(
                report, settings, demos, {g: runs[g] for g in settings.goals}, evals, records
            ),
        )
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
            s.task, s.episodes, tmp, s.seed, workers=s.workers, cameras=(s.camera,),
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
    from decomposer.pipeline import decompose_folder

    marker = cache_dir / f"decompose-{keys['decompose']}.json"
    if marker.is_file() and _subgoals_match(demos, s.backbone):
        return {**json.loads(marker.read_text()), "cached": True}
    summary = decompose_folder(
        demos, s.backbone, min_interval_s=s.min_interval_s, plots=True, progress=progress
    )
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


def _subgoals_match(demos: Path, backbone: str) -> bool:
    """Whether every episode's subgoals.json came from ``backbone`` (another run may have
    decomposed the same cached demos with another backbone since)."""
    from demos import DemoFolder, DemoFolderError
    from demos.subgoals import has_subgoals, read_subgoals

    folder = DemoFolder(demos)
    try:
        return all(
            has_subgoals(folder, ep) and read_subgoals(folder, ep).backbone == backbone
            for ep in folder.episode_ids
        )
    except DemoFolderError:  # a broken file: decompose again
        return False


def _train(s: DemoSettings, goal: str, demos: Path, run: Path, progress: bool) -> dict[str, Any]:
    """A state-based BESO policy; resumes a run that was killed, skips one that finished."""
    import torch

    from policies.checkpoint import CHECKPOINTS, step_folders
    from policies.train import train

    if (rec := _cached(run)) is not None:
        return rec
    resume = bool(step_folders(run / CHECKPOINTS))
    threads = torch.get_num_threads()
    torch.set_num_threads(s.train_threads)
    try:
        result = train(
            demos, run, policy=dict(s.policy), goal=goal, steps=s.train_steps,
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


def _evaluate(s: DemoSettings, run: Path, out: Path, progress: bool) -> dict[str, Any]:
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
            videos=s.videos, video_camera=s.camera, orders=s.eval_orders, progress=progress,
            relay=RelaySettings(rule=s.relay),
        )  # fmt: skip
        info = result.info
        rec = {
            "summary": f"{info['goal']}: {info['pc_success']:.0f}% success "
            f"({info['n_success']}/{info['episodes']}), mean stages {info['mean_stages']:.2f}",
            "pc_success": info["pc_success"],
            "n_success": info["n_success"],
            "episodes": info["episodes"],
            "mean_stages": info["mean_stages"],
            "errors": info["n_errors"],
        }
        atomic_write_json(tmp / DONE, rec)
    return rec


def quick_settings(base: DemoSettings) -> DemoSettings:
    """The smoke-test variant (``quick=true``): same task and stages, a fraction of the work."""
    from dataclasses import replace

    return replace(
        base, episodes=min(base.episodes, 10), train_steps=min(base.train_steps, 400),
        batch_size=min(base.batch_size, 128), eval_episodes=min(base.eval_episodes, 4),
        videos=min(base.videos, 1),
    )  # fmt: skip


def settings_from(cfg: Mapping[str, Any]) -> DemoSettings:
    """``DemoSettings`` from a mapping (a resolved hydra config); keys that are not settings
    (out_dir, cache_dir, quick, progress) are left for the caller."""
    from dataclasses import fields

    kw = {f.name: cfg[f.name] for f in fields(DemoSettings) if f.name in cfg}
    for k in ("image_size", "goals"):
        if k in kw:
            kw[k] = tuple(kw[k])
    if "policy" in kw:
        kw["policy"] = dict(kw["policy"])
    return DemoSettings(**kw)
