"""The policy's configuration: what the checkpoint's ``config.yaml`` holds (plain YAML, no pickle).

One flat record: inputs and windows, network, EDM noise, goal dropout, and the inference
settings (sampler, steps, schedule, guidance, chunking) that can be changed without retraining.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

GOAL_MODES = ("final", "future", "uvd", "none")
IMAGE_TRUNKS = ("resnet18", "compact")  # policies.encoders.ImageEncoder
INFERENCE_FIELDS = (
    "sampler",
    "steps",
    "schedule",
    "rho",
    "guidance",
    "sigma_min",
    "sigma_max",
    "n_action_steps",
    "temporal_ensemble",
    "rtc",
    "delay",
)


@dataclass
class PolicyConfig:
    action_dim: int
    state: dict[str, int] = field(default_factory=dict)  # proprio key -> dim
    cameras: dict[str, list[int]] = field(default_factory=dict)  # name -> [h, w] seen (pre-crop)
    embeddings: dict[str, int] = field(default_factory=dict)  # precomputed feature key -> dim
    # where the embeddings come from: {name, cameras: {cam: {weights_hash, weights, size}}};
    # camera cam gives the key "<cam>_emb" (policies.embeddings); None: supplied by the caller
    backbone: dict[str, Any] | None = None
    goal: str = "future"  # goals in training: final, future (hindsight), uvd (subgoals), none
    goal_keys: list[str] | None = None  # None: the observation's state keys, cameras, embeddings
    # goal=uvd: how the training subgoals were cut ({method, n_subgoals}, from subgoals.json);
    # evaluation and deployment cut a task demo the same way (None: UVD)
    subgoal_cut: dict[str, Any] | None = None
    n_obs: int = 2
    horizon: int = 16
    # network
    network: str = "mlp"  # mlp | gpt
    network_kwargs: dict[str, Any] = field(default_factory=dict)
    d_state: int = 64
    d_camera: int = 64
    d_embedding: int = 64
    keypoints: int = 32
    crop: list[int] | None = None  # random crop in training, centre crop at inference
    image_trunk: str = "resnet18"  # cameras end to end: one of IMAGE_TRUNKS
    # EDM
    sigma_data: float = 0.5
    sigma_density: str = "log_logistic"
    density_loc: float | None = None  # None: ln(sigma_data) for log_logistic
    density_scale: float | None = None
    weighting: str = "edm"
    mask_padding: bool = False
    normalization: str = "min_max"
    # classifier-free guidance in training
    goal_dropout: float = 0.1
    goal_dropout_mode: str = "sample"  # sample | element (BESO's)
    # inference; also the training noise range [sigma_min, sigma_max]
    sigma_min: float = 0.005
    sigma_max: float = 1.0
    sampler: str = "ddim"
    steps: int = 3
    schedule: str = "linear"  # BESO's eval configs; fewest in-between samples at 3 steps (toy)
    rho: float = 7.0
    guidance: float = 1.0
    n_action_steps: int = 8  # actions executed per inference call (1: BESO's re-planning)
    temporal_ensemble: float | None = None  # ACT's m: predict every step, blend the overlaps
    rtc: bool = False  # real-time chunking: the next chunk held to the old one (policies.rtc)
    # inference delay in control steps: a plan made at tick k runs from k + delay (simulated in
    # uvdiff-eval; on a robot measured, this the floor of the committed actions under RTC)
    delay: int = 0

    def __post_init__(self):
        problems = []
        if self.goal not in GOAL_MODES:
            problems.append(f"goal={self.goal!r}: use one of {GOAL_MODES}")
        if self.network not in ("mlp", "gpt"):
            problems.append(f"network={self.network!r}: use mlp or gpt")
        if not 1 <= self.n_action_steps <= self.horizon:
            problems.append(f"n_action_steps={self.n_action_steps} not in [1, {self.horizon}]")
        if self.image_trunk not in IMAGE_TRUNKS:
            problems.append(f"image_trunk={self.image_trunk!r}: use one of {IMAGE_TRUNKS}")
        if self.goal_dropout_mode not in ("sample", "element"):
            problems.append(f"goal_dropout_mode={self.goal_dropout_mode!r}: use sample or element")
        if not 0 < self.sigma_min < self.sigma_max:
            problems.append(f"need 0 < sigma_min < sigma_max ({self.sigma_min}, {self.sigma_max})")
        unknown = set(self.goal_keys or ()) - {*self.state, *self.cameras, *self.embeddings}
        if unknown:
            problems.append(
                f"goal_keys {sorted(unknown)} are not state keys, cameras or embeddings"
            )
        if self.backbone is not None:
            cams = self.backbone.get("cameras") if isinstance(self.backbone, dict) else None
            if not isinstance(cams, dict) or "name" not in self.backbone:
                problems.append(f"backbone={self.backbone!r}: needs name and cameras")
            else:
                keys = [c + "_emb" for c in cams]  # policies.embeddings.embedding_key
                absent = [k for k in keys if k not in self.embeddings]
                if absent:
                    problems.append(f"backbone cameras give {absent}, not in embeddings")
        if problems:
            raise ValueError("policy config: " + "; ".join(problems))

    @property
    def uses_goal(self) -> bool:
        return self.goal != "none"

    @property
    def resolved_goal_keys(self) -> list[str]:
        if not self.uses_goal:
            return []
        if self.goal_keys is not None:
            return list(self.goal_keys)
        return [*self.state, *self.cameras, *self.embeddings]

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> PolicyConfig:
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(d) - names)
        if unknown:
            raise ValueError(f"policy config: unknown keys {unknown}")
        return cls(**d)

    def replace(self, **changes) -> PolicyConfig:
        return dataclasses.replace(self, **changes)
