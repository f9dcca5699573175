"""``ZenohRobot``: an arm on a ROS 2 graph that runs rmw_zenoh, joined as a Zenoh peer (no ROS).

rmw_zenoh (Humble 0.1.x, Jazzy 0.2.x) carries each ROS 2 topic as CDR on a Zenoh key expression
that names the domain, topic, type and type hash, announces every node and endpoint with a
liveliness token, and attaches a sequence number, a time and the sender's GID to every sample.
``real.rmw_zenoh`` spells those; this module does the I/O with eclipse-zenoh, as a peer that
connects to the robot's Zenoh router (``tcp/localhost:7447`` by default, as rmw_zenoh does).

``ZenohTransport`` implements ``real.ros_robot.Transport``:

- ``distro``: ``jazzy`` (type hashes ``RIHS01_...``) or ``humble`` (``TypeHashNotSupported``);
  the two never match, so a publisher announcing the topic under another type or hash is named
  from the graph (its liveliness token), not waited for.
- Samples without rmw_zenoh's attachment are dropped and counted (``malformed``), as rmw_zenoh
  drops them; undecodable payloads likewise.
- A topic whose last publisher token goes away calls ``on_lost``; commands published while no
  subscription token is on the graph for their topic are counted (``unheard``).
- The e-stop ``std_srvs/Trigger`` service is a queryable answering with the request's sequence
  number and client GID, as rmw_zenoh's servers do.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Mapping, Sequence
from typing import Any

from . import rmw_zenoh as rz
from . import ros2_msgs as msgs
from .ros_robot import Ros2Robot
from .ros_topics import Reconnect

log = logging.getLogger("uvdiff.zenoh")


def _zenoh():
    try:
        import zenoh
    except ImportError as e:  # an optional dependency: say what to install
        raise RuntimeError("robot.driver.middleware=zenoh needs eclipse-zenoh: "
                           "pip install 'eclipse-zenoh>=1.8'") from e  # fmt: skip
    return zenoh


class ZenohTransport:
    """``real.ros_robot.Transport`` over a Zenoh session (see the module docstring)."""

    def __init__(
        self,
        domain_id: int | None = None,
        *,
        distro: str = "jazzy",
        connect: Sequence[str] = ("tcp/localhost:7447",),
        listen: Sequence[str] = (),
        node: str = "uvdiff",
        qos: Mapping[str, str] | None = None,
    ):
        if distro not in rz.DISTROS:
            raise ValueError(f"distro {distro!r}: use one of {rz.DISTROS}")
        env = os.environ.get("ROS_DOMAIN_ID", "").strip()
        self.domain = int(domain_id if domain_id is not None else (env or 0))
        self.distro, self.node = distro, node
        self.endpoints, self.listen = list(connect), list(listen)
        self.qos = dict(qos or {})
        for topic, profile in self.qos.items():
            if profile not in rz.QOS:
                raise ValueError(f"qos for {topic}: {profile!r} is not one of {sorted(rz.QOS)}")
        self.name = f"zenoh {','.join(self.endpoints) or 'peer'} domain {self.domain} ({distro})"
        self.session = None
        self._decl: list[Any] = []
        self._pubs: dict[str, tuple[Any, type, bytes]] = {}
        self._seq: dict[str, int] = {}
        self._ids = iter(range(1, 1 << 30))
        self._lock = threading.Lock()
        self._graph: dict[str, list[str]] = {}  # token -> its chunks
        self._heard: set[str] = set()  # topics with a subscription token on the graph
        self._reading: dict[str, tuple[str, str]] = {}  # topic -> (our type, our hash)
        self._named: set[str] = set()
        self.malformed = 0
        self.unheard = 0
        self._on_lost = lambda: None
        self._on_error = lambda text: None

    @property
    def connected(self) -> bool:
        return self.session is not None

    # ------------------------------------------------------------------ session and graph
    def connect(self, timeout, reconnect: Reconnect, on_lost, on_error) -> None:
        import json

        zenoh = _zenoh()
        self._on_lost, self._on_error = on_lost, on_error
        cfg = zenoh.Config()
        cfg.insert_json5("mode", '"peer"')
        cfg.insert_json5("connect/endpoints", json.dumps(self.endpoints))
        cfg.insert_json5("listen/endpoints", json.dumps(self.listen))
        cfg.insert_json5("scouting/multicast/enabled", "false")
        self.session = zenoh.open(cfg)
        self.zid = str(self.session.zid())
        self.node_id = 0
        self._token(rz.liveliness_token(self.domain, self.zid, 0, 0, "node", self.node))
        graph = f"{rz.ADMIN_SPACE}/{self.domain}/**"
        self._decl.append(self.session.liveliness().declare_subscriber(
            graph, self._on_token, history=True))  # fmt: skip

    def _token(self, token: str) -> bytes:
        self._decl.append(self.session.liveliness().declare_token(token))
        return rz.gid_of(token)

    def _on_token(self, sample) -> None:
        zenoh = _zenoh()
        token = str(sample.key_expr)
        parts = token.split("/")
        if len(parts) < 13 or parts[5] not in ("MP", "MS"):
            return
        topic = parts[9].replace("%", "/")
        gone = sample.kind == zenoh.SampleKind.DELETE
        with self._lock:
            if gone:
                self._graph.pop(token, None)
            else:
                self._graph[token] = parts
            # topics someone subscribes to, kept here (graph changes are rare, publishes not)
            self._heard = {p[9].replace("%", "/") for p in self._graph.values() if p[5] == "MS"}
            left = gone and parts[5] == "MP" and topic in self._reading
            left = left and not self._publishers(topic)
        if left:
            self._on_error(f"every publisher of {topic} left")
            self._on_lost()
        if not gone and parts[5] == "MP":
            self._check(topic)

    def _publishers(self, topic: str) -> list[list[str]]:
        return [p for p in self._graph.values() if p[5] == "MP" and p[9].replace("%", "/") == topic]

    def _check(self, topic: str) -> None:
        """Name a publisher that announces ``topic`` under another type or hash (a Humble node
        on a Jazzy graph, or a wrong type in the robot config): it would never match."""
        with self._lock:
            ours = self._reading.get(topic)
            theirs = {(p[10].replace("%", "/"), p[11]) for p in self._publishers(topic)}
        if ours is None:
            return
        for kind, hash_ in sorted(theirs - {ours}):
            if (topic, kind, hash_) in self._named:
                continue
            self._named.add((topic, kind, hash_))
            self._on_error(
                f"a publisher on {topic} announces {kind} with hash {hash_}, we read {ours[0]} "
                f"with {ours[1]} ({self.distro}): its messages never reach us"
            )

    # ------------------------------------------------------------------ topics
    def _key(self, topic: str, cls) -> tuple[str, str, str]:
        kind, hash_ = msgs.dds_type_name(cls), rz.type_hash(cls, self.distro)
        return rz.data_key(self.domain, topic, kind, hash_), kind, hash_

    def _endpoint(self, kind: str, topic: str, dds_type: str, hash_: str) -> bytes:
        qos = rz.QOS[self.qos.get(topic, "default")]
        token = rz.liveliness_token(self.domain, self.zid, self.node_id, next(self._ids), kind,
                                    self.node, topic=topic, dds_type=dds_type, hash_=hash_,
                                    qos=qos)  # fmt: skip
        return self._token(token)

    def subscribe(self, topic, type, callback, *, queue_length=0, throttle_ms=0) -> None:
        cls = msgs.message_class(type)
        key, kind, hash_ = self._key(topic, cls)

        def on_sample(sample):
            try:
                if sample.attachment is None:
                    raise ValueError("no attachment (rmw_zenoh drops such samples)")
                rz.read_attachment(bytes(sample.attachment.to_bytes()))
                msg = cls.deserialize(bytes(sample.payload.to_bytes()))
            except Exception as e:
                self.malformed += 1
                self._on_error(f"malformed sample on {topic}: {e}")
                return
            callback(msgs.to_dict(msg))

        self._decl.append(self.session.declare_subscriber(key, on_sample))
        self._endpoint("subscription", topic, kind, hash_)
        with self._lock:
            self._reading[topic] = (kind, hash_)
        self._check(topic)

    def advertise(self, topic: str, type: str, *, queue_size: int = 1) -> None:
        cls = msgs.message_class(type)
        key, kind, hash_ = self._key(topic, cls)
        publisher = self.session.declare_publisher(key, express=True)  # no batching delay
        self._decl.append(publisher)
        self._pubs[topic] = (publisher, cls, self._endpoint("publisher", topic, kind, hash_))
        self._seq[topic] = 0

    def publish(self, topic: str, msg: dict) -> None:
        if topic not in self._pubs:
            raise RuntimeError(f"publish on {topic} before advertise")
        publisher, cls, gid = self._pubs[topic]
        with self._lock:
            heard = topic in self._heard
            self._seq[topic] += 1
            seq = self._seq[topic]
        if not heard:
            self.unheard += 1
            if self.unheard == 1 or self.unheard % 100 == 0:
                self._on_error(f"no subscriber on {topic}: command not heard [#{self.unheard}]")
        payload = msgs.from_dict(cls, msg).serialize()
        publisher.put(payload, attachment=rz.attachment(seq, time.time_ns(), gid))

    def serve(self, service: str, type: str, handler) -> None:
        request_cls, response_cls = msgs.SERVICES[f"{type.split('/')[0]}/srv/{type.split('/')[-1]}"]
        srv_type = msgs.dds_type_name(response_cls).removesuffix("Response_")
        hash_ = rz.service_hash(request_cls, response_cls, self.distro)
        key = rz.data_key(self.domain, service, srv_type, hash_)

        def on_query(query):
            try:
                seq, _, client = rz.read_attachment(bytes(query.attachment.to_bytes()))
                request = request_cls.deserialize(bytes(query.payload.to_bytes()))
            except Exception as e:
                self.malformed += 1
                self._on_error(f"malformed request on {service}: {e}")
                return
            response: dict[str, Any] = {}
            ok = handler(msgs.to_dict(request), response)
            reply = msgs.from_dict(response_cls, response)
            if not ok:
                reply.success = False
            query.reply(
                key, reply.serialize(), attachment=rz.attachment(seq, time.time_ns(), client)
            )

        self._decl.append(self.session.declare_queryable(key, on_query, complete=True))
        self._endpoint("server", service, srv_type, hash_)

    def close(self) -> None:
        session, self.session = self.session, None
        for d in reversed(self._decl):
            try:
                d.undeclare()
            except Exception as e:
                log.debug("zenoh: undeclare: %s", e)
        self._decl.clear()
        self._pubs.clear()
        if session is not None:
            try:
                session.close()
            except Exception as e:
                log.debug("zenoh: closing the session: %s", e)


class ZenohRobot(Ros2Robot):
    """A ``real.Robot`` on an rmw_zenoh graph; arguments as in ``configs/robot/panda_zenoh.yaml``
    (the topic lists as for ``RosbridgeRobot``)."""

    log = log
    label = "zenoh"

    def __init__(
        self,
        *,
        domain_id: int | None = None,
        distro: str = "jazzy",
        connect: Sequence[str] = ("tcp/localhost:7447",),
        listen: Sequence[str] = (),
        qos: Mapping[str, str] | None = None,
        **topics: Any,
    ):
        link = ZenohTransport(domain_id, distro=distro, connect=connect, listen=listen, qos=qos)
        super().__init__(link, **topics)
