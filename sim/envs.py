"""``make_env``: robosuite tasks behind a gymnasium-style interface with stages and frames.

A Panda on OSC_POSE delta control at 20 Hz: an action is 7 numbers in [-1, 1], three position
deltas (1.0 = 5 cm), three axis-angle deltas (1.0 = 0.5 rad) in the robot base frame, and the
gripper (-1 open, +1 close). Observations are float32 vectors (see ``spec.PROPRIO`` and
"object": robosuite's object observables in its order, each orientation given as the first two
columns of its rotation matrix) plus an upright uint8 frame per requested camera.

Why not robosuite's object-state as it comes: its quaternions are kept with w >= 0, and the
objects of can, square and pickplace4 rest with w near 0, so their quaternions flip sign every
few steps (q and -q are the same orientation): a policy would see the object's orientation
jump across its whole range while nothing moves. The rotation matrix has one value per
orientation and moves continuously with it. robosuite also reports the first observation after
a reset before its sensors have run (PickPlace and NutAssembly objects at the origin): the env
refreshes them, so observation 0 shows where the objects are.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from .backend import import_robosuite
from .errors import SimError, UnknownEnvError
from .render import FrameRenderer
from .scene import SceneLook, SceneVariant
from .spec import PROPRIO, ObsSpec
from .tasks import ENVS, Task

CONTROL_FREQ = 20
MAX_LAYOUT_TRIES = 1000
# robosuite draws part of the model itself from env.rng when it builds the model (Lift's cube
# size, for one). The model is built from this fixed seed so that it is the same in every
# process whatever seed the env is given; seeds pick episodes (``reset(seed=)``), not models.
MODEL_SEED = 0


def rot6d(quat_xyzw: np.ndarray) -> np.ndarray:
    """The first two columns of the rotation matrix of a unit quaternion (x, y, z, w), as
    (r00, r10, r20, r01, r11, r21): the same for q and -q, continuous in the orientation."""
    x, y, z, w = np.asarray(quat_xyzw, dtype=np.float64) / np.linalg.norm(quat_xyzw)
    return np.array([
        1 - 2 * (y * y + z * z), 2 * (x * y + z * w), 2 * (x * z - y * w),
        2 * (x * y - z * w), 1 - 2 * (x * x + z * z), 2 * (y * z + x * w),
    ])  # fmt: skip


def object_features(rs_obs: dict[str, np.ndarray], keys: Sequence[str]) -> np.ndarray:
    """robosuite's object observables ``keys`` concatenated, each ``*quat`` as ``rot6d``."""
    parts = [rot6d(rs_obs[k]) if k.endswith("quat") else np.atleast_1d(rs_obs[k]) for k in keys]
    return np.concatenate(parts) if parts else np.zeros(0)


def _panda_osc_config(load) -> dict:
    """robosuite's BASIC composite config (OSC_POSE delta), cut to the Panda's one arm so
    robosuite does not warn about the torso, head, base and legs a Panda lacks."""
    cfg = load(controller="BASIC")
    cfg["body_parts"] = {"right": cfg["body_parts"]["right"]}
    return cfg


def make_env(
    name: str,
    *,
    cameras: Sequence[str] = (),
    image_size: tuple[int, int] = (84, 84),
    fast_render: bool = True,
    horizon: int | None = None,
    seed: int | None = None,
    scene: SceneVariant | None = None,
) -> SimEnv:
    """Build env ``name`` (a key of ``ENVS``); see ``SimEnv`` for the interface."""
    task = ENVS.get(name)
    if task is None:
        raise UnknownEnvError(f"unknown env {name!r}; valid envs: {', '.join(ENVS)}")
    return task(
        cameras=cameras,
        image_size=image_size,
        fast_render=fast_render,
        horizon=horizon,
        seed=seed,
        scene=scene,
    )


def env_spec(
    name: str, *, cameras: Sequence[str] = (), image_size: tuple[int, int] = (84, 84)
) -> ObsSpec:
    """The observation spec ``make_env(name, cameras=..., image_size=...)`` would have, read
    from a state-only env (no renderer is started)."""
    with make_env(name) as env:
        state = dict(env.spec.state)
    return ObsSpec(
        state=state, cameras={c: (int(image_size[0]), int(image_size[1])) for c in cameras}
    )


class SimEnv:
    """One robosuite task, gymnasium-style.

    ``reset(seed=, options=)`` -> (obs, info); ``step(action)`` -> (obs, reward, terminated,
    truncated, info). ``scene``: a look the demos never had (``sim.scene``: cameras moved,
    lights changed), for robustness checks. ``info`` always holds ``success`` (the task check
    on the current state),
    ``stage`` (milestones reached so far, never decreasing; names in ``stage_names``) and
    ``task`` (the episode's instruction). ``terminated`` is ``success``; ``truncated`` turns
    true at ``horizon`` steps. Stepping on after either is allowed (the caller decides).
    ``raw`` is the robosuite env, for scripted experts that read privileged state.
    """

    def __init__(
        self,
        task: Task,
        *,
        cameras: Sequence[str] = (),
        image_size: tuple[int, int] = (84, 84),
        fast_render: bool = True,
        horizon: int | None = None,
        seed: int | None = None,
        scene: SceneVariant | None = None,
    ):
        if len(image_size) != 2 or min(image_size) < 1:
            raise SimError(
                f"{task.name}: image_size must be (height, width) >= 1, got {image_size}"
            )
        if horizon is not None and horizon < 1:
            raise SimError(f"{task.name}: horizon must be >= 1, got {horizon}")
        suite = import_robosuite()
        from robosuite.controllers import load_composite_controller_config

        self.task = task
        self.name = task.name
        self.horizon = int(horizon or task.horizon)
        self.cameras = tuple(cameras)
        self.image_size = (int(image_size[0]), int(image_size[1]))
        self.fast_render = fast_render
        self.raw = suite.make(
            task.robosuite_env,
            robots="Panda",
            controller_configs=_panda_osc_config(load_composite_controller_config),
            has_renderer=False,
            has_offscreen_renderer=False,  # frames come from our own FrameRenderer
            use_camera_obs=False,
            use_object_obs=True,
            reward_shaping=False,
            control_freq=CONTROL_FREQ,
            horizon=self.horizon,
            ignore_done=True,  # horizon is ours to enforce (truncated), not an exception
            hard_reset=False,  # a reload per reset costs ~0.5 s and orphans our GL context
            seed=MODEL_SEED,
            **task.env_kwargs,
        )
        valid = list(self.raw.sim.model.camera_names)
        bad = [c for c in self.cameras if c not in valid]
        if bad:
            self.raw.close()
            raise SimError(f"{self.name}: no camera {bad}; cameras: {', '.join(valid)}")
        self.scene = scene or SceneVariant()
        SceneLook(self.raw.sim.model._model).set(self.scene)
        self._renderers: dict[tuple[int, int], FrameRenderer] = {}  # one per image size
        self._frames: dict[str, np.ndarray] = {}  # the cameras' last rendered frames
        if self.cameras:
            self._renderer(self.image_size)  # fail now, not at the first step, if GL is missing
        self._tracker = task.stages()
        self._object_keys = [  # robosuite concatenates these, in this order, as object-state
            name
            for name, o in self.raw._observables.items()
            if o.modality == "object" and o.is_enabled() and o.is_active()
        ]
        self.stage_names: tuple[str, ...] = tuple(self._tracker.names)
        self._t = 0
        self._info: dict[str, Any] = {}
        self.episode_info: dict[str, Any] = {}  # what reset decided: task, order (pickplace4)
        obs, _ = self.reset(seed=seed)
        self.spec = ObsSpec(
            state={k: int(obs[k].shape[0]) for k in (*PROPRIO, "object")},
            cameras={c: self.image_size for c in self.cameras},
            fps=float(CONTROL_FREQ),
        )

    # ------------------------------------------------------------------ gym interface
    def reset(
        self, *, seed: int | None = None, options: dict | None = None
    ) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
        """Start an episode; the same seed (and options) gives the same initial state."""
        options = dict(options or {})
        unknown = sorted(set(options) - set(self.task.reset_options))
        if unknown:
            accepted = ", ".join(self.task.reset_options) or "none"
            raise SimError(f"{self.name}: unknown reset options {unknown}; accepted: {accepted}")
        if seed is not None:
            # robosuite's samplers hold a reference to env.rng: reseed it in place.
            fresh = np.random.default_rng(seed)
            self.raw.rng.bit_generator.state = fresh.bit_generator.state
        self.raw.reset()
        tries = 1
        while self.task.layout_ok is not None and not self.task.layout_ok(self.raw):
            if tries >= MAX_LAYOUT_TRIES:
                raise SimError(f"{self.name}: no valid initial layout in {tries} samples")
            self.raw.reset()
            tries += 1
        reset_info = self._tracker.reset(self.raw, options, self.raw.rng)
        rs_obs = self.raw._get_observations(force_update=True)  # sensors after the placement
        self._t = 0
        self._frames = {}
        stage, success = self._tracker.update(self.raw)
        self._info = {**reset_info, "task": self.task.task_string(reset_info)}
        self.episode_info = dict(self._info)
        return self._obs(rs_obs), self._step_info(stage, success)

    def step(
        self, action: np.ndarray, *, render: bool = True
    ) -> tuple[dict[str, np.ndarray], float, bool, bool, dict[str, Any]]:
        """One control step. ``render=False`` skips the cameras (10 ms each on a CPU) and
        returns the last rendered frames again, for steps whose frames nobody reads."""
        a = np.asarray(action, dtype=np.float64)
        if a.shape != (7,) or not np.isfinite(a).all():
            raise SimError(f"{self.name}: action must be 7 finite numbers, got {action!r}")
        rs_obs, reward, _, _ = self.raw.step(np.clip(a, -1.0, 1.0))
        self._t += 1
        stage, success = self._tracker.update(self.raw)
        info = self._step_info(stage, success)
        return self._obs(rs_obs, render), float(reward), success, self._t >= self.horizon, info

    @property
    def elapsed_steps(self) -> int:
        """Steps taken since the last reset."""
        return self._t

    @property
    def object_slices(self) -> dict[str, slice]:
        """Where each robosuite object observable lies in ``obs["object"]``, in order.

        Orientations (``*quat``) take 6 (``rot6d``). Lets analyses pick, say, the objects'
        world positions out of the vector without knowing robosuite's ordering.
        """
        out, at = {}, 0
        for key in self._object_keys:
            n = 6 if key.endswith("quat") else int(np.size(self.raw._observables[key].obs))
            out[key], at = slice(at, at + n), at + n
        return out

    # ------------------------------------------------------------------ frames
    def render(self, camera: str, size: tuple[int, int] | None = None) -> np.ndarray:
        """An upright frame of any camera of the model, e.g. for videos of a state-only env."""
        size = self.image_size if size is None else (int(size[0]), int(size[1]))
        if camera not in self.raw.sim.model.camera_names:
            raise SimError(f"{self.name}: no camera {camera!r}")
        return self._renderer(size).render(self.raw.sim.data._data, camera)

    def close(self) -> None:
        for renderer in self._renderers.values():
            renderer.close()
        self._renderers.clear()
        self.raw.close()

    def __enter__(self) -> SimEnv:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ------------------------------------------------------------------ internals
    def _renderer(self, size: tuple[int, int]) -> FrameRenderer:
        renderer = self._renderers.get(size)
        if renderer is None:
            renderer = FrameRenderer(self.raw.sim.model._model, *size, fast=self.fast_render)
            self._renderers[size] = renderer
        return renderer

    def _step_info(self, stage: int, success: bool) -> dict[str, Any]:
        return {**self._info, "success": success, "stage": stage, "step": self._t}

    def _obs(self, rs_obs: dict[str, np.ndarray], render: bool = True) -> dict[str, np.ndarray]:
        obs = {
            "eef_pos": rs_obs["robot0_eef_pos"].astype(np.float32),
            "eef_quat": rs_obs["robot0_eef_quat"].astype(np.float32),
            "gripper_qpos": rs_obs["robot0_gripper_qpos"].astype(np.float32),
            "object": object_features(rs_obs, self._object_keys).astype(np.float32),
        }
        if self.cameras and (render or not self._frames):
            renderer, data = self._renderers[self.image_size], self.raw.sim.data._data
            self._frames = {cam: renderer.render(data, cam) for cam in self.cameras}
        return {**obs, **self._frames}
