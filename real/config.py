"""What a ``robot/`` config says about an arm, as typed records the loop and the shield read.

A ``configs/robot/NAME.yaml`` holds ``driver`` (the class that talks to the arm, by
``_target_``) and, next to it, what the loop needs whatever the driver: ``rate_hz``, ``action``
(kind, dim, limits), ``joints`` (names and limits) and ``shield`` (per-step caps, workspace box,
watchdogs). ``RobotSpec.from_config`` checks these once, at start-up, and names the bad field.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

ACTION_KINDS = ("joint_pos", "delta_joint", "ee_pose", "delta_ee")


class ConfigError(ValueError):
    """A robot or deploy config field is missing or wrong; the message names it."""


def _vector(value: Any, name: str, dim: int | None = None) -> np.ndarray | None:
    if value is None:
        return None
    if isinstance(value, int | float):
        if dim is None:
            raise ConfigError(f"{name}: a scalar needs a known dimension")
        value = [value] * dim
    a = np.asarray(list(value), dtype=np.float64)
    if a.ndim != 1 or (dim is not None and len(a) != dim):
        raise ConfigError(f"{name}: expected {dim} numbers, got {list(value)}")
    if np.isnan(a).any():
        raise ConfigError(f"{name}: NaN in {list(value)}")
    return a


@dataclass(frozen=True)
class ActionSpec:
    """The command the policy emits and the arm takes.

    ``kind``: joint_pos (absolute joint targets, then gripper dims), delta_joint, ee_pose
    (xyz + orientation + gripper, absolute), delta_ee (xyz deltas, rotation deltas, gripper;
    robosuite's OSC_POSE). ``low``/``high``: per-dim bounds. ``pos_scale``: metres per unit
    of the xyz numbers (delta_ee; robosuite: 0.05). ``gripper``: indices that are gripper
    commands (held at their last value when the arm holds).
    """

    kind: str
    dim: int
    low: np.ndarray | None = None
    high: np.ndarray | None = None
    pos_scale: float = 1.0
    gripper: tuple[int, ...] = ()

    def __post_init__(self):
        if self.kind not in ACTION_KINDS:
            raise ConfigError(f"action.kind={self.kind!r}: use one of {ACTION_KINDS}")
        if self.dim < 1:
            raise ConfigError(f"action.dim={self.dim} must be >= 1")
        if self.low is not None and self.high is not None and (self.low > self.high).any():
            raise ConfigError("action.low must be <= action.high")
        if any(not 0 <= g < self.dim for g in self.gripper):
            raise ConfigError(f"action.gripper={list(self.gripper)} outside [0, {self.dim})")
        if self.kind in ("delta_ee", "ee_pose") and self.dim < 3:
            raise ConfigError(f"action.kind={self.kind} needs dim >= 3 (xyz first)")
        if self.pos_scale <= 0:
            raise ConfigError(f"action.pos_scale={self.pos_scale} must be > 0")


@dataclass(frozen=True)
class ShieldSpec:
    """Limits the safety shield enforces (see ``real.shield``).

    ``max_delta``: the most each action dim may move the arm per control step (joint_pos and
    ee_pose: from the measured position; delta kinds: the delta itself); ``None`` for no cap.
    ``workspace_low/high``: the box the end effector (state key ``eef_key``) must stay in.
    ``joint_low/high``: joint limits for joint_pos/delta_joint (state key ``joint_key``).
    ``stale_periods``: hold once the newest state is older than this many control periods.
    ``camera_dark_level`` / ``camera_frozen_periods``: the camera watchdog (``real.camera_watch``).
    """

    enabled: bool = True
    max_delta: np.ndarray | None = None
    workspace_low: np.ndarray | None = None
    workspace_high: np.ndarray | None = None
    eef_key: str = "eef_pos"
    joint_low: np.ndarray | None = None
    joint_high: np.ndarray | None = None
    joint_key: str = "joint_pos"
    stale_periods: float = 3.0
    camera_dark_level: float = 4.0  # hold when a camera's mean brightness (0..255) is below
    camera_frozen_periods: float = 10.0  # hold when a frame is unchanged this long, arm moving
    log_every: int = 1  # log the first and every n-th intervention of a kind

    def __post_init__(self):
        for lo, hi, name in (
            (self.workspace_low, self.workspace_high, "workspace"),
            (self.joint_low, self.joint_high, "joint limits"),
        ):
            if (lo is None) != (hi is None):
                raise ConfigError(f"shield {name}: give both low and high")
            if lo is not None and (lo.shape != hi.shape or (lo > hi).any()):
                raise ConfigError(f"shield {name}: low must be <= high, same length")
        if self.workspace_low is not None and len(self.workspace_low) != 3:
            raise ConfigError("shield workspace: low/high are 3 numbers (x, y, z)")
        if self.max_delta is not None and (self.max_delta <= 0).any():
            raise ConfigError("shield.max_delta must be > 0 (use null for no cap)")
        if self.stale_periods <= 0:
            raise ConfigError("shield.stale_periods must be > 0")
        if self.camera_dark_level < 0 or self.camera_frozen_periods <= 0:
            raise ConfigError(
                "shield.camera_dark_level must be >= 0 and shield.camera_frozen_periods > 0, "
                f"got {self.camera_dark_level} and {self.camera_frozen_periods}"
            )


@dataclass(frozen=True)
class RobotSpec:
    name: str
    rate_hz: float
    action: ActionSpec
    shield: ShieldSpec = field(default_factory=ShieldSpec)
    joints: tuple[str, ...] = ()

    @property
    def period(self) -> float:
        return 1.0 / self.rate_hz

    @classmethod
    def from_config(cls, cfg: Mapping[str, Any]) -> RobotSpec:
        """From a ``robot/`` config (a dict or an OmegaConf node)."""
        cfg = _plain(cfg)
        name = str(cfg.get("name", "robot"))
        rate = float(_need(cfg, "rate_hz", name))
        if not 0 < rate <= 1000:
            raise ConfigError(f"robot {name}: rate_hz={rate} outside (0, 1000]")
        a = _need(cfg, "action", name)
        dim = int(_need(a, "dim", f"{name}.action"))
        action = ActionSpec(
            kind=str(_need(a, "kind", f"{name}.action")),
            dim=dim,
            low=_vector(a.get("low"), "action.low", dim),
            high=_vector(a.get("high"), "action.high", dim),
            pos_scale=float(a.get("pos_scale", 1.0)),
            gripper=tuple(int(i) for i in a.get("gripper", ()) or ()),
        )
        j = cfg.get("joints") or {}
        names = tuple(j.get("names", ()) or ())
        nj = len(names) or None
        s = cfg.get("shield") or {}
        ws = s.get("workspace") or {}
        shield = ShieldSpec(
            enabled=bool(s.get("enabled", True)),
            max_delta=_vector(s.get("max_delta"), "shield.max_delta", dim),
            workspace_low=_vector(ws.get("low"), "shield.workspace.low", 3),
            workspace_high=_vector(ws.get("high"), "shield.workspace.high", 3),
            eef_key=str(ws.get("key", "eef_pos")),
            joint_low=_vector(j.get("lower"), "joints.lower", nj),
            joint_high=_vector(j.get("upper"), "joints.upper", nj),
            joint_key=str(j.get("key", "joint_pos")),
            stale_periods=float(s.get("stale_periods", 3.0)),
            camera_dark_level=float(s.get("camera_dark_level", 4.0)),
            camera_frozen_periods=float(s.get("camera_frozen_periods", 10.0)),
            log_every=int(s.get("log_every", 1)),
        )
        if action.kind in ("joint_pos", "delta_joint") and shield.joint_low is not None:
            n = len(shield.joint_low)
            if n > dim:
                raise ConfigError(f"robot {name}: {n} joint limits for a {dim}-D action")
        return cls(name=name, rate_hz=rate, action=action, shield=shield, joints=names)


def _plain(cfg: Any) -> dict:
    try:
        from omegaconf import DictConfig, OmegaConf

        if isinstance(cfg, DictConfig):
            return OmegaConf.to_container(cfg, resolve=True)
    except ImportError:  # pragma: no cover
        pass
    return dict(cfg)


def _need(cfg: Mapping, key: str, where: str) -> Any:
    if cfg.get(key) is None:
        raise ConfigError(f"robot config {where}: missing {key!r}")
    return cfg[key]
