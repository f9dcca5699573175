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


PROPRIO_KEYS = ("eef_pos", "eef_quat", "gripper_qpos")  # what a camera policy knows of itself
AUTO = "auto"  # orders: the task's split (train on "train", evaluate on "heldout"), or none


@dataclass
class DemoSettings:
    """What the demo runs; configs/demo.yaml holds the defaults, ``quick`` a smaller set."""

    task: str = "arrange"
    episodes: int = 40  # scripted demos (seeds seed..seed+episodes-1)
    # recorded with the demos; with a visual backbone, the policies' only view of the objects
    cameras: tuple[str, ...] = ("agentview",)
    camera: str = "agentview"  # the video UVD cuts and the report films
    image_size: tuple[int, int] = (84, 84)
    # decomposer backbone: a visual one (bc_local, pixels, ...) makes camera-only policies on
    # its embeddings of ``cameras``; "state" makes state policies (the simulator's object poses)
    backbone: str = "pixels"
    fit_steps: int | None = 1500  # an offline backbone's fit length (None: its default)
    min_interval_s: float = 0.9  # UVD: at least this long between subgoals
    # one policy per goal, same data and budget: UVD's subgoals, the final frame, and as many
    # evenly spaced subgoals as UVD found on average (what UVD's choice adds)
    goals: tuple[str, ...] = ("uvd", "final", "equal")
    policy: dict[str, Any] = field(default_factory=dict)  # PolicyConfig overrides
    train_steps: int = 3000
    batch_size: int = 256
    lr: float = 3e-4
    train_threads: int = 1  # one never stalls on a busy machine (BENCHMARKS.md: pipeline)
    eval_episodes: int = 20  # per policy and per set of orders
    eval_seed: int = 1000  # evaluation seeds never overlap the demos' seeds
    max_steps: int | None = None  # evaluation episode limit (None: the task's horizon)
    videos: int = 1  # filmed episodes per policy and set (the report shows the first)
    workers: int = 2  # processes for collection and evaluation (0: evaluate in this process)
    seed: int = 0
    # tasks with orders (arrange, pickplace4): the orders of the demos, of the evaluation, and
    # of a second, in-domain evaluation; a split name, None, or "auto": train / heldout / train
    # for such tasks, None for the others. UVD's protocol: unseen compositions of seen subtasks.
    train_orders: str | None = AUTO
    eval_orders: str | None = AUTO
    seen_orders: str | None = AUTO
    relay: str = "relative"  # how the goal=uvd policy walks the task demo's subgoals

    def __post_init__(self) -> None:
        from decomposer.task import RELAY_RULES

        from .errors import SimError
        from .orders import TASK_ORDERS, resolve_orders

        if self.relay not in RELAY_RULES:
            raise ValueError(f"relay={self.relay!r}: use one of {', '.join(RELAY_RULES)}")
        unknown = [g for g in self.goals if g not in GOALS]
        if unknown or not self.goals:
            raise ValueError(f"goals={list(self.goals)}: use some of {', '.join(GOALS)}")
        if self.camera not in self.cameras:
            raise ValueError(f"camera={self.camera!r} is not among cameras={list(self.cameras)}")
        ordered = self.task in TASK_ORDERS
        for name, split in (("train_orders", "train"), ("eval_orders", "heldout"),
                            ("seen_orders", "train")):  # fmt: skip
            if getattr(self, name) == AUTO:
                setattr(self, name, split if ordered else None)
            try:  # an unknown split is named here, before any stage runs
                resolve_orders(getattr(self, name), self.task)
            except SimError as e:
                raise ValueError(f"{name}={getattr(self, name)!r}: {e}") from None
        if self.seen_orders is not None and self.seen_orders == self.eval_orders:
            self.seen_orders = None  # the same episodes twice

    @property
    def visual(self) -> bool:
        """Whether the policies see the cameras (through the backbone) instead of object state."""
        from decomposer.registry import get_spec

        return get_spec(self.backbone).inputs == "frames"

    @property
    def eval_sets(self) -> dict[str, str | None]:
        """Evaluation name suffix -> orders: the main set, then the in-domain check."""
        sets = {"": self.eval_orders}
        if self.seen_orders is not None:
            sets[" seen"] = self.seen_orders
        return sets

    def stage_keys(self) -> dict[str, str]:
        """Each stage's cache key: a hash of its own settings and its inputs' keys."""
        s = asdict(self)
        orders = [s["train_orders"]] if s["train_orders"] else []  # keys of order-free runs stay
        cams = [] if s["cameras"] == [s["camera"]] else [s["cameras"]]
        collect = _key(
            s["task"], s["episodes"], s["camera"], s["image_size"], s["seed"], *orders,
            f"obs{OBS_LAYOUT}", *cams,
        )  # fmt: skip
        fit = [s["fit_steps"]] if s["fit_steps"] else []
        decompose = _key(collect, s["backbone"], s["min_interval_s"], *fit)
        keys = {"collect": collect, "decompose": decompose}
        if "equal" in self.goals:
            keys["decompose equal"] = _key(decompose, "equal")
        for goal in self.goals:
            upstream = {"uvd": decompose, "final": collect}.get(goal, keys.get("decompose equal"))
            visual = [s["backbone"], *fit] if self.visual else []
            train = _key(upstream, goal, s["policy"], s["train_steps"], s["batch_size"], s["lr"],
                         *visual)  # fmt: skip
            keys[f"train {goal}"] = train
            for suffix, held_orders in self.eval_sets.items():
                held = [held_orders] if held_orders else []
                if goal == "uvd" and s["relay"] != "relative":  # keys of earlier runs stay
                    held.append(s["relay"])
                if s["max_steps"]:
                    held.append(f"max{s['max_steps']}")
                keys[f"eval {goal}{suffix}"] = _key(
                    train, s["eval_episodes"], s["eval_seed"], s["videos"], *held
                )
        return keys


GOALS = ("uvd", "final", "equal")


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


QUICK_FIT_STEPS = 300  # bc_local's fit in a smoke test: enough to run, not to see
QUICK_MAX_STEPS = 150  # a smoke test's episodes: every stage runs, none needs to finish


def quick_settings(base: DemoSettings) -> DemoSettings:
    """The smoke-test variant (``quick=true``): same task and stages, a fraction of the work."""
    from dataclasses import replace

    return replace(
        base, episodes=min(base.episodes, 10), train_steps=min(base.train_steps, 400),
        batch_size=min(base.batch_size, 128), eval_episodes=min(base.eval_episodes, 2),
        videos=min(base.videos, 1),
        max_steps=min(base.max_steps or QUICK_MAX_STEPS, QUICK_MAX_STEPS),
        fit_steps=min(base.fit_steps or QUICK_FIT_STEPS, QUICK_FIT_STEPS),
    )  # fmt: skip


def settings_from(cfg: Mapping[str, Any]) -> DemoSettings:
    """``DemoSettings`` from a mapping (a resolved hydra config); keys that are not settings
    (out_dir, cache_dir, quick, progress) are left for the caller."""
    from dataclasses import fields

    kw = {f.name: cfg[f.name] for f in fields(DemoSettings) if f.name in cfg}
    for k in ("image_size", "goals", "cameras"):
        if k in kw:
            kw[k] = tuple(kw[k])
    if "policy" in kw:
        kw["policy"] = dict(kw["policy"])
    return DemoSettings(**kw)
