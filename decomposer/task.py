"""A task demo becomes goals: the one path from a demo episode to the goal of every step.

A goal-conditioned policy is told its task by a demo. goal=final (or future) policies get the
demo's last observation. goal=uvd policies get the demo's subgoals, one at a time: the frames
from the episode's ``subgoals.json`` when it has one, otherwise UVD run here on the demo's
embeddings, then a ``SubgoalRelay`` rule that moves to the next subgoal as the rollout
progresses. The evaluator (``sim.evaluate``) and the deploy loop (``real.deploy``) both call
``task_goals``; what embeds an observation is a plain function, so state goals (scaled state)
and visual goals (a backbone over a camera's frames) enter through the same door.

Settings are seconds above ``decompose()``: ``RelaySettings.min_interval_s`` is converted to
frames once, at the demo's fps.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np

from demos.folder import DemoFolder
from demos.subgoals import check_subgoals, has_subgoals, read_subgoals

from .defaults import DEFAULT_GAMMA, DEFAULT_MIN_INTERVAL_S
from .relay import DEFAULT_DELTA, SubgoalRelay

Goal = dict[str, np.ndarray]
#: {key: rows (T, ...) or one observation's values} -> embeddings (T, D) or (D,)
Embed = Callable[[Mapping[str, np.ndarray]], np.ndarray]
RelayRule = Literal["relative", "paper", "nearest"]
RELAY_RULES: tuple[str, ...] = tuple(DEFAULT_DELTA)
CUTS = ("uvd", "equal")  # how a task demo without subgoals.json is cut
#: The keys ``relay_settings`` reads from a command's config (``min_interval``: renamed).
RELAY_CONFIG_KEYS = ("relay", "relay_eps", "relay_delta", "min_interval_s", "gamma", "min_interval")


@dataclass(frozen=True)
class RelaySettings:
    """How a goal=uvd policy walks a task demo's subgoals, and how the demo is cut without a
    ``subgoals.json``.

    ``rule``: "relative" (UVD's code: each subgoal timed against the demo's steps for it, with
    ``delta`` steps of slack, and a relative distance ``eps``), "paper" (the paper's timed rule)
    or "nearest" (the subgoal ahead of the demo frame nearest the current observation: follows
    progress, never runs ahead of a slow rollout). ``cut``: how a demo without subgoals is cut,
    "uvd" or "equal" (``n_subgoals`` evenly spaced frames, the baseline). ``min_interval_s`` and
    ``gamma``: UVD's decomposition (seconds between subgoals; RBF bandwidth over frames).
    """

    rule: RelayRule = "relative"
    eps: float = 0.2
    delta: int | None = None  # None: the rule's own (relative 3, paper 2)
    min_interval_s: float = DEFAULT_MIN_INTERVAL_S
    gamma: float = DEFAULT_GAMMA
    cut: str = "uvd"
    n_subgoals: int = 4  # cut="equal" only

    def __post_init__(self) -> None:
        if self.rule not in RELAY_RULES:
            raise ValueError(f"relay rule={self.rule!r}: use one of {', '.join(RELAY_RULES)}")
        if self.cut not in CUTS:
            raise ValueError(f"relay cut={self.cut!r}: use one of {', '.join(CUTS)}")
        if isinstance(self.n_subgoals, bool) or not self.n_subgoals >= 1:
            raise ValueError(f"n_subgoals must be an int >= 1, got {self.n_subgoals!r}")
        if not self.eps > 0:
            raise ValueError(f"relay eps must be > 0, got {self.eps}")
        if self.delta is not None and (isinstance(self.delta, bool) or self.delta < 0):
            raise ValueError(f"relay delta must be an int >= 0 steps, got {self.delta!r}")
        if not self.min_interval_s >= 0:
            raise ValueError(f"min_interval_s must be >= 0 seconds, got {self.min_interval_s}")
        if not self.gamma > 0:
            raise ValueError(f"gamma must be > 0, got {self.gamma}")

    def min_interval(self, fps: float) -> int:
        """``min_interval_s`` in frames of a demo recorded at ``fps``."""
        return round(self.min_interval_s * fps)

    def for_policy(self, subgoal_cut: Mapping[str, Any] | None) -> RelaySettings:
        """These settings, cutting task demos as the policy's training subgoals were cut
        (``PolicyConfig.subgoal_cut``; None: UVD)."""
        from dataclasses import replace

        if not subgoal_cut or subgoal_cut.get("method", "uvd") == "uvd":
            return replace(self, cut="uvd")
        return replace(self, cut=str(subgoal_cut["method"]),
                       n_subgoals=int(subgoal_cut.get("n_subgoals", 4)))  # fmt: skip


@dataclass
class TaskDemo:
    """A demo that specifies a task: its rows ({key: (T, ...)}), fps, its subgoal frames when
    its folder holds a ``subgoals.json`` (else None: cut it here), and what it was."""

    rows: dict[str, np.ndarray]
    fps: float
    subgoals: list[int] | None = None
    info: dict[str, Any] = field(default_factory=dict)


def read_task_demo(folder: DemoFolder, episode: str | int, keys: Sequence[str]) -> TaskDemo:
    """Episode ``episode`` of ``folder`` as a task: the rows of ``keys`` (state keys or
    cameras; frames are decoded only when a key is a camera) and its ``subgoals.json``."""
    cams = [k for k in keys if k in folder.info.cameras]
    ep = folder.read_episode(episode, frames=bool(cams))
    values = {**ep.state, **ep.frames}
    missing = [k for k in keys if k not in values]
    if missing:
        raise ValueError(f"{folder.root}: the goal keys {missing} are not in dataset.json")
    subgoals = None
    if has_subgoals(folder, episode):
        subgoals = read_subgoals(folder, episode, ep.length).frames
    info = {"source": f"{folder.root}:{folder.episode_dir(episode).name}", "length": ep.length,
            "success": ep.success}  # fmt: skip
    return TaskDemo({k: np.asarray(values[k]) for k in keys}, folder.info.fps, subgoals, info)


def relay_settings(cfg: Mapping[str, Any], *, fps: float) -> RelaySettings:
    """``RelaySettings`` from a command's config: ``relay`` (the rule), ``relay_eps``,
    ``relay_delta``, ``min_interval_s``, ``gamma``; absent keys keep their defaults.

    Renamed settings still work, with a warning naming the new one: ``min_interval`` (frames,
    converted at ``fps``) is now ``min_interval_s``; a boolean ``relay`` (deploy's old switch)
    is now a rule name, or ``none`` for the demo's last frame (see ``relay_rule_or_none``).
    """
    import warnings

    kw: dict[str, Any] = {}
    for key, name in (("relay", "rule"), ("relay_eps", "eps"), ("relay_delta", "delta"),
                      ("min_interval_s", "min_interval_s"), ("gamma", "gamma")):  # fmt: skip
        if cfg.get(key) is not None:
            kw[name] = cfg[key]
    if cfg.get("min_interval") is not None:
        frames = cfg["min_interval"]
        warnings.warn(
            f"min_interval={frames} (frames) is renamed min_interval_s (seconds): "
            f"use min_interval_s={frames / fps:g}",
            FutureWarning,
            stacklevel=2,
        )
        if "min_interval_s" in kw:
            raise ValueError("give min_interval_s (seconds), not also min_interval (frames)")
        kw["min_interval_s"] = float(frames) / fps
    kw = {k: (float(v) if k in ("eps", "min_interval_s", "gamma") else v) for k, v in kw.items()}
    if "delta" in kw:
        kw["delta"] = int(kw["delta"])
    if "rule" in kw:
        kw["rule"] = str(kw["rule"])
    return RelaySettings(**kw)


# ------------------------------------------------------------------------------ embedders
def state_embedder(
    keys: Sequence[str], stats: Mapping[str, Mapping[str, Sequence[float]]] | None = None
) -> Embed:
    """Embeds observations by their state ``keys``, concatenated; a key with an entry in
    ``stats`` (the policy's training ``{key: {min, max}}``) is scaled to [-1, 1] so no key
    outweighs another, one without passes as it is. Works on rows (T, d) and on one (d,)."""
    scales = []
    for k in keys:
        if stats is not None and k in stats:
            lo = np.asarray(stats[k]["min"], dtype=np.float64)
            hi = np.asarray(stats[k]["max"], dtype=np.float64)
            scales.append((k, lo, np.where(hi - lo > 1e-8, hi - lo, 1.0)))
        else:
            scales.append((k, None, None))

    def embed(values: Mapping[str, np.ndarray]) -> np.ndarray:
        parts = []
        for k, lo, width in scales:
            x = np.asarray(values[k], dtype=np.float64)
            parts.append(x if lo is None else 2 * (x - lo) / width - 1)
        return np.concatenate(parts, axis=-1)

    return embed


def frames_embedder(encoder, camera: str) -> Embed:
    """Embeds observations by a visual encoder (``.embed(uint8 (T, H, W, 3)) -> (T, D)``) over
    ``camera``'s frames; one frame (H, W, 3) gives one (D,) embedding."""

    def embed(values: Mapping[str, np.ndarray]) -> np.ndarray:
        frames = np.asarray(values[camera])
        if frames.ndim == 3:
            return np.asarray(encoder.embed(frames[None]), dtype=np.float64)[0]
        return np.asarray(encoder.embed(frames), dtype=np.float64)

    return embed


# ------------------------------------------------------------------------------ goal sources
class FixedGoal:
    """One goal for the whole rollout (the demo's last observation)."""

    def __init__(self, goal: Goal):
        self.goal = goal
        self.subgoals: list[int] = []
        self.relay = None

    @property
    def active(self) -> int:
        return 0

    @property
    def done(self) -> bool:
        return False

    def reset(self) -> None:
        pass

    def __call__(self, obs: Mapping[str, np.ndarray]) -> Goal:
        return self.goal


class RelayGoal:
    """The demo's active subgoal for each observation; ``relay`` moves it, never backwards."""

    def __init__(self, goals: Sequence[Goal], subgoals: Sequence[int], relay: SubgoalRelay,
                 embed: Embed):  # fmt: skip
        self.goals, self.subgoals = list(goals), [int(s) for s in subgoals]
        self.relay, self.embed = relay, embed

    @property
    def active(self) -> int:
        return self.relay.active

    @property
    def done(self) -> bool:
        return self.relay.done

    def reset(self) -> None:
        self.relay.reset()

    def __call__(self, obs: Mapping[str, np.ndarray]) -> Goal:
        return self.goals[self.relay.update(self.embed(obs))]


def demo_subgoals(
    rows: Mapping[str, np.ndarray],
    embed: Embed,
    *,
    min_interval: int,
    gamma: float,
    cut: str = "uvd",
    n_subgoals: int = 4,
) -> tuple[list[int], np.ndarray]:
    """Subgoals of a demo: (ascending frame indices ending at T-1, its (T, D) embeddings);
    UVD's, or ``n_subgoals`` evenly spaced frames for ``cut="equal"``."""
    emb = np.asarray(embed(rows), dtype=np.float64)
    if cut == "equal":
        from .baselines import equal

        return equal(emb, n_subgoals=n_subgoals), emb
    from .uvd import decompose  # scipy: only where a demo is cut

    return decompose(emb, min_interval=min_interval, gamma=gamma), emb


def relay_for(emb: np.ndarray, subgoals: Sequence[int], settings: RelaySettings) -> SubgoalRelay:
    """The ``SubgoalRelay`` that walks a task demo's subgoals (``emb``: its (T, D) embeddings).

    "relative" and "paper" time each subgoal against the steps the demo spent on it.
    "nearest" tracks progress: the active subgoal is the one the demo was heading for at its
    frame nearest the current observation (strictly ahead of that frame), UVD's
    nearest-neighbour rule with the task demo's frames as the neighbours."""
    from .relabel import budgets

    s = check_subgoals(subgoals, len(emb))
    if settings.rule != "nearest":
        return SubgoalRelay(emb[s], rule=settings.rule, budgets=budgets(s), eps=settings.eps,
                            delta=settings.delta)  # fmt: skip
    ahead = np.minimum(np.searchsorted(s, np.arange(len(emb)), side="right"), len(s) - 1)
    return SubgoalRelay(
        emb[s], rule="nearest", eps=settings.eps, train_embeddings=emb, train_goal_index=ahead
    )


def task_goals(
    rows: Mapping[str, np.ndarray],
    *,
    relay: RelaySettings | None,
    embed: Embed | None = None,
    fps: float | None = None,
    subgoals: Sequence[int] | None = None,
) -> FixedGoal | RelayGoal:
    """The goal source for a rollout whose task is the demo ``rows`` ({goal key: (T, ...)}).

    ``relay`` None: the demo's last observation, for the whole rollout. Otherwise its subgoals
    walked by that relay: ``subgoals`` (e.g. the episode's ``subgoals.json``) or, when None,
    UVD on ``embed(rows)`` at ``relay.min_interval(fps)`` frames. ``embed`` also embeds each
    observation for the relay. A demo of one subgoal (short or featureless) is still relayed:
    its goal is the last frame, and the relay says when it is reached.
    """
    T = len(next(iter(rows.values())))

    def at(t: int) -> Goal:
        return {k: v[t] for k, v in rows.items()}

    if relay is None:
        return FixedGoal(at(T - 1))
    if embed is None:
        raise ValueError("a relayed task needs an embed function (state or frames -> vector)")
    if subgoals is None:
        if fps is None:
            raise ValueError("decomposing a task demo needs its fps (min_interval_s is seconds)")
        subgoals, emb = demo_subgoals(
            rows, embed, min_interval=relay.min_interval(fps), gamma=relay.gamma,
            cut=relay.cut, n_subgoals=relay.n_subgoals,
        )  # fmt: skip
    else:
        subgoals = check_subgoals(subgoals, T).tolist()
        emb = np.asarray(embed(rows), dtype=np.float64)
    return RelayGoal([at(s) for s in subgoals], subgoals, relay_for(emb, subgoals, relay), embed)
