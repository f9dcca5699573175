"""How rmw_zenoh names ROS 2 traffic on Zenoh: key expressions, liveliness tokens, attachments
and type hashes, as its Humble (0.1.x) and Jazzy (0.2.x) releases do (docs/notes/rmw_zenoh_wire.md
says where each rule comes from). Pure functions; ``real.zenoh_link`` does the I/O.

- Data key: ``<domain>/<name without its leading slash>/<pkg::msg::dds_::Type_>/<hash>``; the
  hash is ``TypeHashNotSupported`` on Humble and ``RIHS01_<sha256>`` on Jazzy, so the two
  distros never match each other.
- Liveliness token: ``@ros2_lv/<domain>/<zid>/<node id>/<entity id>/<kind>/<enclave>/<namespace>
  /<node>[/<topic>/<type>/<hash>/<qos>]`` with every ``/`` inside a field written ``%``.
- Attachment on every sample, request and reply (33 bytes): sequence number and source time
  (int64 little-endian, ns), then the 16-byte source GID as a length-prefixed sequence.
- Jazzy type hash (REP 2011): SHA-256 of the type description (fields in order, nested types
  sorted by name, no default values) as compact-ish JSON.
"""

from __future__ import annotations

import hashlib
import json
import struct
import typing
from dataclasses import dataclass, fields

import cyclonedds.idl.types as t
from cyclonedds.idl import IdlStruct

from . import ros2_msgs as msgs

DISTROS = ("humble", "jazzy")
ADMIN_SPACE = "@ros2_lv"
NO_HASH = "TypeHashNotSupported"
KINDS = {"node": "NN", "publisher": "MP", "subscription": "MS", "server": "SS", "client": "SC"}

# type_description_interfaces/msg/FieldType ids; sequences add 144 (unbounded)
_FIELD_IDS = {
    "nested": 1,
    "int8": 2,
    "uint8": 3,
    "int16": 4,
    "uint16": 5,
    "int32": 6,
    "uint32": 7,
    "int64": 8,
    "uint64": 9,
    "float32": 10,
    "float64": 11,
    "bool": 15,
    "string": 17,
}
_UNBOUNDED_SEQUENCE = 144


def ros_type_name(cls: type[IdlStruct]) -> str:
    """``sensor_msgs::msg::dds_::JointState_`` -> ``sensor_msgs/msg/JointState``."""
    pkg, kind, _, short = msgs.dds_type_name(cls).split("::")
    return f"{pkg}/{kind}/{short.removesuffix('_')}"


def _field_type(hint) -> tuple[int, str, typing.Any]:
    """(type id, nested type name, nested class or None) of one annotation."""
    meta = getattr(hint, "__metadata__", (None,))[0]
    if isinstance(meta, t.sequence):
        tid, nested, cls = _field_type(meta.subtype)
        return tid + _UNBOUNDED_SEQUENCE, nested, cls
    if isinstance(hint, type) and issubclass(hint, IdlStruct):
        return _FIELD_IDS["nested"], ros_type_name(hint), hint
    if hint is str:
        return _FIELD_IDS["string"], "", None
    if hint is bool:
        return _FIELD_IDS["bool"], "", None
    if isinstance(meta, str) and meta in _FIELD_IDS:
        return _FIELD_IDS[meta], "", None
    raise ValueError(f"no ROS field type for {hint!r}")


def _description(cls: type[IdlStruct]) -> tuple[dict, list[type[IdlStruct]]]:
    hints = typing.get_type_hints(cls, include_extras=True)
    out, nested = [], []
    for f in fields(cls):
        tid, name, sub = _field_type(hints[f.name])
        if sub is not None:
            nested.append(sub)
        out.append(
            {
                "name": f.name,
                "type": {
                    "type_id": tid,
                    "capacity": 0,
                    "string_capacity": 0,
                    "nested_type_name": name,
                },
            }
        )
    return {"type_name": ros_type_name(cls), "fields": out}, nested


def type_hash(cls: type[IdlStruct], distro: str = "jazzy") -> str:
    """The type hash rmw_zenoh puts in keys: ``RIHS01_<hex>`` (Jazzy) or ``TypeHashNotSupported``
    (Humble)."""
    if distro not in DISTROS:
        raise ValueError(f"distro {distro!r}: use one of {DISTROS}")
    if distro == "humble":
        return NO_HASH
    main, todo = _description(cls)
    refs: dict[str, dict] = {}
    while todo:
        sub = todo.pop()
        name = ros_type_name(sub)
        if name not in refs:
            refs[name], more = _description(sub)
            todo.extend(more)
    return _hash_of(main, list(refs.values()))


def _hash_of(main: dict, refs: list[dict]) -> str:
    doc = {
        "type_description": main,
        "referenced_type_descriptions": sorted(refs, key=lambda d: d["type_name"]),
    }
    text = json.dumps(doc, separators=(", ", ": "), ensure_ascii=True)
    return "RIHS01_" + hashlib.sha256(text.encode()).hexdigest()


def _field(name: str, type_id: int, nested: str = "", capacity: int = 0) -> dict:
    return {
        "name": name,
        "type": {
            "type_id": type_id,
            "capacity": capacity,
            "string_capacity": 0,
            "nested_type_name": nested,
        },
    }


def service_hash(request: type[IdlStruct], response: type[IdlStruct], distro: str = "jazzy"):
    """A service's type hash: of the service type, whose fields are its request, response and
    event messages (the event: ``service_msgs/msg/ServiceEventInfo`` plus at most one request
    and one response), as rosidl builds it."""
    if distro not in DISTROS:
        raise ValueError(f"distro {distro!r}: use one of {DISTROS}")
    if distro == "humble":
        return NO_HASH
    req, res = ros_type_name(request), ros_type_name(response)
    srv = req.removesuffix("_Request")
    nested, bounded = _FIELD_IDS["nested"], 96  # bounded sequence
    main = {
        "type_name": srv,
        "fields": [
            _field("request_message", nested, req),
            _field("response_message", nested, res),
            _field("event_message", nested, srv + "_Event"),
        ],
    }
    event = {
        "type_name": srv + "_Event",
        "fields": [
            _field("info", nested, "service_msgs/msg/ServiceEventInfo"),
            _field("request", nested + bounded, req, 1),
            _field("response", nested + bounded, res, 1),
        ],
    }
    info = {
        "type_name": "service_msgs/msg/ServiceEventInfo",
        "fields": [
            _field("event_type", _FIELD_IDS["uint8"]),
            _field("stamp", nested, "builtin_interfaces/msg/Time"),
            _field("client_gid", _FIELD_IDS["uint8"] + 48, capacity=16),  # char[16]: an array
            _field("sequence_number", _FIELD_IDS["int64"]),
        ],
    }
    refs = {
        d["type_name"]: d
        for d in (
            event,
            info,
            _description(msgs.Time)[0],
            _description(request)[0],
            _description(response)[0],
        )
    }
    return _hash_of(main, list(refs.values()))


def mangle(name: str) -> str:
    """A token field: every ``/`` becomes ``%`` (so the root namespace is ``%``)."""
    return name.replace("/", "%") if name else "%"


def data_key(domain: int, name: str, dds_type: str, hash_: str) -> str:
    """The key expression of a topic's or service's data."""
    return f"{int(domain)}/{name.strip('/')}/{dds_type}/{hash_}"


@dataclass(frozen=True)
class Qos:
    """The QoS rmw_zenoh encodes in tokens (rmw enum numbers; depth 0 means its default, 42)."""

    reliability: int = 1  # 1 reliable, 2 best effort
    durability: int = 2  # 1 transient local, 2 volatile
    history: int = 1  # 1 keep last, 2 keep all
    depth: int = 10

    def token(self) -> str:
        """``<rel>:<dur>:<hist>,<depth>:<deadline>:<lifespan>:<liveliness>``, each field empty
        where it equals rmw_zenoh's default (reliable, volatile, keep last 42, infinite,
        automatic)."""
        rel = "" if self.reliability == 1 else str(self.reliability)
        dur = "" if self.durability == 2 else str(self.durability)
        hist = "" if self.history == 1 else str(self.history)
        depth = "" if self.depth in (0, 42) else str(self.depth)
        return f"{rel}:{dur}:{hist},{depth}:,:,:,,"


QOS = {
    "default": Qos(),
    "sensor_data": Qos(reliability=2, depth=5),
    "transient_local": Qos(durability=1, depth=1),
}


def liveliness_token(
    domain: int,
    zid: str,
    node_id: int,
    entity_id: int,
    kind: str,
    node: str,
    *,
    namespace: str = "/",
    enclave: str = "/",
    topic: str | None = None,
    dds_type: str | None = None,
    hash_: str | None = None,
    qos: Qos | None = None,
) -> str:
    """A node's (``kind="node"``) or an endpoint's liveliness token."""
    parts = [
        ADMIN_SPACE,
        str(int(domain)),
        zid,
        str(node_id),
        str(entity_id),
        KINDS[kind],
        mangle(enclave),
        mangle(namespace),
        mangle(node),
    ]
    if kind != "node":
        if topic is None or dds_type is None or hash_ is None:
            raise ValueError("an endpoint token needs topic, type and hash")
        name = topic if topic.startswith("/") else "/" + topic
        parts += [mangle(name), mangle(dds_type), mangle(hash_), (qos or Qos()).token()]
    return "/".join(parts)


ATTACHMENT = struct.Struct("<qqB16s")  # seq, source time (ns), GID length 16, GID


def attachment(seq: int, stamp_ns: int, gid: bytes) -> bytes:
    if len(gid) != 16:
        raise ValueError(f"a GID is 16 bytes, got {len(gid)}")
    return ATTACHMENT.pack(int(seq), int(stamp_ns), 16, gid)


def read_attachment(raw: bytes) -> tuple[int, int, bytes]:
    """(sequence number, source time ns, GID); ValueError when it is not rmw_zenoh's layout."""
    if len(raw) != ATTACHMENT.size:
        raise ValueError(f"attachment of {len(raw)} bytes, rmw_zenoh sends {ATTACHMENT.size}")
    seq, stamp, n, gid = ATTACHMENT.unpack(raw)
    if n != 16:
        raise ValueError(f"attachment GID length {n}, expected 16")
    return seq, stamp, gid


def gid_of(token: str) -> bytes:
    """A 16-byte GID for an entity, from its token (rmw_zenoh hashes the token with XXH3-128;
    receivers only copy the GID, so any stable unique 16 bytes serve)."""
    return hashlib.blake2b(token.encode(), digest_size=16).digest()
