"""The ROS side of a robot driver, without any middleware: what to subscribe to, what is sent.

It exists so that every way of reaching ROS (rosbridge today, DDS or Zenoh next) reads the
same ``robot/`` config and puts the same messages on the wire; only the transport
(``real.ros_robot.Transport``) differs. Messages are plain dicts in ROS field names; nothing
here does I/O or imports a ROS client library.

- ``RobotTopics``: the topics a config names and the role of each (state, camera, info, e-stop
  topic and ``std_srvs/Trigger`` service, command), with ROS 1 or ROS 2 type names.
- Message shapes: ``read_vector`` (JointState, Pose(Stamped), Float64/Float32MultiArray,
  Float64, Bool), ``decode_image`` (Image, CompressedImage), ``command_message``
  (Float64MultiArray, JointTrajectory, PoseStamped, and the goal of the ROS 2 action
  FollowJointTrajectory: that JointTrajectory), ``estop_requested``, ``trigger_reply``.
- Stamps: ``stamp_of`` / ``ros_time`` (``secs/nsecs`` or ``sec/nanosec``) and ``TopicBuffer``,
  a topic's last messages ordered by stamp.
- ``Reconnect``: the backoff between reconnection attempts.
"""

from __future__ import annotations

import base64
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from .robot import RobotError

MSG_TYPES = {
    "JointState": "sensor_msgs",
    "Image": "sensor_msgs",
    "CompressedImage": "sensor_msgs",
    "PoseStamped": "geometry_msgs",
    "Pose": "geometry_msgs",
    "Float64MultiArray": "std_msgs",
    "Float32MultiArray": "std_msgs",
    "Float64": "std_msgs",
    "Bool": "std_msgs",
    "Empty": "std_msgs",
    "JointTrajectory": "trajectory_msgs",
}
COMMAND_KINDS = ("Float64MultiArray", "JointTrajectory", "PoseStamped", "FollowJointTrajectory")
ACTION_KINDS = {"FollowJointTrajectory": "control_msgs/action/FollowJointTrajectory"}  # goals


def type_name(name: str, ros_version: int) -> str:
    """``sensor_msgs/JointState`` in the spelling of ROS ``ros_version`` (1 or 2)."""
    parts = name.split("/")
    if len(parts) == 1:
        if name not in MSG_TYPES:
            raise RobotError(f"unknown message type {name!r}; give it as pkg/Type")
        parts = [MSG_TYPES[name], name]
    pkg, short = parts[0], parts[-1]
    return f"{pkg}/msg/{short}" if ros_version == 2 else f"{pkg}/{short}"


def short_type(name: str) -> str:
    return name.split("/")[-1]


def stamp_of(msg: Mapping) -> float | None:
    """Header stamp in seconds (ROS 1 or ROS 2 spelling), None when absent or zero."""
    h = msg.get("header")
    if not isinstance(h, Mapping):
        return None
    s = h.get("stamp")
    if not isinstance(s, Mapping):
        return None
    if "secs" in s:
        t = float(s["secs"]) + float(s.get("nsecs", 0)) * 1e-9
    else:
        t = float(s.get("sec", 0)) + float(s.get("nanosec", 0)) * 1e-9
    return t or None


def ros_time(t: float, ros_version: int) -> dict:
    sec = int(t)
    ns = int(round((t - sec) * 1e9))
    if ns >= 1_000_000_000:
        sec, ns = sec + 1, ns - 1_000_000_000
    return {"sec": sec, "nanosec": ns} if ros_version == 2 else {"secs": sec, "nsecs": ns}


# ------------------------------------------------------------------------- roles
@dataclass(frozen=True)
class Subscription:
    topic: str
    type: str  # in the spelling of the robot's ROS version
    queue_length: int = 0
    throttle_ms: int = 0


class RobotTopics:
    """The topics of a ``robot/`` driver config (see ``configs/robot/rosbridge.yaml``).

    ``state``: [{key, topic, type, field?, joints?, index?}], the first topic being the clock
    the others are aligned to; ``cameras``: [{name, topic, type, size}]; ``info``: like
    ``state``; ``command``: {topic, type, ...} or None (listen only); ``estop``: {topic, type?,
    service?} or None. ``driver`` names the robot in config errors.
    """

    def __init__(
        self,
        state: Sequence[Mapping[str, Any]],
        command: Mapping[str, Any] | None,
        cameras: Sequence[Mapping[str, Any]] = (),
        info: Sequence[Mapping[str, Any]] = (),
        estop: Mapping[str, Any] | None = None,
        ros_version: int = 1,
        stamp: str = "header",
        driver: str = "rosbridge robot",
    ):
        if ros_version not in (1, 2):
            raise RobotError(f"ros_version={ros_version}: use 1 or 2")
        if stamp not in ("header", "receipt"):
            raise RobotError(f"stamp={stamp!r}: use header or receipt")
        if not state:
            raise RobotError(f"{driver}: give at least one state topic")
        self.ros_version, self.stamp_mode = int(ros_version), stamp
        self.state = [dict(s) for s in state]
        self.cameras = [dict(c) for c in cameras]
        self.info = [dict(s) for s in info]
        self.command = dict(command) if command else None
        self.estop = dict(estop) if estop else None
        self.kinds: dict[str, str] = {}  # topic -> short type
        for spec in self.listened():
            for k in ("topic", "type"):
                if k not in spec:
                    raise RobotError(f"{driver}: {spec} has no {k!r}")
            self.kinds[spec["topic"]] = short_type(spec["type"])
        self.reference = self.state[0]["topic"]
        # topics that must have spoken before the robot counts as connected
        self.required = {s["topic"] for s in (*self.state, *self.cameras)}
        self.readers: dict[str, list[dict]] = {}  # topic -> the state specs read from it
        for spec in self.state:
            self.readers.setdefault(spec["topic"], []).append(spec)

    def listened(self) -> tuple[dict, ...]:
        """State, camera and info specs, in that order (a topic may appear in several)."""
        return (*self.state, *self.cameras, *self.info)

    def subscriptions(self) -> Iterator[Subscription]:
        """One per listened topic, the first spec naming it setting its queue and throttle."""
        seen: set[str] = set()
        for spec in self.listened():
            if spec["topic"] in seen:
                continue
            seen.add(spec["topic"])
            yield Subscription(
                spec["topic"],
                type_name(spec["type"], self.ros_version),
                queue_length=int(spec.get("queue_length", 1)),
                throttle_ms=int(spec.get("throttle_ms", 0)),
            )

    def estop_subscription(self) -> Subscription | None:
        if not self.estop:
            return None
        kind = self.estop.get("type", "std_msgs/Bool")
        return Subscription(self.estop["topic"], type_name(kind, self.ros_version))

    def estop_service(self) -> tuple[str, str] | None:
        """(name, std_srvs/Trigger type) of the e-stop service this robot offers, if any."""
        service = (self.estop or {}).get("service")
        if not service:
            return None
        return service, "std_srvs/srv/Trigger" if self.ros_version == 2 else "std_srvs/Trigger"

    def command_kind(self) -> str:
        kind = short_type(self.command["type"])
        if kind not in COMMAND_KINDS:
            raise RobotError(
                f"command type {self.command['type']!r}: use Float64MultiArray, JointTrajectory, "
                "PoseStamped or control_msgs/action/FollowJointTrajectory"
            )
        return kind

    def command_type(self) -> str:
        kind = short_type(self.command["type"])
        if kind in ACTION_KINDS:
            return ACTION_KINDS[kind]
        return type_name(self.command["type"], self.ros_version)


# ------------------------------------------------------------------------- messages
def read_vector(msg: Mapping, kind: str, spec: Mapping) -> np.ndarray:
    """The state vector ``spec`` (field, joints, index) asks for, from one message."""
    field = spec.get("field")
    if kind == "JointState":
        values = msg[field or "position"]
        joints = spec.get("joints")
        if joints:
            names = list(msg["name"])
            try:
                values = [values[names.index(j)] for j in joints]
            except ValueError as e:
                raise RobotError(f"{spec['topic']}: no joint {e.args[0].split()[0]}") from e
        out = np.asarray(values, dtype=np.float32)
    elif kind in ("PoseStamped", "Pose"):
        pose = msg["pose"] if kind == "PoseStamped" else msg
        p, o = pose["position"], pose["orientation"]
        pos = [p["x"], p["y"], p["z"]]
        quat = [o["x"], o["y"], o["z"], o["w"]]
        out = np.asarray(
            {"position": pos, "orientation": quat}.get(field or "pose", pos + quat), np.float32
        )
    elif kind in ("Float64MultiArray", "Float32MultiArray", "Float64"):
        out = np.atleast_1d(np.asarray(msg["data"], dtype=np.float32))
    elif kind == "Bool":
        out = np.asarray([1.0 if msg["data"] else 0.0], dtype=np.float32)
    else:
        raise RobotError(f"{spec['topic']}: cannot read a state vector from {kind}")
    index = spec.get("index")
    if index is not None:
        out = out[list(index)] if isinstance(index, Sequence) else out[slice(*index)]
    return out


def decode_image(msg: Mapping, kind: str, size: Sequence[int] | None) -> np.ndarray:
    """uint8 RGB (H, W, 3) from an Image or CompressedImage dict, resized to ``size``."""
    import cv2

    data = msg["data"]
    raw = base64.b64decode(data) if isinstance(data, str) else bytes(data)
    if kind == "CompressedImage":
        bgr = cv2.imdecode(np.frombuffer(raw, np.uint8), cv2.IMREAD_COLOR)
        if bgr is None:
            raise RobotError(f"cannot decode a {msg.get('format')!r} CompressedImage")
        rgb = bgr[..., ::-1]
    else:
        h, w, enc = int(msg["height"]), int(msg["width"]), str(msg["encoding"]).lower()
        ch = {"rgb8": 3, "bgr8": 3, "rgba8": 4, "bgra8": 4, "mono8": 1}.get(enc)
        if ch is None:
            raise RobotError(f"image encoding {enc!r} not supported (rgb8/bgr8/rgba8/bgra8/mono8)")
        step = int(msg.get("step") or w * ch)
        if len(raw) < h * step:
            raise RobotError(f"image data has {len(raw)} bytes, {h}x{step} expected")
        a = np.frombuffer(raw, np.uint8)[: h * step].reshape(h, step)[:, : w * ch]
        a = a.reshape(h, w, ch)
        if enc == "mono8":
            rgb = np.repeat(a, 3, axis=2)
        elif enc.startswith("bgr"):
            rgb = a[..., 2::-1]
        else:
            rgb = a[..., :3]
    if size is not None and rgb.shape[:2] != tuple(size):
        rgb = cv2.resize(rgb, (int(size[1]), int(size[0])), interpolation=cv2.INTER_AREA)
    return np.ascontiguousarray(rgb)


def command_message(kind: str, a: np.ndarray, spec: Mapping, ros_version: int, now: float) -> dict:
    """The ``kind`` message (one of ``COMMAND_KINDS``) commanding ``a``, stamped ``now``."""
    if kind == "Float64MultiArray":
        return {"layout": {"dim": [], "data_offset": 0}, "data": a.tolist()}
    if kind == "FollowJointTrajectory":  # the goal: the JointTrajectory below, tolerances default
        goal = {"trajectory": command_message("JointTrajectory", a, spec, ros_version, now)}
        if "goal_time_tolerance" in spec:
            goal["goal_time_tolerance"] = ros_time(float(spec["goal_time_tolerance"]), 2)
        return goal
    header = {"stamp": ros_time(now, ros_version), "frame_id": str(spec.get("frame_id", ""))}
    if kind == "JointTrajectory":
        names = list(spec.get("joints") or [])
        if len(names) != len(a):
            raise RobotError(f"JointTrajectory: {len(names)} joint names for {len(a)} values")
        dt = float(spec.get("time_from_start", 0.1))
        return {
            "header": header,
            "joint_names": names,
            "points": [
                {
                    "positions": a.tolist(),
                    "velocities": [],
                    "accelerations": [],
                    "effort": [],
                    "time_from_start": ros_time(dt, ros_version),
                }
            ],
        }
    # PoseStamped: x, y, z, qx, qy, qz, qw
    if len(a) < 7:
        raise RobotError(f"PoseStamped needs 7 numbers (xyz + quaternion xyzw), got {len(a)}")
    q = a[3:7] / (np.linalg.norm(a[3:7]) or 1.0)
    return {
        "header": header,
        "pose": {
            "position": dict(zip("xyz", a[:3].tolist(), strict=True)),
            "orientation": dict(zip("xyzw", q.tolist(), strict=True)),
        },
    }


def estop_requested(msg: Mapping) -> bool:
    """A message on the e-stop topic asks to stop: ``Bool`` true, or any ``Empty``."""
    return bool(msg.get("data", True))


def trigger_reply(response: dict) -> bool:
    """Fill the ``std_srvs/Trigger`` response of an e-stop call; True: the call succeeded."""
    response["success"] = True
    response["message"] = "e-stop latched: no further command will be sent"
    return True


# ------------------------------------------------------------------------- stamps, links
class TopicBuffer:
    """The last ``n`` messages of one topic, ordered by stamp; the caller holds a lock."""

    __slots__ = ("items", "n", "newest", "count")

    def __init__(self, n: int):
        self.items: list[tuple[float, int, dict]] = []
        self.n, self.newest, self.count = n, -np.inf, 0

    def add(self, stamp: float, msg: dict) -> bool:
        """True when the message is the newest so far (it advances the topic)."""
        self.count += 1
        items = self.items
        i = len(items)
        while i and items[i - 1][0] > stamp:
            i -= 1
        items.insert(i, (stamp, self.count, msg))
        if len(items) > self.n:
            del items[0]
        if stamp > self.newest:
            self.newest = stamp
            return True
        return False

    def reset(self) -> None:
        """Forget the messages (their stamps belong to a clock that jumped)."""
        self.items.clear()
        self.newest = -np.inf

    def nearest(self, t: float) -> tuple[float, int, dict] | None:
        if not self.items:
            return None
        return min(self.items, key=lambda it: abs(it[0] - t))


@dataclass(frozen=True)
class Reconnect:
    """Backoff between reconnection attempts: ``initial`` s, times ``factor`` each failure, at
    most ``max`` s (config: ``reconnect: {initial, max}``).

    A driver gives up only while connecting: ``RobotError`` when the server cannot be reached
    or a state or camera topic stays silent for ``connect_timeout``. Once connected it never
    declares the robot lost: it reconnects and re-subscribes for as long as it runs, dropping
    (counting, never queueing) commands while the link is down. Deciding that the robot is
    lost is the caller's job, from observations that stop advancing (the loop's and the
    recorder's ``lost_after``).
    """

    initial: float = 0.5
    max: float = 5.0
    factor: float = 2.7  # as in Twisted's ReconnectingClientFactory

    @classmethod
    def from_config(cls, cfg: Mapping[str, Any] | None) -> Reconnect:
        c = {"initial": cls.initial, "max": cls.max, **dict(cfg or {})}
        return cls(float(c["initial"]), float(c["max"]))

    def delay(self, attempt: int) -> float:
        """Seconds to wait before reconnection attempt ``attempt`` (0 first)."""
        return min(self.max, self.initial * self.factor**attempt)
