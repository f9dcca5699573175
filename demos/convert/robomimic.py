"""robomimic HDF5 -> demo folder, one demo at a time (image datasets do not fit in RAM).

The file is checked in full (keys, shapes, lengths, finite actions) before any video is
encoded, so a bad file fails in seconds; the folder is built in a staging dir beside ``out``
and appears only when every episode is written.
"""

from __future__ import annotations

import json
import math
import re
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import h5py
import numpy as np
from tqdm import tqdm

from ..atomic import staging_dir
from ..episode import Episode
from ..errors import DemoFolderError, Problem
from ..folder import DemoFolder
from ..schema import DatasetInfo

DEFAULT_FPS = 20  # robosuite's default control_freq
SIM_STATE = "sim_state"  # state key for robomimic's flattened MuJoCo `states`
IMAGE_SUFFIX = "_image"
_DEMO = re.compile(r"^demo_(\d+)$")
Fields = dict[str, tuple[int, ...]]  # "actions", "obs/<key>", "states" -> per-step shape


@dataclass
class _Env:
    """What env_args tells about every episode."""

    fps: float = DEFAULT_FPS
    robot: str = "unknown"
    action_kind: str = "other"
    task: str | None = None


def convert_robomimic(
    src: str | Path,
    out: str | Path,
    *,
    progress: bool = True,
    keep_sim_states: bool = True,
    flip_images: bool = False,
    filter_key: str | None = None,
) -> DemoFolder:
    """Convert a robomimic HDF5 file into a new demo folder ``out`` (which must not exist).

    ``flip_images`` turns frames upright for old files rendered upside down (OpenGL order);
    ``filter_key`` converts only the demos listed in ``mask/<filter_key>`` (e.g. "train").
    Raises DemoFolderError naming the file and HDF5 path of every fault found.
    """
    src, out = Path(src), Path(out)
    with _open(src) as f, staging_dir(out) as tmp:
        env = _env_info(f, src)
        names = _demo_names(f, src, filter_key)
        fields = _check_demos(f, src, names, keep_sim_states)
        folder = DemoFolder.create(tmp, _dataset_info(env, fields))
        bar = tqdm(names, desc=f"{src.name} -> {out.name}", unit="demo", disable=not progress)
        for name in bar:
            demo = f["data"][name]
            episode = _read_episode(src, demo, fields, env.task, flip_images)
            try:
                folder.add_episode(episode)
            except DemoFolderError as e:
                raise DemoFolderError([_at(src, demo.name, str(p)) for p in e.problems]) from None
    return DemoFolder(out)


# ---------------------------------------------------------------------------- file and env_args
def _at(src: Path, h5path: str, message: str) -> Problem:
    """A problem located as ``file:/hdf5/path``."""
    return Problem(f"{src}:{h5path}", message)


def _open(src: Path) -> h5py.File:
    if not src.is_file():
        raise DemoFolderError("missing (no such file)", str(src))
    if not h5py.is_hdf5(src):
        raise DemoFolderError("not an HDF5 file (robomimic datasets are .hdf5)", str(src))
    try:
        f = h5py.File(src, "r")
    except OSError as e:
        raise DemoFolderError(f"cannot be opened as HDF5 ({e})", str(src)) from None
    if not isinstance(f.get("data"), h5py.Group):
        f.close()
        raise DemoFolderError([_at(src, "/data", "missing: no data group (not a robomimic file?)")])
    return f


def _env_info(f: h5py.File, src: Path) -> _Env:
    """fps, robot, action kind and task from the JSON attribute data.env_args."""
    raw = f["data"].attrs.get("env_args")
    if raw is None:
        return _Env()

    def bad(msg: str) -> DemoFolderError:
        return DemoFolderError([_at(src, "/data", f"attribute env_args {msg}")])

    try:
        args = json.loads(raw.decode() if isinstance(raw, bytes) else str(raw))
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise bad(f"is not valid JSON ({e})") from None
    kwargs = args.get("env_kwargs", {}) if isinstance(args, dict) else None
    if not isinstance(kwargs, dict):
        raise bad("must be a JSON object with an object env_kwargs")
    fps = kwargs.get("control_freq", DEFAULT_FPS)
    if isinstance(fps, bool) or not isinstance(fps, int | float) or not 0 < fps < math.inf:
        raise bad(f"env_kwargs.control_freq must be a positive number, got {fps!r}")
    robots = kwargs.get("robots")
    robots = [robots] if isinstance(robots, str) else robots
    robot = robots[0] if isinstance(robots, list) and robots and isinstance(robots[0], str) else ""
    task = args.get("env_name")
    return _Env(
        fps=float(fps),
        robot=robot.lower() or "unknown",
        action_kind=action_kind(kwargs.get("controller_configs")),
        task=task if isinstance(task, str) and task else None,
    )


def action_kind(controller: Any) -> str:
    """The demo-folder action kind of a robosuite controller config (1.4 flat, 1.5 composite)."""
    if isinstance(controller, list):  # one config per robot
        controller = controller[0] if controller else None
    if not isinstance(controller, dict):
        return "other"
    parts = controller.get("body_parts")
    if isinstance(parts, dict):  # robosuite 1.5: {body_parts: {arms: {right: {...}}}} or {right}
        arms = parts.get("arms", parts)
        arm = next((arms[s] for s in ("right", "left") if isinstance(arms.get(s), dict)), {})
        if arm.get("type") != "OSC_POSE":
            return "other"
        kinds = {"delta": "delta_ee", "absolute": "absolute_ee"}
        return kinds.get(arm.get("input_type", "delta"), "other")  # robosuite default: delta
    if controller.get("type") != "OSC_POSE":
        return "other"
    return "delta_ee" if controller.get("control_delta", True) else "absolute_ee"


def _demo_names(f: h5py.File, src: Path, filter_key: str | None) -> list[str]:
    """The demos to convert, in integer order (demo_10 after demo_9)."""
    index = {}
    for name in f["data"]:
        m = _DEMO.match(name)
        if m and f["data"].get(name, getclass=True) is h5py.Group:
            index[name] = int(m.group(1))
    where = "/data"
    names = list(index)
    if filter_key is not None:
        where = f"/mask/{filter_key}"
        mask = f.get(where)
        if not isinstance(mask, h5py.Dataset):
            keys = sorted(f["mask"]) if isinstance(f.get("mask"), h5py.Group) else []
            raise DemoFolderError([_at(src, where, f"missing; filter keys in the file: {keys}")])
        listed = [n.decode() if isinstance(n, bytes) else str(n) for n in np.ravel(mask[()])]
        unknown = [n for n in listed if n not in index]
        if unknown:
            raise DemoFolderError([_at(src, where, f"lists demos not in /data: {unknown[:5]}")])
        names = list(dict.fromkeys(listed))
    if not names:
        raise DemoFolderError([_at(src, where, "holds no demos (expected demo_0, demo_1, ...)")])
    return sorted(names, key=index.__getitem__)


# ---------------------------------------------------------------------------- checking demos
def _demo_fields(
    src: Path, demo: h5py.Group, keep_sim_states: bool
) -> tuple[Fields, list[Problem]]:
    """Per-step shape of every field converted from ``demo`` ("actions", "obs/<key>",
    "states"), and the problems of this demo on its own."""
    actions = demo.get("actions")
    where = f"{demo.name}/actions"
    if not isinstance(actions, h5py.Dataset):
        return {}, [_at(src, where, "missing (every demo needs actions)")]
    if actions.ndim != 2 or actions.shape[0] == 0:
        return {}, [_at(src, where, f"must be (T, action_dim) with T > 0, got {actions.shape}")]
    T = actions.shape[0]
    datasets = {"actions": actions}
    obs = demo.get("obs")
    if isinstance(obs, h5py.Group):
        datasets.update({f"obs/{k}": obs[k] for k in obs if _converted(k, obs[k])})
    if keep_sim_states and "states" in demo:
        datasets["states"] = demo["states"]
    fields, problems = {}, []
    for key, ds in datasets.items():
        msg = _shape_problem(key, ds, T)
        if msg:
            problems.append(_at(src, f"{demo.name}/{key}", msg))
        else:
            fields[key] = ds.shape[1:] or (1,)  # (T,) is stored as (T, 1)
    n = demo.attrs.get("num_samples")
    if n is not None and int(n) != T:
        problems.append(_at(src, demo.name, f"attribute num_samples is {n}, actions has {T} rows"))
    return fields, problems


def _converted(key: str, ds: Any) -> bool:
    """Images and low-dim arrays are converted; other obs (depth maps, ...) are left out."""
    return key.endswith(IMAGE_SUFFIX) or not isinstance(ds, h5py.Dataset) or ds.ndim <= 2


def _shape_problem(key: str, ds: Any, T: int) -> str | None:
    if not isinstance(ds, h5py.Dataset):
        return "is a group, expected an array"
    if ds.ndim == 0 or ds.shape[0] != T:
        return f"has shape {ds.shape}, expected {T} rows like actions"
    if key.endswith(IMAGE_SUFFIX):
        if ds.dtype != np.uint8 or ds.ndim != 4 or ds.shape[3] != 3:
            return f"must be uint8 (T, H, W, 3) images, got {ds.dtype} {ds.shape}"
    elif ds.dtype.kind not in "fiub":
        return f"has dtype {ds.dtype}, expected numbers"
    elif key in ("actions", "states") and ds.ndim != 2:
        return f"must be 2-D (T, dim), got {ds.shape}"
    return None


def _nonfinite_problem(src: Path, demo: h5py.Group) -> Problem | None:
    actions = demo["actions"][()]
    if actions.dtype.kind != "f":
        return None
    bad = ~np.isfinite(actions)
    if not bad.any():
        return None
    row, col = np.argwhere(bad)[0]
    return _at(
        src,
        f"{demo.name}/actions",
        f"row {row}, col {col} is {actions[row, col]} ({int(bad.sum())} non-finite values)",
    )


def _check_demos(f: h5py.File, src: Path, names: list[str], keep_sim_states: bool) -> Fields:
    """The fields every demo shares (those of the first), or every fault across all demos."""
    ref_name, ref, problems = "", None, []
    for name in names:
        demo = f["data"][name]
        fields, own = _demo_fields(src, demo, keep_sim_states)
        problems += own
        if not own:
            p = _nonfinite_problem(src, demo)
            problems += [p] if p else []
            if ref is None:  # the first sound demo sets the schema
                ref_name, ref = name, fields
                _warn_left_out(demo)
                continue
        if ref is None:
            continue
        missing, extra = sorted(ref.keys() - fields.keys()), sorted(fields.keys() - ref.keys())
        if (missing or extra) and not own:
            msg = f"fields differ from {ref_name}: missing {missing}, extra {extra}"
            problems.append(_at(src, demo.name, msg))
        for key in sorted(ref.keys() & fields.keys()):
            if ref[key] != fields[key]:
                msg = f"has per-step shape {fields[key]}, {ref_name} has {ref[key]}"
                problems.append(_at(src, f"{demo.name}/{key}", msg))
    if problems:
        raise DemoFolderError(problems)
    return ref


def _warn_left_out(demo: h5py.Group) -> None:
    obs = demo.get("obs")
    left = [k for k in obs if not _converted(k, obs[k])] if isinstance(obs, h5py.Group) else []
    if left:
        warnings.warn(
            f"robomimic obs {left} are not images or low-dim arrays: left out", stacklevel=3
        )


# ---------------------------------------------------------------------------- writing
def _dataset_info(env: _Env, fields: Fields) -> DatasetInfo:
    state = {
        k.removeprefix("obs/"): shape[0]
        for k, shape in fields.items()
        if k.startswith("obs/") and not k.endswith(IMAGE_SUFFIX)
    }
    if "states" in fields:
        state[SIM_STATE] = fields["states"][0]
    cameras = {
        k.removeprefix("obs/").removesuffix(IMAGE_SUFFIX): (shape[0], shape[1])
        for k, shape in fields.items()
        if k.endswith(IMAGE_SUFFIX)
    }
    return DatasetInfo(
        fps=env.fps,
        action_dim=fields["actions"][0],
        state=state,
        cameras=cameras,
        robot=env.robot,
        action_kind=env.action_kind,
        tasks=[env.task] if env.task else [],
    )


def _read_episode(
    src: Path, demo: h5py.Group, fields: Fields, task: str | None, flip: bool
) -> Episode:
    """One demo in memory: its arrays and frames (a demo at a time keeps memory bounded)."""
    try:
        state, frames = {}, {}
        for key in fields:
            if key.endswith(IMAGE_SUFFIX):
                images = demo[key][()]
                cam = key.removeprefix("obs/").removesuffix(IMAGE_SUFFIX)
                frames[cam] = np.ascontiguousarray(images[:, ::-1]) if flip else images
            elif key.startswith("obs/"):
                value = demo[key][()]
                state[key.removeprefix("obs/")] = value.reshape(len(value), -1)
        if "states" in fields:
            state[SIM_STATE] = demo["states"][()]
        rewards = demo["rewards"][()] if "rewards" in demo else None
        success = bool(np.max(rewards) > 0) if rewards is not None and rewards.size else True
        return Episode(demo["actions"][()], state, frames, success=success, task=task)
    except OSError as e:  # a damaged chunk
        raise DemoFolderError([_at(src, demo.name, f"cannot be read ({e})")]) from None
