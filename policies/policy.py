"""The inference-time policy: observation history, action queue, goal, sampler settings.

``Policy.from_pretrained(dir)``; ``reset()`` at each episode start; ``act(obs, goal)`` once per
control step returns one action. It keeps the last ``n_obs`` observations and plans a chunk of
``horizon`` actions when its queue is empty, executing ``n_action_steps`` of them (1 = BESO's
re-planning every step), or blends overlapping chunks (``temporal_ensemble``, ACT's scheme).
With ``delay=d`` a plan made at step k runs from step k + d (the old chunk runs meanwhile; the
first plan of an episode is waited for), as on a robot whose inference takes d steps; ``rtc``
samples each plan held to the actions that will run meanwhile (``policies.rtc``).
Each step's observation is encoded once, however many plans it takes part in.

A policy trained on a decomposer backbone's embeddings (``PolicyConfig.backbone``) takes either
the embedding itself (``obs["<camera>_emb"]``, (D,) float) or the raw frame (``obs["<camera>"]``,
uint8 (H, W, 3)), which it embeds with the recorded backbone (loaded on first use); goals alike.
"""

from __future__ import annotations

import os
from collections import deque
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch

from .checkpoint import EMA, MODEL, CheckpointError, load_config, load_stats, load_weights, resolve
from .chunks import Chunk, plan_due, scheduled_action
from .config import INFERENCE_FIELDS, PolicyConfig
from .embeddings import embedded_cameras
from .frames import FrameShapeError, fit_frame
from .model import BesoModel
from .normalize import Normalizers
from .rtc import overlap_weights
from .samplers import get_sampler
from .schedules import SCHEDULES

Observation = Mapping[str, Any]


class PolicyInputError(ValueError):
    """An observation or goal does not fit the checkpoint; the message names the key."""


class Policy:
    """A trained BESO model wrapped for control: checks inputs, normalises, keeps history."""

    def __init__(
        self,
        model: BesoModel,
        stats: Mapping[str, Mapping[str, list[float]]],
        *,
        device: str | torch.device = "cpu",
        backbone_dir: str | os.PathLike | None = None,
        backbone_weights: str | os.PathLike | None = None,
    ):
        self.model = model.eval().to(device)
        for enc in (model.obs_encoder, model.goal_encoder):
            if enc is not None:
                enc.for_inference()
        self.config: PolicyConfig = model.cfg
        self.device = torch.device(device)
        cfg = self.config
        self.norm = Normalizers(stats, ["action", *cfg.state], cfg.normalization).to(self.device)
        lo, hi = (torch.tensor(stats["action"][k], dtype=torch.float32) for k in ("min", "max"))
        self._action_range = lo.to(self.device), hi.to(self.device)
        self._keys = {
            "observation": (cfg.state, cfg.cameras, cfg.embeddings),
            "goal": (
                {k: d for k, d in cfg.state.items() if k in cfg.resolved_goal_keys},
                [c for c in cfg.cameras if c in cfg.resolved_goal_keys],
                {k: d for k, d in cfg.embeddings.items() if k in cfg.resolved_goal_keys},
            ),
        }
        # embedding key -> camera whose raw frames the recorded backbone can embed
        self._embedded = embedded_cameras(cfg)
        self._backbone_dir = None if backbone_dir is None else Path(backbone_dir)
        self._backbone_weights = backbone_weights
        self._embedders: dict[str, Any] = {}
        self._frame_memo: dict[str, tuple[np.ndarray, np.ndarray]] = {}
        self.settings: dict[str, Any] = {f: getattr(cfg, f) for f in INFERENCE_FIELDS}
        self.generator: torch.Generator | None = None
        self.configure()

    # ------------------------------------------------------------------------ construction
    @classmethod
    def from_pretrained(
        cls,
        path: str | os.PathLike,
        *,
        weights: str = "ema",
        device: str | torch.device = "cpu",
        backbone_weights: str | os.PathLike | None = None,
        **settings: Any,
    ) -> Policy:
        """Load a checkpoint folder (or a run folder: its newest checkpoint); never unpickles.

        ``weights``: "ema" (the averaged weights, for evaluation) or "model" (the raw ones).
        ``backbone_weights``: for a policy on a pretrained backbone's embeddings, its weights
        file (else the backbone cache); checked against the recorded hash. Backbones fitted on
        the demo folder are loaded from the checkpoint's own safetensors file.
        ``settings``: inference overrides (sampler, steps, schedule, guidance, ...).
        """
        if weights not in ("ema", "model"):
            raise ValueError(f"weights={weights!r}: use 'ema' or 'model'")
        ckpt = resolve(path)
        cfg, _ = load_config(ckpt)
        stats = load_stats(ckpt, ["action", *cfg.state])
        model = BesoModel(cfg)
        load_weights(model, ckpt / (EMA if weights == "ema" else MODEL))
        for cam, entry in ((cfg.backbone or {}).get("cameras") or {}).items():
            if entry.get("weights") and not (ckpt / entry["weights"]).is_file():
                raise CheckpointError(
                    f"{ckpt / entry['weights']}: missing file (backbone of {cam!r})"
                )
        policy = cls(
            model, stats, device=device, backbone_dir=ckpt, backbone_weights=backbone_weights
        )
        policy.configure(**settings)
        return policy

    def configure(self, **settings: Any) -> None:
        """Change inference settings without retraining; clears planned actions."""
        unknown = sorted(set(settings) - set(INFERENCE_FIELDS))
        if unknown:
            raise ValueError(f"unknown inference settings {unknown}; use {list(INFERENCE_FIELDS)}")
        s = {**self.settings, **settings}
        get_sampler(s["sampler"])
        if s["schedule"] not in SCHEDULES:
            raise ValueError(f"schedule {s['schedule']!r}: use one of {sorted(SCHEDULES)}")
        if not 1 <= s["n_action_steps"] <= self.config.horizon:
            raise ValueError(f"n_action_steps={s['n_action_steps']} not in [1, horizon]")
        if s["guidance"] < 0:
            raise ValueError(f"guidance={s['guidance']} must be >= 0")
        check_chunking(s, self.config.horizon)
        self._sigmas = self.model.sigmas(
            s["steps"], s["schedule"], s["sigma_min"], s["sigma_max"], s["rho"]
        ).to(self.device)
        self.settings = s
        self.reset()

    @property
    def needs_goal(self) -> bool:
        return self.config.uses_goal and self.settings["guidance"] != 0

    def reset(self, seed: int | None = None) -> None:
        """Start an episode: forget history, queued actions and the last goal."""
        self._history: deque[list] = deque(maxlen=self.config.n_obs)  # [inputs, features]
        self._chunks: deque[Chunk] = deque(maxlen=self.config.horizon)  # newest last
        self._pending: deque[Chunk] = deque()  # planned, not yet usable (``delay``)
        self._source: Chunk | None = None  # the newest chunk behind the last action
        self.handover = False  # whether the last action came from another chunk than before
        self._t = 0
        self._goal_cache: tuple[dict[str, np.ndarray], torch.Tensor] | None = None
        if seed is not None:
            self.generator = torch.Generator(self.device).manual_seed(seed)

    # ------------------------------------------------------------------------ per step
    @torch.inference_mode()
    def act(self, obs: Observation, goal: Observation | None = None) -> np.ndarray:
        """One action (A,) for this control step, in the dataset's units."""
        self.observe(obs)
        t, self._t = self._t, self._t + 1
        s = self.settings
        m, delay = s["temporal_ensemble"], s["delay"]
        while self._pending and self._pending[0].tick + delay <= t:
            self._chunks.append(self._pending.popleft())
        if plan_due(self._newest(), t, s["n_action_steps"], m is not None):
            prefix = self._committed(t) if s["rtc"] else None
            chunk = Chunk(t, self._plan(goal, prefix))
            # the first plan of an episode is waited for: nothing could run before it
            (self._pending if delay and self._chunks else self._chunks).append(chunk)
        action, source = scheduled_action(self._chunks, t, m)
        self.handover = self._source is not None and source is not self._source
        self._source = source
        return action if m is None else action.astype(np.float32)

    def _newest(self) -> Chunk | None:
        """The newest plan made, usable yet or not."""
        if self._pending:
            return self._pending[-1]
        return self._chunks[-1] if self._chunks else None

    def _committed(self, t: int) -> tuple[np.ndarray, int] | None:
        """What the plans already made will run from tick t on, and how many of those actions
        run before a plan made now can (RTC's prefix); None at the start of an episode.

        With ``delay`` > ``n_action_steps`` several plans are in flight: each tick's action
        comes from the newest plan arrived by then, so the prefix may join two of them.
        """
        if not self._chunks:
            return None
        delay, rest = self.settings["delay"], []
        for u in range(t, t + self.config.horizon):
            due = [c for c in self._pending if c.tick + delay <= u]
            source = due[-1] if due else self._chunks[-1]
            if u - source.tick >= len(source.actions):
                break
            rest.append(source.actions[u - source.tick])
        return (np.stack(rest), min(delay, len(rest))) if rest else None

    @torch.inference_mode()
    def predict_chunk(
        self,
        obs: Observation | None = None,
        goal: Observation | None = None,
        *,
        prefix: tuple[np.ndarray, int] | None = None,
    ) -> np.ndarray:
        """A whole plan (horizon, A) from now, for callers that schedule actions themselves.

        Pass ``obs`` (or call ``observe`` every control step) so the history stays per step.
        ``prefix``: (the old plan's actions from now on (L, A), how many of them will run
        before this plan can) to sample it held to them (real-time chunking).
        """
        if obs is not None:
            self.observe(obs)
        return self._plan(goal, prefix)

    def reads_next_observation(self) -> bool:
        """Whether the observation of the next ``act`` can reach a plan: a plan reads the last
        ``n_obs`` observations, so between plans most steps' camera frames are never looked
        at, and a simulator need not render them (``SimEnv.step(render=False)``)."""
        newest = self._newest()
        n, ensemble = (
            self.settings["n_action_steps"],
            self.settings["temporal_ensemble"] is not None,
        )
        return any(plan_due(newest, self._t + k, n, ensemble) for k in range(self.config.n_obs))

    def observe(self, obs: Observation) -> None:
        """Add this step's observation to the history (checked; encoded only when needed)."""
        self._history.append([self._inputs(obs, "observation"), None])

    # ------------------------------------------------------------------------ internals
    def _plan(self, goal: Observation | None, prefix: tuple[np.ndarray, int] | None = None):
        if not self._history:
            raise PolicyInputError("no observation yet: call act(obs) or observe(obs) first")
        s = self.settings
        x = self.model.sample(
            self._obs_features(),
            self._goal_features(goal),
            sampler=s["sampler"],
            guidance=s["guidance"],
            sigmas=self._sigmas,
            generator=self.generator,
            prefix=None if prefix is None else self._prefix(*prefix),
        )[0]
        lo, hi = self._action_range
        return self.norm.unnormalize("action", x).clamp_(lo, hi).cpu().numpy()

    def _prefix(self, actions: np.ndarray, committed: int) -> tuple[torch.Tensor, torch.Tensor]:
        """The old plan padded to the horizon, normalised, and its RTC weights."""
        h = self.config.horizon
        actions = np.asarray(actions, dtype=np.float32)[:h]
        target = torch.zeros(1, h, self.config.action_dim, device=self.device)
        target[0, : len(actions)] = torch.from_numpy(actions).to(self.device)
        w = overlap_weights(len(actions), min(committed, len(actions)), h)
        weights = torch.as_tensor(w, dtype=torch.float32, device=self.device)
        return self.norm.normalize("action", target), weights

    def _obs_features(self) -> torch.Tensor:
        pending = [h for h in self._history if h[1] is None]
        if pending:
            batch = {k: torch.cat([h[0][k] for h in pending], 1) for k in pending[0][0]}
            feats = self.model.encode_obs(batch)
            for i, h in enumerate(pending):
                h[1] = feats[:, i : i + 1]
        feats = [h[1] for h in self._history]
        feats = [feats[0]] * (self.config.n_obs - len(feats)) + feats  # as in training
        return torch.cat(feats, 1)

    def _goal_features(self, goal: Observation | None) -> torch.Tensor | None:
        cfg = self.config
        if not cfg.uses_goal:
            return None
        if goal is None:
            if self.needs_goal:
                raise PolicyInputError(
                    f"this policy is goal-conditioned (trained with goal={cfg.goal!r}): pass "
                    f"act(obs, goal) with keys {cfg.resolved_goal_keys}, or configure(guidance=0) "
                    "for the goal-free policy"
                )
            return torch.zeros(1, 1, self.model.goal_dim, device=self.device)
        arrays = self._arrays(goal, "goal")
        cached = self._goal_cache
        if cached is not None and all(np.array_equal(arrays[k], cached[0][k]) for k in arrays):
            return cached[1]
        inputs = {k: self._tensor(k, a)[:, 0] for k, a in arrays.items()}
        emb = self.model.encode_goal(inputs)
        self._goal_cache = ({k: a.copy() for k, a in arrays.items()}, emb)
        return emb

    def _inputs(self, obs: Observation, what: str) -> dict[str, torch.Tensor]:
        return {k: self._tensor(k, a) for k, a in self._arrays(obs, what).items()}

    def _tensor(self, key: str, a: np.ndarray) -> torch.Tensor:
        t = torch.from_numpy(a).to(self.device)
        if key in self.config.state:
            t = self.norm.normalize(key, t)
        return t[None, None]

    def _arrays(self, values: Observation, what: str) -> dict[str, np.ndarray]:
        """Check one step's values against the checkpoint: present, shaped, typed, finite."""
        state, cameras, embeddings = self._keys[what]
        prefix = "obs." if what == "observation" else "goal."
        out = {}

        def get(key):
            v = values.get(key, values.get(prefix + key))
            if v is None and key in self._embedded:
                cam = self._embedded[key]
                frame = values.get(cam, values.get(prefix + cam))
                if frame is not None:
                    return self._embed(key, frame, what)
            if v is None:
                need = [*state, *cameras, *embeddings]
                raw = f" or the raw frame {self._embedded[key]!r}" if key in self._embedded else ""
                raise PolicyInputError(
                    f"{what} is missing {key!r}{raw} (the checkpoint needs {need})"
                )
            return v

        for key, dims in ({**state, **embeddings}).items():
            a = np.asarray(get(key), dtype=np.float32)
            if a.shape != (dims,):
                raise PolicyInputError(
                    f"{what} {key!r} has shape {a.shape}, the checkpoint expects ({dims},)"
                )
            if not np.isfinite(a).all():
                raise PolicyInputError(f"{what} {key!r} has NaN or inf values: {a}")
            out[key] = a
        for cam in cameras:
            try:  # another resolution of the same aspect ratio is resized to the trained one
                out[cam] = fit_frame(get(cam), self.config.cameras[cam], cam, what)
            except FrameShapeError as e:
                raise PolicyInputError(str(e)) from None
        return out

    def _embed(self, key: str, frame: Any, what: str) -> np.ndarray:
        """A raw camera frame through the recorded backbone; the last frame per key is memoised
        (a goal image is passed every step but embedded once)."""
        cam = self._embedded[key]
        size = (self.config.backbone or {})["cameras"][cam].get("size")
        try:  # the backbone embeds frames at the size its cache was made from
            a = fit_frame(frame, size, cam, what) if size else np.asarray(frame)
        except FrameShapeError as e:
            raise PolicyInputError(str(e)) from None
        if a.ndim != 3 or a.shape[-1] != 3 or a.dtype != np.uint8:
            raise PolicyInputError(
                f"{what} {cam!r} is {a.dtype} {a.shape}: the backbone embeds uint8 (H, W, 3) RGB"
            )
        memo = self._frame_memo.get(f"{what}.{key}")
        if memo is not None and np.array_equal(memo[0], a):
            return memo[1]
        if cam not in self._embedders:
            from .embeddings import load_embedder

            if self._backbone_dir is None:
                raise PolicyInputError(
                    f"{what} {key!r}: pass the embedding; this policy was not loaded with "
                    f"from_pretrained, so it has no backbone to embed {cam!r} frames"
                )
            self._embedders[cam] = load_embedder(
                self._backbone_dir,
                self.config.backbone,
                cam,
                weights=self._backbone_weights,
                device=self.device,
            )
        emb = self._embedders[cam].embed(a[None])[0]
        self._frame_memo[f"{what}.{key}"] = (a.copy(), emb)
        return emb


def check_chunking(settings: Mapping[str, Any], horizon: int) -> None:
    """The chunk schedule's settings fit together: the old chunk must cover the ``delay``
    ticks after each plan."""
    delay, n = settings["delay"], settings["n_action_steps"]
    if not isinstance(delay, int) or delay < 0:
        raise ValueError(f"delay={delay!r}: a whole number of control steps >= 0")
    if settings["temporal_ensemble"] is None and n + delay > horizon:
        raise ValueError(
            f"n_action_steps={n} + delay={delay} > horizon={horizon}: the running chunk would "
            "end before the next one arrives; lower n_action_steps"
        )
    if settings["rtc"] and settings["temporal_ensemble"] is not None:
        raise ValueError("rtc and temporal_ensemble exclude each other: choose one")
