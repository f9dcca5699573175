"""``DdsRobot``: an arm on a ROS 2 graph, joined as a DDS participant (no ROS install).

ROS 2's default middlewares are DDS implementations, and a ROS 2 topic is a DDS topic with
ROS 2's naming: ``/joint_states`` is ``rt/joint_states`` carrying
``sensor_msgs::msg::dds_::JointState_`` in little-endian CDR (``real.ros2_msgs``). So a
cyclonedds participant in the robot's ``ROS_DOMAIN_ID`` reads and writes the robot's topics
directly, as any ROS 2 node would, without rosbridge in between.

``DdsTransport`` implements ``real.ros_robot.Transport`` and ``DdsRobot`` is ``RosRobot`` over it:

- QoS per topic by profile (``qos: {topic: profile}``, else ``default``): ``default`` is ROS 2's
  default (reliable, keep last 10, volatile), ``sensor_data`` its sensor profile (best effort,
  keep last 5), ``transient_local`` a latched reliable topic. A publisher whose QoS cannot
  match ours (a best-effort camera read as reliable) is reported by name, not waited for.
- A publisher of another type on a topic we read (DDS never matches it) is named, from
  discovery, rather than waited for.
- Publisher lost: when every writer of a subscribed topic leaves, ``on_lost`` is called
  (DDS rediscovers them by itself when they return).
- Commands with no subscriber matched are counted (``unheard``) and reported once each time
  it happens, rather than vanishing silently.
- The e-stop service: ``rq/<service>Request`` / ``rr/<service>Reply`` with the request header
  rmw_cyclonedds puts before the fields (the caller's GUID half and a sequence number). A ROS 2
  side on Fast DDS marks requests differently; use the e-stop topic there.
- ``domain_id``: None reads ``ROS_DOMAIN_ID`` (0 when unset). ``config``: cyclonedds XML (or a
  file URL), e.g. unicast peers on networks without multicast; None reads ``CYCLONEDDS_URI``.
- Actions (``control_msgs/action/FollowJointTrajectory`` commands): ``action_client`` makes a
  ``real.dds_action.DdsActionClient`` in the ``distro``'s layout (``real.ros2_actions``).
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable, Mapping
from typing import Any

from cyclonedds.builtin import BuiltinDataReader, BuiltinTopicDcpsPublication
from cyclonedds.core import Listener, Policy, Qos
from cyclonedds.domain import Domain, DomainParticipant
from cyclonedds.idl import IdlStruct
from cyclonedds.pub import DataWriter
from cyclonedds.sub import DataReader
from cyclonedds.topic import Topic
from cyclonedds.util import duration

from . import ros2_msgs as msgs
from .ros_robot import Ros2Robot
from .ros_topics import Reconnect

log = logging.getLogger("uvdiff.dds")

QOS_PROFILES = ("default", "sensor_data", "transient_local")
TYPE_CONSISTENCY_POLICY_ID = 24  # DDS's TypeConsistencyEnforcement: same type name, other fields


def qos_profile(name: str) -> Qos:
    """The QoS of a ROS 2 profile by name (``rclpy.qos``'s presets, as DDS policies)."""
    reliable = Policy.Reliability.Reliable(duration(milliseconds=100))
    if name == "default":
        return Qos(reliable, Policy.History.KeepLast(10), Policy.Durability.Volatile)
    if name == "sensor_data":
        return Qos(Policy.Reliability.BestEffort, Policy.History.KeepLast(5),
                   Policy.Durability.Volatile)  # fmt: skip
    if name == "transient_local":
        return Qos(reliable, Policy.History.KeepLast(1), Policy.Durability.TransientLocal)
    raise ValueError(f"QoS profile {name!r}: use one of {QOS_PROFILES}")


def dds_topic(ros_name: str, prefix: str = "rt") -> str:
    """ROS 2's DDS topic name: ``/a/b`` -> ``rt/a/b`` (``rq``/``rr`` for service requests
    and replies)."""
    return f"{prefix}/{ros_name.lstrip('/')}"


def service_types(ros_type: str) -> tuple[type[IdlStruct], type[IdlStruct]]:
    """Request and reply types of a service as rmw_cyclonedds puts them on the wire: its
    request header (the client GUID's second half, a sequence number) before the fields."""
    parts = ros_type.split("/")
    key = f"{parts[0]}/srv/{parts[-1]}"
    if key not in msgs.SERVICES:
        raise ValueError(f"no DDS service type for {ros_type!r}; known: {sorted(msgs.SERVICES)}")
    return _SERVICE_WIRE[key]


_SERVICE_WIRE = {"std_srvs/srv/Trigger": (msgs.TriggerRequestWire, msgs.TriggerResponseWire)}
_HEADER = ("client_guid", "sequence")


class DdsTransport:
    """``real.ros_robot.Transport`` over a cyclonedds participant (see the module docstring)."""

    def __init__(
        self,
        domain_id: int | None = None,
        *,
        config: str | None = None,
        qos: Mapping[str, str] | None = None,
        distro: str = "humble",
    ):
        env = os.environ.get("ROS_DOMAIN_ID", "").strip()
        self.domain_id = int(domain_id if domain_id is not None else (env or 0))
        self.config = config if config is not None else os.environ.get("CYCLONEDDS_URI")
        self.qos = dict(qos or {})
        for topic, profile in self.qos.items():
            if profile not in QOS_PROFILES:
                raise ValueError(f"qos for {topic}: {profile!r} is not one of {QOS_PROFILES}")
        self.name = f"dds domain {self.domain_id}"
        from .ros2_actions import DISTROS

        if distro not in DISTROS:
            raise ValueError(f"distro={distro!r}: use one of {list(DISTROS)}")
        self.distro = distro
        self.dp: DomainParticipant | None = None
        self._domain: Domain | None = None
        self._readers: list[DataReader] = []
        self._writers: dict[str, DataWriter] = {}
        self._matched: dict[str, int] = {}
        self._live: dict[str, int] = {}
        self._expected: dict[str, str] = {}  # DDS topic -> the type we read there
        self._offered: dict[str, set[str]] = {}  # DDS topic -> types publishers announced
        self._named: set[str] = set()  # wrong types already reported
        self._publications: BuiltinDataReader | None = None
        self._lock = threading.Lock()
        self.unheard = 0  # commands published while no subscriber was matched
        self.malformed = 0  # samples that could not be read
        self._on_lost: Callable[[], None] = lambda: None
        self._on_error: Callable[[str], None] = lambda text: None

    @property
    def connected(self) -> bool:
        return self.dp is not None

    def connect(self, timeout, reconnect: Reconnect, on_lost, on_error) -> None:
        self._on_lost, self._on_error = on_lost, on_error
        if self.config:
            try:  # one configuration per domain and process: the first one made stays
                self._domain = Domain(self.domain_id, self.config)
            except Exception as e:
                log.debug("dds: domain %d already configured (%s)", self.domain_id, e)
        self.dp = DomainParticipant(self.domain_id)
        self._publications = BuiltinDataReader(
            self.dp, BuiltinTopicDcpsPublication,
            listener=Listener(on_data_available=self._on_publications),
        )  # fmt: skip

    def _on_publications(self, reader) -> None:
        """Discovery: name a publisher whose type differs from what we read on its topic (DDS
        would silently never match it)."""
        reader = reader or getattr(self, "_publications", None)  # builtin readers come as None
        if reader is None:
            return
        for pub in reader.take(N=64):
            name, kind = getattr(pub, "topic_name", None), getattr(pub, "type_name", None)
            if name is None or kind is None:
                continue
            with self._lock:
                self._offered.setdefault(name, set()).add(kind)
            self._check_types(name)

    def _check_types(self, dds_name: str) -> None:
        with self._lock:
            expected = self._expected.get(dds_name)
            wrong = sorted(self._offered.get(dds_name, set()) - {expected} - self._named)
            self._named.update(wrong)
        if expected is not None:
            for kind in wrong:
                self._on_error(
                    f"a publisher on {dds_name} sends {kind}, but the config reads {expected}: "
                    "its messages cannot be read (check the type in the robot config)"
                )

    def _qos(self, topic: str) -> Qos:
        return qos_profile(self.qos.get(topic, "default"))

    def subscribe(self, topic, type, callback, *, queue_length=0, throttle_ms=0) -> None:
        cls = msgs.message_class(type)
        self._reader(dds_topic(topic), topic, cls, lambda m: callback(msgs.to_dict(m)))

    def _reader(self, dds_name: str, label: str, cls, deliver) -> DataReader:
        def on_data(reader):
            for _ in range(256):  # one at a time: a bad sample never takes good ones with it
                try:
                    samples = reader.take(N=1)
                except Exception as e:  # bytes that pass CDR checks but do not decode
                    self.malformed += 1
                    self._on_error(f"malformed sample on {label} [#{self.malformed}]: {e}")
                    continue
                if not samples:
                    return
                if isinstance(samples[0], IdlStruct):  # not an invalid-sample marker
                    deliver(samples[0])

        def on_incompatible(reader, status):
            if status.last_policy_id == TYPE_CONSISTENCY_POLICY_ID:
                self._on_error(
                    f"type mismatch on {label}: a publisher's {msgs.dds_type_name(cls)} has "
                    "other fields than this one (another message definition or distro)"
                )
                return
            self._on_error(
                f"QoS mismatch on {label}: a publisher cannot match our "
                f"{self.qos.get(label, 'default')} profile (policy id {status.last_policy_id}); "
                "set qos for this topic in the robot config"
            )

        def on_matched(reader, status):
            with self._lock:
                before, self._live[label] = self._live.get(label, 0), status.current_count
            if before and not status.current_count:
                self._on_error(f"every publisher of {label} left")
                self._on_lost()

        listener = Listener(
            on_data_available=on_data,
            on_requested_incompatible_qos=on_incompatible,
            on_subscription_matched=on_matched,
        )
        topic = Topic(self.dp, dds_name, cls)
        reader = DataReader(self.dp, topic, qos=self._qos(label), listener=listener)
        self._readers.append(reader)
        with self._lock:
            self._expected[dds_name] = msgs.dds_type_name(cls)
        self._check_types(dds_name)
        return reader

    def advertise(self, topic: str, type: str, *, queue_size: int = 1) -> None:
        cls = msgs.message_class(type)
        self._writer(dds_topic(topic), topic, cls)

    def _writer(self, dds_name: str, label: str, cls) -> DataWriter:
        def on_matched(writer, status):
            with self._lock:
                self._matched[label] = status.current_count

        def on_incompatible(writer, status):
            self._on_error(f"QoS mismatch on {label}: a subscriber cannot match what we offer")

        listener = Listener(on_publication_matched=on_matched,
                            on_offered_incompatible_qos=on_incompatible)  # fmt: skip
        topic = Topic(self.dp, dds_name, cls)
        writer = DataWriter(self.dp, topic, qos=self._qos(label), listener=listener)
        self._writers[label] = writer
        return writer

    def publish(self, topic: str, msg: dict) -> None:
        writer = self._writers.get(topic)
        if writer is None:
            raise RuntimeError(f"publish on {topic} before advertise")
        with self._lock:
            heard = self._matched.get(topic, 0) > 0
        if not heard:
            self.unheard += 1
            if self.unheard == 1 or self.unheard % 100 == 0:
                self._on_error(f"no subscriber on {topic}: command not heard [#{self.unheard}]")
        writer.write(msgs.from_dict(writer.data_type, msg))

    def serve(self, service: str, type: str, handler) -> None:
        request_cls, reply_cls = service_types(type)
        replies = self._writer(dds_topic(service, "rr") + "Reply", service, reply_cls)

        def answer(request):
            fields = {k: v for k, v in msgs.to_dict(request).items() if k not in _HEADER}
            response: dict[str, Any] = {}
            ok = handler(fields, response)
            known = {k: v for k, v in response.items() if k in reply_cls.__annotations__}
            reply = reply_cls(client_guid=request.client_guid, sequence=request.sequence, **known)
            if not ok:
                reply.success = False
            replies.write(reply)

        self._reader(dds_topic(service, "rq") + "Request", service, request_cls, answer)

    def action_client(self, action: str, type: str) -> Any:
        """A client of the ROS 2 action ``action`` (``real.dds_action.DdsActionClient``)."""
        from .dds_action import DdsActionClient

        return DdsActionClient(self, action, type, distro=self.distro, on_error=self._on_error)

    def close(self) -> None:
        with self._lock:
            dp, self.dp = self.dp, None
        self._readers.clear()
        self._writers.clear()
        self._publications = None
        if dp is not None:
            try:
                dp.__del__()  # deletes its readers, writers and topics with it
            except Exception as e:
                log.debug("dds: closing the participant: %s", e)


class DdsRobot(Ros2Robot):
    """A ``real.Robot`` on a ROS 2 graph over DDS; arguments as in
    ``configs/robot/panda_dds.yaml`` (the topic lists as for ``RosbridgeRobot``); ``distro``
    picks the layout of action types (``configs/robot/panda_dds_fjt.yaml``)."""

    log = log
    label = "dds"

    def __init__(
        self,
        *,
        domain_id: int | None = None,
        config: str | None = None,
        qos: Mapping[str, str] | None = None,
        distro: str = "humble",
        **topics: Any,
    ):
        link = DdsTransport(domain_id, config=config, qos=qos, distro=distro)
        super().__init__(link, **topics)
