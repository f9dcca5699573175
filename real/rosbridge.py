"""``RosbridgeRobot``: an arm behind a rosbridge v2 server, through roslibpy (no local ROS).

This module is the rosbridge transport and nothing else: ``RosbridgeTransport`` implements
``real.ros_robot.Transport`` (connect/close, subscribe, advertise/publish, serve; see that
module's docstring) with a roslibpy client and its event loop, and ``RosbridgeRobot`` is
``RosRobot`` over it. What is subscribed and published, and how messages are read and
built, lives in ``real.ros_topics``; another middleware plugs in beside this one by
implementing the same ``Transport``.

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

import hashlib
import logging
import secrets
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from .ros_robot import RosRobot, Transport
from .ros_topics import (
    MSG_TYPES,
    Reconnect,
    RobotTopics,
    decode_image,
    ros_time,
    short_type,
    stamp_of,
    type_name,
)

__all__ = [
    "MSG_TYPES",
    "RosbridgeRobot",
    "RosbridgeTransport",
    "Transport",
    "decode_image",
    "ros_time",
    "rosauth_mac",
    "short_type",
    "stamp_of",
    "type_name",
]

log = logging.getLogger("uvdiff.rosbridge")


def rosauth_mac(secret: str, client: str, dest: str, rand: str, t: int, level: str, end: int):
    """rosauth's MAC: hex SHA-512 of the concatenated fields (times in whole seconds)."""
    text = f"{secret}{client}{dest}{rand}{int(t)}{level}{int(end)}"
    return hashlib.sha512(text.encode()).hexdigest()


class RosbridgeTransport:
    """``Transport`` over a rosbridge v2 server: a ``roslibpy.Ros`` client (its own loop thread).

    ``transport``: roslibpy's (asyncio or twisted); ``auth``: {secret, client?, dest?, level?,
    duration?} for rosauth. ``ros`` is the live ``roslibpy.Ros`` (None when closed).
    """

    def __init__(
        self,
        host: str,
        port: int,
        *,
        secure: bool = False,
        transport: str = "asyncio",
        auth: Mapping[str, Any] | None = None,
    ):
        self.host, self.port, self.secure, self.transport = host, int(port), secure, transport
        self.auth = dict(auth) if auth else None
        self.name = f"rosbridge {self.host}:{self.port}"
        self.ros = None
        self._topics: list = []  # subscribed
        self._publishers: dict[str, Any] = {}  # topic -> advertised roslibpy.Topic
        self._services: list = []
        self._closing = False
        self._on_lost: Callable[[], None] = lambda: None
        self._on_error: Callable[[str], None] = lambda text: None

    @property
    def connected(self) -> bool:
        ros = self.ros
        return ros is not None and ros.is_connected

    def connect(
        self,
        timeout: float,
        reconnect: Reconnect,
        on_lost: Callable[[], None],
        on_error: Callable[[str], None],
    ) -> None:
        import roslibpy

        self._closing = False
        self._on_lost, self._on_error = on_lost, on_error
        self.ros = roslibpy.Ros(
            self.host, self.port, is_secure=self.secure, transport=self.transport
        )
        factory = type(self.ros.factory)
        factory.initialDelay = reconnect.initial
        factory.maxDelay = reconnect.max
        # Ros() starts connecting at once: hook every later (re)connect, then run the hook for
        # the first connection too (both are idempotent)
        self.ros.on("close", self._on_close)
        self.ros.on("ready", self._on_ready)
        self.ros.run(timeout=timeout)
        self.ros.factory.on_ready(self._on_ready)

    def subscribe(
        self,
        topic: str,
        type: str,
        callback: Callable[[dict], None],
        *,
        queue_length: int = 0,
        throttle_ms: int = 0,
    ) -> None:
        import roslibpy

        t = roslibpy.Topic(
            self.ros, topic, type, queue_length=queue_length, throttle_rate=throttle_ms
        )
        t.subscribe(callback)
        self._topics.append(t)

    def advertise(self, topic: str, type: str, *, queue_size: int = 1) -> None:
        import roslibpy

        t = roslibpy.Topic(self.ros, topic, type, queue_size=queue_size)
        t.advertise()
        self._publishers[topic] = t

    def publish(self, topic: str, msg: dict) -> None:
        import roslibpy

        self._publishers[topic].publish(roslibpy.Message(msg))

    def serve(self, service: str, type: str, handler: Callable[[Mapping, dict], bool]) -> None:
        import roslibpy

        s = roslibpy.Service(self.ros, service, type)
        s.advertise(handler)
        self._services.append(s)

    def close(self) -> None:
        self._closing = True
        ros, self.ros = self.ros, None
        if ros is None:
            return
        try:
            for t in self._topics:
                t.unsubscribe()
            for t in self._publishers.values():
                t.unadvertise()
            while self._services:
                self._services.pop(0).unadvertise()
            if ros.is_connected:
                ros.close()
        except Exception as e:  # closing a dead connection: nothing left to do
            log.debug("rosbridge close: %r", e)
        finally:
            self._topics, self._publishers = [], {}

    # ------------------------------------------------------------------ per connection
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

    def _on_ready(self, proto: Any) -> Any:
        """Per connection: authenticate first (a fresh MAC), and pass the server's status
        replies, which roslibpy has no handler for, to ``on_error`` (bad type, failed auth)."""
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
        self._on_error(text)
        log.warning("rosbridge %s:%d says %s", self.host, self.port, text)

    def _on_close(self, *_: Any) -> None:
        if not self._closing:
            self._on_lost()


class RosbridgeRobot(RosRobot):
    """A ``real.Robot`` over rosbridge; arguments as in ``configs/robot/rosbridge.yaml``.

    ``state``: list of {key, topic, type, field?, joints?, index?}; the first entry's topic is
    the reference the others are aligned to. ``cameras``: list of {name, topic, type, size}.
    ``command``: {topic, type, joints? (JointTrajectory), time_from_start?, frame_id?}; None
    listens only (``command`` then raises).
    ``info``: like ``state``, for values the loop reads but the policy does not (``success``).
    """

    log = log
    label = "rosbridge"

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
        topics = RobotTopics(state, command, cameras, info, estop, ros_version, stamp)
        self.host, self.port, self.secure, self.transport = host, int(port), secure, transport
        self.auth = dict(auth) if auth else None
        link = RosbridgeTransport(
            self.host, self.port, secure=secure, transport=transport, auth=self.auth
        )
        super().__init__(
            link,
            topics,
            connect_timeout=connect_timeout,
            reconnect=reconnect,
            buffer=buffer,
            settle=settle,
        )

    @property
    def ros(self):
        """The live ``roslibpy.Ros`` client, None before ``connect()`` and after ``close()``."""
        return self.link.ros

    def connect(self) -> None:
        import roslibpy  # noqa: F401  (not installed: an ImportError, not "cannot connect")

        super().connect()
