"""ROS bags -> demo folder: rosbag1 (.bag), rosbag2 (a folder with metadata.yaml, or a bare
.db3) and MCAP (.mcap), read with ``rosbags`` (pure Python; no ROS install needed).

One bag is one episode; ``src`` may be a bag or a folder of bags. A topic map says where each
value comes from (by default the topics ``uvdiff-record`` and the test arm node use):

    action: {topic: /uvdiff/command}                       # one row per action message
    state:
      eef_pos: {topic: /uvdiff/eef_pose, field: position}  # PoseStamped/Pose: position,
      eef_quat: {topic: /uvdiff/eef_pose, field: orientation}   # orientation (x, y, z, w)
      gripper_qpos: {topic: /joint_states, field: position, joints: [...]}   # JointState
      object: {topic: /uvdiff/object_state}                # Float64/32MultiArray, Float64
    cameras:
      agentview: {topic: /camera/image/compressed, size: [84, 84]}  # Image or CompressedImage

Each action message makes one row: the action, and for every state key and camera the newest
message at or before it (by the bag's receive time, one clock for all topics). Rows before
every topic has spoken are skipped. The whole conversion is staged and appears only complete.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

from ..atomic import staging_dir
from ..episode import Episode
from ..errors import DemoFolderError, Problem
from ..folder import DemoFolder
from ..schema import DatasetInfo

BAG_SUFFIXES = (".bag", ".mcap", ".db3")

DEFAULT_TOPICS: dict[str, Any] = {
    "action": {"topic": "/uvdiff/command"},
    "state": {
        "eef_pos": {"topic": "/uvdiff/eef_pose", "field": "position"},
        "eef_quat": {"topic": "/uvdiff/eef_pose", "field": "orientation"},
        "gripper_qpos": {
            "topic": "/joint_states",
            "field": "position",
            "joints": ["panda_finger_joint1", "panda_finger_joint2"],
        },
        "object": {"topic": "/uvdiff/object_state"},
    },
    "cameras": {},
}


def find_bags(src: str | Path) -> list[Path]:
    """The bags ``src`` names: itself, or the bags (files or rosbag2 folders) inside it."""
    src = Path(src)
    if is_bag(src):
        return [src]
    if src.is_dir():
        bags = sorted(p for p in src.iterdir() if is_bag(p))
        if bags:
            return bags
    raise DemoFolderError(
        "no bag here: expected a .bag, .mcap or .db3 file, a rosbag2 folder (metadata.yaml), "
        "or a folder of those",
        str(src),
    )


def is_bag(p: Path) -> bool:
    return (p.is_file() and p.suffix in BAG_SUFFIXES) or (p / "metadata.yaml").is_file()


def convert_rosbag(
    src: str | Path,
    out: str | Path,
    *,
    topics: Mapping[str, Any] | None = None,
    fps: float | None = None,
    robot: str = "unknown",
    action_kind: str = "other",
    task: str | None = None,
    progress: bool = True,
) -> DemoFolder:
    """Convert the bag(s) at ``src`` into a new demo folder ``out`` (which must not exist)."""
    topics = dict(DEFAULT_TOPICS if topics is None else topics)
    _check_topics(topics)
    bags = find_bags(src)
    episodes = []
    for bag in tqdm(bags, desc="reading bags", unit="bag", disable=not progress):
        episodes.append(_read_bag(bag, topics, task))
    T = [e.length for e in episodes]
    if fps is None:
        dts = np.concatenate([np.diff(e.timestamp) for e in episodes if e.length > 1] or [[]])
        if not len(dts) or np.median(dts) <= 0:
            raise DemoFolderError("cannot tell the rate from one action; pass fps", str(src))
        fps = float(np.round(1.0 / np.median(dts), 3))
    first = episodes[int(np.argmax(T))]
    info = DatasetInfo(
        fps=float(fps),
        action_dim=int(first.action.shape[1]),
        state={k: int(v.shape[1]) for k, v in first.state.items()},
        cameras={k: tuple(np.asarray(v[0]).shape[:2]) for k, v in first.frames.items()},
        robot=robot,
        action_kind=action_kind,
        tasks=[task] if task else [],
    )
    with staging_dir(out) as tmp:
        folder = DemoFolder.create(tmp, info)
        for bag, ep in zip(bags, episodes, strict=True):
            try:
                folder.add_episode(ep)
            except DemoFolderError as e:
                raise DemoFolderError([Problem(str(bag), str(p)) for p in e.problems]) from None
    return DemoFolder(out)


def _check_topics(topics: Mapping[str, Any]) -> None:
    problems = []
    if not isinstance(topics.get("action"), Mapping) or "topic" not in topics["action"]:
        problems.append("'action' must be {topic: ...}")
    for group in ("state", "cameras"):
        for key, spec in (topics.get(group) or {}).items():
            if not isinstance(spec, Mapping) or "topic" not in spec:
                problems.append(f"{group}.{key} must be {{topic: ...}}")
    if not topics.get("state") and not topics.get("cameras"):
        problems.append("give at least one state key or camera")
    if problems:
        raise DemoFolderError([Problem("topic map", p) for p in problems])


def _read_bag(bag: Path, topics: Mapping[str, Any], task: str | None) -> Episode:
    from rosbags.highlevel import AnyReader
    from rosbags.typesys import Stores, get_typestore

    state_specs = dict(topics.get("state") or {})
    cam_specs = dict(topics.get("cameras") or {})
    action_topic = topics["action"]["topic"]
    wanted = {action_topic} | {s["topic"] for s in (*state_specs.values(), *cam_specs.values())}
    latest: dict[str, Any] = {}  # topic -> newest message so far
    rows: dict[str, list] = {"t": [], "action": [], **{k: [] for k in (*state_specs, *cam_specs)}}
    try:
        reader = AnyReader([bag], default_typestore=get_typestore(Stores.ROS2_HUMBLE))
        with reader:
            present = {c.topic for c in reader.connections}
            missing = sorted(wanted - present)
            if missing:
                raise DemoFolderError(
                    f"topics {missing} are not in the bag (it has {sorted(present)})", str(bag)
                )
            conns = [c for c in reader.connections if c.topic in wanted]
            kinds = {c.topic: c.msgtype.split("/")[-1] for c in conns}
            for conn, t_ns, raw in reader.messages(connections=conns):
                msg = reader.deserialize(raw, conn.msgtype)
                topic = conn.topic
                if topic != action_topic:
                    latest[topic] = msg
                    continue
                if any(
                    s["topic"] not in latest for s in (*state_specs.values(), *cam_specs.values())
                ):
                    continue  # not every topic has spoken yet
                where = f"{bag}:{topic}"
                rows["t"].append(t_ns * 1e-9)
                rows["action"].append(_vector(msg, kinds[topic], topics["action"], where))
                for key, spec in state_specs.items():
                    m = latest[spec["topic"]]
                    rows[key].append(_vector(m, kinds[spec["topic"]], spec, f"{bag}:{key}"))
                for cam, spec in cam_specs.items():
                    m = latest[spec["topic"]]
                    rows[cam].append(_image(m, kinds[spec["topic"]], spec.get("size"), bag))
    except DemoFolderError:
        raise
    except Exception as e:  # a damaged or unreadable bag
        raise DemoFolderError(f"cannot read the bag: {type(e).__name__}: {e}", str(bag)) from e
    if not rows["t"]:
        raise DemoFolderError(
            f"no row: no {action_topic} message after every other topic had spoken", str(bag)
        )
    t = np.asarray(rows["t"])
    try:
        action = np.stack(rows["action"]).astype(np.float32)
        state = {k: np.stack(rows[k]).astype(np.float32) for k in state_specs}
    except ValueError as e:
        raise DemoFolderError(f"message sizes change within the bag ({e})", str(bag)) from None
    return Episode(
        action=action,
        state=state,
        frames={c: np.stack(rows[c]) for c in cam_specs},
        timestamp=t - t[0],
        task=task,
    )


def _vector(msg: Any, kind: str, spec: Mapping, where: str) -> np.ndarray:
    field = spec.get("field")
    if kind == "JointState":
        values = np.asarray(getattr(msg, field or "position"), dtype=np.float64)
        joints = spec.get("joints")
        if joints:
            names = list(msg.name)
            missing = [j for j in joints if j not in names]
            if missing:
                raise DemoFolderError(f"no joints {missing} (it has {names})", where)
            values = values[[names.index(j) for j in joints]]
        out = values
    elif kind in ("PoseStamped", "Pose"):
        pose = msg.pose if kind == "PoseStamped" else msg
        p, o = pose.position, pose.orientation
        pos, quat = [p.x, p.y, p.z], [o.x, o.y, o.z, o.w]
        out = np.asarray({"position": pos, "orientation": quat}.get(field or "", pos + quat))
    elif kind in ("Float64MultiArray", "Float32MultiArray", "Float64", "Float32"):
        out = np.atleast_1d(np.asarray(msg.data, dtype=np.float64))
    else:
        raise DemoFolderError(f"cannot read a vector from a {kind} message", where)
    index = spec.get("index")
    if index is not None:
        out = out[list(index)]
    if not np.isfinite(out).all():
        raise DemoFolderError(f"NaN or inf in {out.tolist()}", where)
    return out


def _image(msg: Any, kind: str, size, bag: Path) -> np.ndarray:
    import cv2

    data = np.asarray(msg.data, dtype=np.uint8)
    if kind == "CompressedImage":
        bgr = cv2.imdecode(data, cv2.IMREAD_COLOR)
        if bgr is None:
            raise DemoFolderError(f"cannot decode a {msg.format!r} CompressedImage", str(bag))
        rgb = bgr[..., ::-1]
    elif kind == "Image":
        h, w, enc = int(msg.height), int(msg.width), str(msg.encoding).lower()
        ch = {"rgb8": 3, "bgr8": 3, "rgba8": 4, "bgra8": 4, "mono8": 1}.get(enc)
        if ch is None:
            raise DemoFolderError(f"image encoding {enc!r} not supported", str(bag))
        a = data[: h * int(msg.step)].reshape(h, int(msg.step))[:, : w * ch].reshape(h, w, ch)
        rgb = np.repeat(a, 3, 2) if ch == 1 else (a[..., 2::-1] if enc[0] == "b" else a[..., :3])
    else:
        raise DemoFolderError(
            f"a camera topic must carry Image or CompressedImage, not {kind}", str(bag)
        )
    if size is not None and rgb.shape[:2] != tuple(size):
        rgb = cv2.resize(rgb, (int(size[1]), int(size[0])), interpolation=cv2.INTER_AREA)
    return np.ascontiguousarray(rgb)
