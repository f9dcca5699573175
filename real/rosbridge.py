"""``RosbridgeRobot``: an arm behind a rosbridge v2 server, through roslibpy (no local ROS).

Subscribes to the topics the ``robot/`` config lists and turns their JSON into the
observation's state vectors and camera frames; publishes each command as
std_msgs/Float64MultiArray, trajectory_msgs/JointTrajectory or geometry_msgs/PoseStamped.

- Timestamps: header stamps (ROS 1 ``secs/nsecs`` or ROS 2 ``sec/nanosec``), or the receipt time
  for messages without a header (``stamp: receipt`` uses receipt time for all). Each topic
  keeps its last few messages ordered by stamp, so a delayed or reordered message never makes
  the observation go back in time; ``observe()`` aligns every topic to the newest message of the
  first state topic (nearest stamp) and stamps the observation with the oldest part used.
- Images: sensor_msgs/Image (rgb8, bgr8, rgba8, bgra8, mono8; ``data`` base64) or
  CompressedImage (jpeg/png), decoded only when observed, resized to the configured size.
  Send them downsampled from the robot: 640x480 raw over JSON costs ~40 ms a frame.
- ROS 1 or ROS 2 type names (``ros_version``: ``pkg/Type`` or ``pkg/msg/Type``) and stamps.
- Connection: roslibpy reconnects with exponential backoff (``reconnect.initial``/``max``) and
  re-subscribes. Commands while disconnected are dropped and counted, never queued for later
  (roslibpy would otherwise send them all on reconnect).
- E-stop: a ``std_msgs/Bool`` (true) or ``std_msgs/Empty`` on ``estop.topic``, or a call of the
  ``std_srvs/Trigger`` service this robot advertises as ``estop.service``, latches; from then on
  ``command`` publishes nothing and observations carry ``estop=True``.
- Authentication: with ``auth.secret`` set, a rosauth MAC is sent on every (re)connect.
"""

from __future__ import annotations

import base64
import hashlib
import logging
import secrets
import threading
import time
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from .robot import EStopped, Observation, RobotError

log = logging.getLogger("uvdiff.rosbridge")

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


def rosauth_mac(secret: str, client: str, dest: str, rand: str, t: int, level: str, end: int):
    """rosauth's MAC: hex SHA-512 of the concatenated fields (times in whole seconds)."""
    text = f"{secret}{client}{dest}{rand}{int(t)}{level}{int(end)}"
    return hashlib.sha512(text.encode()).hexdigest()


# ------------------------------------------------------------------------- decoding
def _vector(msg: Mapping, kind: str, spec: Mapping) -> np.ndarray:
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


class _Buffer:
    """The last ``n`` messages of one topic, ordered by stamp; thread-safe via the robot lock."""

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

    def nearest(self, t: float) -> tuple[float, int, dict] | None:
        if not self.items:
            return None
        return min(self.items, key=lambda it: abs(it[0] - t))


class RosbridgeRobot:
    """A ``real.Robot`` over rosbridge; arguments as in ``configs/robot/rosbridge.yaml``.

    ``state``: list of {key, topic, type, field?, joints?, index?}; the first entry's topic is
    the reference the others are aligned to. ``cameras``: list of {name, topic, type, size}.
    ``command``: {topic, type, joints? (JointTrajectory), time_from_start?, frame_id?}; None
    listens only (``command`` then raises).
    ``info``: like ``state``, for values the loop reads but the policy does not (``success``).
    """

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 9090,
        *,
        state: Sequence[Mapping[str, Any]],
        command: Mapping[str, Any] | None,
        cameras: Sequence[Mapping[str, Any]] = (),
        info: Sequence[Mapping[str, Any]] = (),
        estop: Mapping[str, Any] | None = None,
        ros_version: int = 1,
        stamp: str = "header",
        secure: bool = False,
        transport: str = "asyncio",
        auth: Mapping[str, Any] | None = None,
        connect_timeout: float = 10.0,
        reconnect: Mapping[str, float] | None = None,
        buffer: int = 16,
        settle: float = 0.5,
        **_: Any,
    ):
        if ros_version not in (1, 2):
            raise RobotError(f"ros_version={ros_version}: use 1 or 2")
        if stamp not in ("header", "receipt"):
            raise RobotError(f"stamp={stamp!r}: use header or receipt")
        if not state:
            raise RobotError("rosbridge robot: give at least one state topic")
        self.host, self.port, self.secure, self.transport = host, int(port), secure, transport
        self.ros_version, self.stamp_mode = int(ros_version), stamp
        self.state_specs = [dict(s) for s in state]
        self.camera_specs = [dict(c) for c in cameras]
        self.info_specs = [dict(s) for s in info]
        self.command_spec = dict(command) if command else None
        self.estop_spec = dict(estop) if estop else None
        self.auth = dict(auth) if auth else None
        self.connect_timeout = float(connect_timeout)
        self.settle = float(settle)
        self.reconnect = {"initial": 0.5, "max": 5.0, **dict(reconnect or {})}
        self._lock = threading.Lock()
        self._buffers: dict[str, _Buffer] = {}
        self._kinds: dict[str, str] = {}
        for spec in (*self.state_specs, *self.camera_specs, *self.info_specs):
            for k in ("topic", "type"):
                if k not in spec:
                    raise RobotError(f"rosbridge robot: {spec} has no {k!r}")
            self._buffers.setdefault(spec["topic"], _Buffer(int(buffer)))
            self._kinds[spec["topic"]] = short_type(spec["type"])
        self._ref = self.state_specs[0]["topic"]
        self._checks: dict[str, list[dict]] = {}  # topic -> the state specs read from it
        for spec in self.state_specs:
            self._checks.setdefault(spec["topic"], []).append(spec)
        self.rejected = 0  # messages dropped on arrival (unreadable, wrong size, NaN/Inf)
        self._dims: dict[str, int] = {}
        self._seq = 0
        self._estop = threading.Event()
        self._send_lock = threading.Lock()
        self.estop_at: float | None = None  # wall-clock time the e-stop latched here
        self.last_command_at: float | None = None  # wall-clock time of the last publish
        self._image_cache: dict[str, tuple[int, np.ndarray]] = {}  # camera -> (message, frame)
        self.ros = None
        self._topics: list = []
        self._cmd_topic = None
        self.sent = 0
        self.dropped_commands = 0
        self.disconnects = 0
        self.errors: list[str] = []
        self._closing = False
        self._estop_service = None

    # ------------------------------------------------------------------ connection
    def connect(self) -> None:
        import roslibpy

        self._closing = False
        try:
            self.ros = roslibpy.Ros(
                self.host, self.port, is_secure=self.secure, transport=self.transport
            )
            factory = type(self.ros.factory)
            factory.initialDelay = float(self.reconnect["initial"])
            factory.maxDelay = float(self.reconnect["max"])
            # Ros() starts connecting at once: hook every later (re)connect, then run the
            # hook for the first connection too (both are idempotent)
            self.ros.on("close", self._on_close)
            self.ros.on("ready", self._on_ready)
            self.ros.run(timeout=self.connect_timeout)
            self.ros.factory.on_ready(self._on_ready)
        except Exception as e:
            self._shutdown()
            raise RobotError(f"rosbridge {self.host}:{self.port}: cannot connect ({e})") from e
        for spec in (*self.state_specs, *self.camera_specs, *self.info_specs):
            if any(t.name == spec["topic"] for t in self._topics):
                continue
            topic = roslibpy.Topic(
                self.ros,
                spec["topic"],
                type_name(spec["type"], self.ros_version),
                queue_length=int(spec.get("queue_length", 1)),
                throttle_rate=int(spec.get("throttle_ms", 0)),
            )
            topic.subscribe(lambda m, name=spec["topic"]: self._on_message(name, m))
            self._topics.append(topic)
        if self.estop_spec:
            t = roslibpy.Topic(
                self.ros,
                self.estop_spec["topic"],
                type_name(self.estop_spec.get("type", "std_msgs/Bool"), self.ros_version),
            )
            t.subscribe(self._on_estop)
            self._topics.append(t)
            service = self.estop_spec.get("service")
            if service:  # a std_srvs/Trigger anyone on the ROS side can call
                srv_type = "std_srvs/srv/Trigger" if self.ros_version == 2 else "std_srvs/Trigger"
                self._estop_service = roslibpy.Service(self.ros, service, srv_type)
                self._estop_service.advertise(self._on_estop_call)
        c = self.command_spec
        if c is None:  # listen only (the recorder): nothing advertised, nothing sent
            self._wait_first()
            return
        self._cmd_kind = short_type(c["type"])
        if self._cmd_kind not in ("Float64MultiArray", "JointTrajectory", "PoseStamped"):
            raise RobotError(
                f"command type {c['type']!r}: use Float64MultiArray, JointTrajectory or PoseStamped"
            )
        self._cmd_topic = roslibpy.Topic(
            self.ros, c["topic"], type_name(c["type"], self.ros_version), queue_size=1
        )
        self._cmd_topic.advertise()
        self._wait_first()
        # ROS 1 subscribers connect to a new publisher over TCPROS after it is advertised: a
        # command sent sooner is lost. Give them a moment (rosbridge cannot tell when).
        time.sleep(self.settle)

    def _auth_message(self) -> dict:
        a = self.auth
        now = int(time.time())
        rand = secrets.token_hex(8)
        client, dest = str(a.get("client", "127.0.0.1")), str(a.get("dest", self.host))
        level = str(a.get("level", "admin"))
        end = now + int(a.get("duration", 3600))
        mac = rosauth_mac(str(a["secret"]), client, dest, rand, now, level, end)
        return {
            "op": "auth",
            "mac": mac,
            "client": client,
            "dest": dest,
            "rand": rand,
            "t": now,
            "level": level,
            "end": end,
        }

    def _wait_first(self) -> None:
        end = time.monotonic() + self.connect_timeout
        need = {s["topic"] for s in (*self.state_specs, *self.camera_specs)}
        while True:
            with self._lock:
                missing = sorted(t for t in need if not self._buffers[t].items)
            if not missing:
                return
            if time.monotonic() > end:
                self.close()
                raise RobotError(
                    f"rosbridge {self.host}:{self.port}: nothing received on {missing} in "
                    f"{self.connect_timeout:g} s"
                    + (f" (errors: {self.errors[-3:]})" if self.errors else "")
                )
            time.sleep(0.01)

    def _on_ready(self, proto: Any) -> Any:
        """Per connection: authenticate first (a fresh MAC), and keep the server's status
        replies, which roslibpy has no handler for, in ``errors`` (bad type, failed auth)."""
        if proto is None or getattr(proto, "_uvdiff_ready", False):
            return proto
        proto._uvdiff_ready = True
        handlers = getattr(proto, "_message_handlers", None)
        if isinstance(handlers, dict) and handlers.get("status") is None:
            handlers["status"] = self._on_status
        if self.auth and self.auth.get("secret"):
            import roslibpy

            proto.send_ros_message(roslibpy.Message(self._auth_message()))
        return proto

    def _on_status(self, msg: Mapping) -> None:
        text = f"{msg.get('level', 'info')}: {msg.get('msg', '')}"
        self.errors.append(text)
        del self.errors[:-100]
        log.warning("rosbridge %s:%d says %s", self.host, self.port, text)

    def _on_close(self, *_: Any) -> None:
        if self._closing:
            return
        self.disconnects += 1
        log.warning("rosbridge %s:%d: connection lost; reconnecting", self.host, self.port)

    # ------------------------------------------------------------------ receiving
    def _on_message(self, topic: str, msg: dict) -> None:
        now = time.time()
        try:  # check at the boundary: a bad message never becomes an observation
            for spec in self._checks.get(topic, ()):
                v = _vector(msg, self._kinds[topic], spec)
                if not np.isfinite(v).all():
                    raise RobotError(f"NaN/Inf in {spec['key']}")
                if self._dims.setdefault(spec["key"], v.size) != v.size:
                    raise RobotError(
                        f"{spec['key']} has {v.size} values, first had {self._dims[spec['key']]}"
                    )
            t = stamp_of(msg) if self.stamp_mode == "header" else None
        except Exception as e:
            self.rejected += 1
            self.errors.append(f"rejected a message on {topic}: {e}")
            del self.errors[:-100]
            if self.rejected == 1 or self.rejected % 100 == 0:
                log.warning(
                    "rosbridge: rejected a message on %s (%s) [#%d]", topic, e, self.rejected
                )
            return
        with self._lock:
            if self._buffers[topic].add(now if t is None else t, msg) and topic == self._ref:
                self._seq += 1

    def _on_estop(self, msg: dict) -> None:
        if msg.get("data", True):  # Bool(true), or Empty
            self._latch_estop(f"received on {self.estop_spec['topic']}")

    def _on_estop_call(self, request: Mapping, response: dict) -> bool:
        self._latch_estop(f"requested through {self.estop_spec['service']}")
        response["success"] = True
        response["message"] = "e-stop latched: no further command will be sent"
        return True

    def _latch_estop(self, how: str) -> None:
        with self._send_lock:  # a command being published finishes first; none starts after
            if not self._estop.is_set():
                self.estop_at = time.time()
                log.warning("rosbridge: e-stop %s", how)
            self._estop.set()

    @property
    def estopped(self) -> bool:
        return self._estop.is_set()

    def observe(self) -> Observation:
        with self._lock:
            ref = self._buffers[self._ref]
            if not ref.items:
                raise RobotError(f"no message on {self._ref} yet: connect() first")
            t_ref = ref.newest
            picked = {topic: b.nearest(t_ref) for topic, b in self._buffers.items()}
            seq = self._seq
        state, frames, info = {}, {}, {}
        oldest = t_ref
        for spec in self.state_specs:
            stamp, _, msg = picked[spec["topic"]]
            state[spec["key"]] = _vector(msg, self._kinds[spec["topic"]], spec)
            oldest = min(oldest, stamp)
        for spec in self.info_specs:
            item = picked[spec["topic"]]
            if item is not None:
                kind = self._kinds[spec["topic"]]
                v = _vector(item[2], kind, spec)
                info[spec["key"]] = bool(v[0]) if kind == "Bool" else v
                info[spec["key"] + "_stamp"] = item[0]
        for spec in self.camera_specs:
            stamp, n, msg = picked[spec["topic"]]
            cached = self._image_cache.get(spec["name"])
            if cached is not None and cached[0] == n:
                frame = cached[1]  # the same message as last tick: decoded once
            else:
                frame = decode_image(msg, self._kinds[spec["topic"]], spec.get("size"))
                self._image_cache[spec["name"]] = (n, frame)
            frames[spec["name"]] = frame
            oldest = min(oldest, stamp)
        return Observation(oldest, state, frames, seq, self._estop.is_set(), info)

    # ------------------------------------------------------------------ sending
    def command(self, action: np.ndarray) -> None:
        import roslibpy

        if self._estop.is_set():
            raise EStopped("e-stop latched: command not sent")
        if self._cmd_topic is None:
            raise RobotError("command before connect()")
        a = np.asarray(action, dtype=np.float64)
        if not np.isfinite(a).all():
            raise RobotError(f"refusing a non-finite command {a.tolist()}")
        if not self.ros.is_connected:
            self.dropped_commands += 1  # never queue a stale command for the reconnect
            return
        msg = roslibpy.Message(self._command_msg(a))
        with self._send_lock:
            if self._estop.is_set():  # latched while this command was being built
                raise EStopped("e-stop latched: command not sent")
            self._cmd_topic.publish(msg)
            self.last_command_at = time.time()
            self.sent += 1

    def _command_msg(self, a: np.ndarray) -> dict:
        c, v = self.command_spec, self.ros_version
        if self._cmd_kind == "Float64MultiArray":
            return {"layout": {"dim": [], "data_offset": 0}, "data": a.tolist()}
        header = {"stamp": ros_time(time.time(), v), "frame_id": str(c.get("frame_id", ""))}
        if self._cmd_kind == "JointTrajectory":
            names = list(c.get("joints") or [])
            if len(names) != len(a):
                raise RobotError(f"JointTrajectory: {len(names)} joint names for {len(a)} values")
            dt = float(c.get("time_from_start", 0.1))
            return {
                "header": header,
                "joint_names": names,
                "points": [
                    {
                        "positions": a.tolist(),
                        "velocities": [],
                        "accelerations": [],
                        "effort": [],
                        "time_from_start": ros_time(dt, v),
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

    # ------------------------------------------------------------------ shutdown
    def close(self) -> None:
        self._shutdown()

    def _shutdown(self) -> None:
        self._closing = True
        ros, self.ros = self.ros, None
        if ros is None:
            return
        try:
            for t in self._topics:
                t.unsubscribe()
            if self._cmd_topic is not None:
                self._cmd_topic.unadvertise()
            if self._estop_service is not None:
                self._estop_service.unadvertise()
                self._estop_service = None
            if ros.is_connected:
                ros.close()
        except Exception as e:  # closing a dead connection: nothing left to do
            log.debug("rosbridge close: %r", e)
        finally:
            if self.ros is None:
                self._topics, self._cmd_topic = [], None
