"""``RosRobot``: a ``real.Robot`` over ROS topics, whichever middleware carries them.

It exists so that the robot logic (aligning topics into observations, rejecting bad messages
on arrival, the e-stop latch, dropping commands while disconnected) is written once, and a
new way of reaching ROS is only a ``Transport``. ``real.rosbridge.RosbridgeRobot`` is this
class over roslibpy; a DDS or Zenoh driver implements ``Transport`` and subclasses it the same
way. Topics and message shapes come from ``real.ros_topics``.

A ``Transport`` carries plain-dict ROS messages (field names as in the ``.msg`` files):

- ``name``: how errors and logs name the link, e.g. ``rosbridge 10.0.0.2:9090``.
- ``connect(timeout, reconnect, on_lost, on_error)``: open the link within ``timeout`` s or
  raise (any exception); from then on reconnect on its own with ``reconnect``'s backoff and
  restore every subscription, advertisement and service. Call ``on_lost()`` each time the
  link drops (never after ``close``), ``on_error(text)`` for errors the other side reports.
- ``connected``: the link is up now (commands are dropped while it is not).
- ``subscribe(topic, type, callback, queue_length=0, throttle_ms=0)``: ``callback(msg)`` for
  every message, from any thread; ``queue_length`` 0 leaves the middleware's default.
- ``advertise(topic, type, queue_size=1)`` then ``publish(topic, msg)``: send a message.
- ``serve(service, type, handler)``: offer a service; ``handler(request, response)`` fills
  ``response`` in place and returns whether the call succeeded.
- ``action_client(action, type)`` (optional; ``real.dds`` has it): a client of a ROS 2 action
  (``real.dds_action.DdsActionClient``), for commands that are goals (``ACTION_KINDS``): each
  command is a goal replacing the previous one; the e-stop cancels ours and sends no other.
- ``close()``: undo all of the above and drop the link; never raises, safe to call twice.

Types are full names in the robot's ROS spelling (``std_msgs/Bool`` or ``std_msgs/msg/Bool``).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Protocol

import numpy as np

from .robot import EStopped, Observation, RobotError
from .ros_topics import (
    ACTION_KINDS,
    Reconnect,
    RobotTopics,
    TopicBuffer,
    command_message,
    decode_image,
    estop_requested,
    read_vector,
    stamp_of,
    trigger_reply,
)

CLOCK_JUMP_S = 1.0  # header stamps this far back (or ahead of our clock): a jump, not jitter


class Transport(Protocol):
    """How a ``RosRobot`` reaches ROS; see the module docstring for the contract."""

    name: str

    @property
    def connected(self) -> bool: ...

    def connect(
        self,
        timeout: float,
        reconnect: Reconnect,
        on_lost: Callable[[], None],
        on_error: Callable[[str], None],
    ) -> None: ...

    def subscribe(
        self,
        topic: str,
        type: str,
        callback: Callable[[dict], None],
        *,
        queue_length: int = 0,
        throttle_ms: int = 0,
    ) -> None: ...

    def advertise(self, topic: str, type: str, *, queue_size: int = 1) -> None: ...

    def publish(self, topic: str, msg: dict) -> None: ...

    def serve(self, service: str, type: str, handler: Callable[[Mapping, dict], bool]) -> None: ...

    def close(self) -> None: ...


class RosRobot:
    """A ``real.Robot`` reading and writing the topics of ``topics`` through ``link``.

    ``connect_timeout``: seconds to connect and to hear every state and camera topic;
    ``reconnect``: {initial, max} backoff (``ros_topics.Reconnect``); ``buffer``: messages kept
    per topic to align them by stamp; ``settle``: seconds to wait after advertising the
    command topic (ROS 1 subscribers connect to a new publisher only then).
    """

    log = logging.getLogger("uvdiff.ros")
    label = "ros"  # how log lines name this kind of robot

    def __init__(
        self,
        link: Transport,
        topics: RobotTopics,
        *,
        connect_timeout: float = 10.0,
        reconnect: Mapping[str, float] | None = None,
        buffer: int = 16,
        settle: float = 0.5,
    ):
        self.link, self.topics = link, topics
        self.ros_version, self.stamp_mode = topics.ros_version, topics.stamp_mode
        self.state_specs, self.camera_specs = topics.state, topics.cameras
        self.info_specs, self.command_spec = topics.info, topics.command
        self.estop_spec = topics.estop
        self.connect_timeout = float(connect_timeout)
        self.settle = float(settle)
        self.reconnect = {"initial": 0.5, "max": 5.0, **dict(reconnect or {})}
        self._lock = threading.Lock()
        self._buffers = {topic: TopicBuffer(int(buffer)) for topic in topics.kinds}
        self._kinds = topics.kinds
        self._ref = topics.reference
        self.rejected = 0  # messages dropped on arrival (unreadable, wrong size, NaN/Inf)
        self.clock_jumps = 0  # a topic's header stamps went back by more than CLOCK_JUMP_S
        self._dims: dict[str, int] = {}
        self._seq = 0
        self._estop = threading.Event()
        self._send_lock = threading.Lock()
        self.estop_at: float | None = None  # wall-clock time the e-stop latched here
        self.last_command_at: float | None = None  # wall-clock time of the last publish
        self._image_cache: dict[str, tuple[int, np.ndarray]] = {}  # camera -> (message, frame)
        self._cmd_topic: str | None = None  # advertised, until close()
        self._cmd_kind: str | None = None
        self._goals: Any = None  # the action client, when commands are goals
        self.sent = 0
        self.dropped_commands = 0
        self.disconnects = 0
        self.errors: list[str] = []

    # ------------------------------------------------------------------ connection
    def connect(self) -> None:
        link, topics = self.link, self.topics
        try:
            link.connect(
                self.connect_timeout,
                Reconnect.from_config(self.reconnect),
                self._on_lost,
                self._on_error,
            )
        except Exception as e:
            self._shutdown()
            raise RobotError(f"{link.name}: cannot connect ({e})") from e
        for sub in topics.subscriptions():
            link.subscribe(
                sub.topic,
                sub.type,
                lambda m, name=sub.topic: self._on_message(name, m),
                queue_length=sub.queue_length,
                throttle_ms=sub.throttle_ms,
            )
        estop = topics.estop_subscription()
        if estop is not None:
            link.subscribe(estop.topic, estop.type, self._on_estop)
            service = topics.estop_service()
            if service is not None:  # a std_srvs/Trigger anyone on the ROS side can call
                link.serve(*service, self._on_estop_call)
        if self.command_spec is None:  # listen only (the recorder): nothing advertised, sent
            self._wait_first()
            return
        self._cmd_kind = topics.command_kind()
        if self._cmd_kind in ACTION_KINDS:
            self._goals = self._action_client()
        else:
            link.advertise(self.command_spec["topic"], topics.command_type(), queue_size=1)
        self._cmd_topic = self.command_spec["topic"]
        self._wait_first()
        # ROS 1 subscribers connect to a new publisher over TCPROS after it is advertised: a
        # command sent sooner is lost. Give them a moment (the transport cannot tell when).
        time.sleep(self.settle)

    def _action_client(self) -> Any:
        """The client of the command action, its server matched within ``connect_timeout``."""
        name, kind = self.command_spec["topic"], self.topics.command_type()
        make = getattr(self.link, "action_client", None)
        if make is None:
            self.close()
            raise RobotError(f"{self.link.name}: {kind} is a ROS 2 action; use middleware: dds")
        client = make(name, kind)
        self.accept_timeout = float(self.command_spec.get("accept_timeout", 1.0))
        if not client.wait_for_server(self.connect_timeout):
            self.close()
            raise RobotError(f"{self.link.name}: no {kind} server on {name} after "
                             f"{self.connect_timeout:g} s")  # fmt: skip
        return client

    def _wait_first(self) -> None:
        end = time.monotonic() + self.connect_timeout
        need = self.topics.required
        while True:
            with self._lock:
                missing = sorted(t for t in need if not self._buffers[t].items)
            if not missing:
                return
            if time.monotonic() > end:
                self.close()
                raise RobotError(
                    f"{self.link.name}: nothing received on {missing} in "
                    f"{self.connect_timeout:g} s"
                    + (f" (errors: {self.errors[-3:]})" if self.errors else "")
                )
            time.sleep(0.01)

    def health(self) -> dict[str, Any]:
        """What went wrong on the link so far: counters (ours and the transport's) and the
        last errors, for the deploy report."""
        counts = {k: getattr(self, k) for k in ("rejected", "clock_jumps", "disconnects",
                                                "dropped_commands")}  # fmt: skip
        for k in ("malformed", "unheard"):
            if hasattr(self.link, k):
                counts[k] = int(getattr(self.link, k))
        if self._goals is not None:
            counts.update(self._goals.counts())
        return {**counts, "errors": self.errors[-5:]}

    def _on_error(self, text: str) -> None:
        self.errors.append(text)
        del self.errors[:-100]

    def _on_lost(self) -> None:
        self.disconnects += 1
        self.log.warning("%s: connection lost; reconnecting", self.link.name)

    # ------------------------------------------------------------------ receiving
    def _on_message(self, topic: str, msg: dict) -> None:
        now = time.time()
        try:  # check at the boundary: a bad message never becomes an observation
            for spec in self.topics.readers.get(topic, ()):
                v = read_vector(msg, self._kinds[topic], spec)
                if not np.isfinite(v).all():
                    raise RobotError(f"NaN/Inf in {spec['key']}")
                if self._dims.setdefault(spec["key"], v.size) != v.size:
                    raise RobotError(
                        f"{spec['key']} has {v.size} values, first had {self._dims[spec['key']]}"
                    )
            t = stamp_of(msg) if self.stamp_mode == "header" else None
            if t is not None and t > now + CLOCK_JUMP_S:
                raise RobotError(
                    f"stamped {t - now:.1f} s ahead of this machine's clock (sync the clocks, "
                    "or set stamp: receipt in the robot config)"
                )
        except Exception as e:
            self.rejected += 1
            self._on_error(f"rejected a message on {topic}: {e}")
            if self.rejected == 1 or self.rejected % 100 == 0:
                self.log.warning(
                    "%s: rejected a message on %s (%s) [#%d]", self.label, topic, e, self.rejected
                )
            return
        jumped = 0.0
        with self._lock:
            buf = self._buffers[topic]
            if t is not None and t < buf.newest - CLOCK_JUMP_S:
                jumped = buf.newest - t  # the sender's clock went back: start the topic over
                buf.reset()
                self.clock_jumps += 1
            if buf.add(now if t is None else t, msg) and topic == self._ref:
                self._seq += 1
        if jumped:
            self._on_error(
                f"clock jump on {topic}: header stamps went back {jumped:.1f} s; the topic "
                "restarts from the new clock (states older than the shield's limit are held)"
            )
            self.log.warning("%s: clock jump on %s: back %.1f s", self.label, topic, jumped)

    def _on_estop(self, msg: dict) -> None:
        if estop_requested(msg):
            self._latch_estop(f"received on {self.estop_spec['topic']}")

    def _on_estop_call(self, request: Mapping, response: dict) -> bool:
        self._latch_estop(f"requested through {self.estop_spec['service']}")
        return trigger_reply(response)

    def _latch_estop(self, how: str) -> None:
        with self._send_lock:  # a command being published finishes first; none starts after
            if not self._estop.is_set():
                self.estop_at = time.time()
                self.log.warning("%s: e-stop %s", self.label, how)
            self._estop.set()
            if self._goals is not None:  # cancel the goal under way; no other is sent
                self._goals.halt()

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
            state[spec["key"]] = read_vector(msg, self._kinds[spec["topic"]], spec)
            oldest = min(oldest, stamp)
        for spec in self.info_specs:
            item = picked[spec["topic"]]
            if item is not None:
                kind = self._kinds[spec["topic"]]
                v = read_vector(item[2], kind, spec)
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
        if self._estop.is_set():
            raise EStopped("e-stop latched: command not sent")
        if self._cmd_topic is None:
            raise RobotError("command before connect()")
        a = np.asarray(action, dtype=np.float64)
        if not np.isfinite(a).all():
            raise RobotError(f"refusing a non-finite command {a.tolist()}")
        if not self.link.connected:
            self.dropped_commands += 1  # never queue a stale command for the reconnect
            return
        msg = command_message(self._cmd_kind, a, self.command_spec, self.ros_version, time.time())
        goal, goals = None, self._goals
        with self._send_lock:
            if self._estop.is_set():  # latched while this command was being built
                raise EStopped("e-stop latched: command not sent")
            if goals is not None:
                goal = goals.send(msg)
            else:
                self.link.publish(self._cmd_topic, msg)
            self.last_command_at = time.time()
            self.sent += 1
        if goal is not None:  # outside the lock: an e-stop never waits for the server
            goals.wait_accepted(goal, self.accept_timeout)

    # ------------------------------------------------------------------ shutdown
    def close(self) -> None:
        self._shutdown()

    def _shutdown(self) -> None:
        self.link.close()
        self._cmd_topic = None
        self._goals = None


class Ros2Robot(RosRobot):
    """A ``RosRobot`` on a ROS 2 graph reached natively (``real.dds``, ``real.zenoh_link``): the
    topic lists as for ``RosbridgeRobot``, ROS 2 spellings, and no settle time (endpoints match
    on discovery, not on a TCP connection made after advertising)."""

    def __init__(
        self,
        link: Transport,
        *,
        state: Sequence[Mapping[str, Any]],
        command: Mapping[str, Any] | None,
        cameras: Sequence[Mapping[str, Any]] = (),
        info: Sequence[Mapping[str, Any]] = (),
        estop: Mapping[str, Any] | None = None,
        stamp: str = "header",
        connect_timeout: float = 10.0,
        buffer: int = 16,
        **_: Any,
    ):
        topics = RobotTopics(state, command, cameras, info, estop, 2, stamp)
        super().__init__(link, topics, connect_timeout=connect_timeout, buffer=buffer, settle=0.0)
