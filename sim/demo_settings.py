"""What ``uvdiff-demo`` runs (``DemoSettings``, defaults in configs/demo.yaml), the cache key of
each of its stages, and the smaller ``quick=true`` variant. The stages themselves are
``sim.pipeline``'s.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

from .spec import OBS_LAYOUT, PROPRIO

PROPRIO_KEYS = tuple(PROPRIO)  # what a camera policy knows of itself: the arm's own state
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


def _key(*parts: Any) -> str:
    return hashlib.sha1(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()[:10]


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
