"""ROS 2 message types as DDS sees them, and plain dicts in and out of them.

A ROS 2 node publishes ``sensor_msgs/msg/JointState`` on DDS as the struct
``sensor_msgs::msg::dds_::JointState_`` (rosidl's IDL, fields in ``.msg`` order, CDR
little-endian, no type extensibility), on the topic ``rt/<name>``. These classes declare the
types the robot layer uses (``real.ros_topics.MSG_TYPES``) with cyclonedds' IDL machinery, so
cyclonedds writes the same bytes a ROS 2 node would; ``tests/test_dds.py`` checks those bytes
against an independent ROS 2 serialiser (``rosbags``) and a peer with its own declarations.

Messages elsewhere are dicts in ROS field names (``real.ros_topics``); ``to_dict`` and
``from_dict`` convert; ``uint8[]`` and ``uint8[N]`` fields (image data, UUIDs) are ``bytes`` in the
dicts. Action types are in ``real.ros2_actions``.
"""

from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from typing import Any

import cyclonedds.idl.types as t
from cyclonedds.idl import IdlStruct


def _name(pkg: str, kind: str, short: str) -> str:
    return f"{pkg}::{kind}::dds_::{short}_"


@dataclass
class Time(IdlStruct, typename=_name("builtin_interfaces", "msg", "Time")):
    sec: t.int32 = 0
    nanosec: t.uint32 = 0


@dataclass
class Duration(IdlStruct, typename=_name("builtin_interfaces", "msg", "Duration")):
    sec: t.int32 = 0
    nanosec: t.uint32 = 0


@dataclass
class Header(IdlStruct, typename=_name("std_msgs", "msg", "Header")):
    stamp: Time = field(default_factory=Time)
    frame_id: str = ""


@dataclass
class JointState(IdlStruct, typename=_name("sensor_msgs", "msg", "JointState")):
    header: Header = field(default_factory=Header)
    name: t.sequence[str] = field(default_factory=list)
    position: t.sequence[t.float64] = field(default_factory=list)
    velocity: t.sequence[t.float64] = field(default_factory=list)
    effort: t.sequence[t.float64] = field(default_factory=list)


@dataclass
class Image(IdlStruct, typename=_name("sensor_msgs", "msg", "Image")):
    header: Header = field(default_factory=Header)
    height: t.uint32 = 0
    width: t.uint32 = 0
    encoding: str = ""
    is_bigendian: t.uint8 = 0
    step: t.uint32 = 0
    data: t.sequence[t.uint8] = field(default_factory=list)


@dataclass
class CompressedImage(IdlStruct, typename=_name("sensor_msgs", "msg", "CompressedImage")):
    header: Header = field(default_factory=Header)
    format: str = ""
    data: t.sequence[t.uint8] = field(default_factory=list)


@dataclass
class Point(IdlStruct, typename=_name("geometry_msgs", "msg", "Point")):
    x: t.float64 = 0.0
    y: t.float64 = 0.0
    z: t.float64 = 0.0


@dataclass
class Quaternion(IdlStruct, typename=_name("geometry_msgs", "msg", "Quaternion")):
    x: t.float64 = 0.0
    y: t.float64 = 0.0
    z: t.float64 = 0.0
    w: t.float64 = 1.0


@dataclass
class Pose(IdlStruct, typename=_name("geometry_msgs", "msg", "Pose")):
    position: Point = field(default_factory=Point)
    orientation: Quaternion = field(default_factory=Quaternion)


@dataclass
class PoseStamped(IdlStruct, typename=_name("geometry_msgs", "msg", "PoseStamped")):
    header: Header = field(default_factory=Header)
    pose: Pose = field(default_factory=Pose)


@dataclass
class MultiArrayDimension(IdlStruct, typename=_name("std_msgs", "msg", "MultiArrayDimension")):
    label: str = ""
    size: t.uint32 = 0
    stride: t.uint32 = 0


@dataclass
class MultiArrayLayout(IdlStruct, typename=_name("std_msgs", "msg", "MultiArrayLayout")):
    dim: t.sequence[MultiArrayDimension] = field(default_factory=list)
    data_offset: t.uint32 = 0


@dataclass
class Float64MultiArray(IdlStruct, typename=_name("std_msgs", "msg", "Float64MultiArray")):
    layout: MultiArrayLayout = field(default_factory=MultiArrayLayout)
    data: t.sequence[t.float64] = field(default_factory=list)


@dataclass
class Float32MultiArray(IdlStruct, typename=_name("std_msgs", "msg", "Float32MultiArray")):
    layout: MultiArrayLayout = field(default_factory=MultiArrayLayout)
    data: t.sequence[t.float32] = field(default_factory=list)


@dataclass
class String(IdlStruct, typename=_name("std_msgs", "msg", "String")):
    data: str = ""


@dataclass
class Float64(IdlStruct, typename=_name("std_msgs", "msg", "Float64")):
    data: t.float64 = 0.0


@dataclass
class Bool(IdlStruct, typename=_name("std_msgs", "msg", "Bool")):
    data: bool = False


@dataclass
class Empty(IdlStruct, typename=_name("std_msgs", "msg", "Empty")):
    structure_needs_at_least_one_member: t.uint8 = 0  # rosidl's filler for empty structs


@dataclass
class JointTrajectoryPoint(
    IdlStruct, typename=_name("trajectory_msgs", "msg", "JointTrajectoryPoint")
):
    positions: t.sequence[t.float64] = field(default_factory=list)
    velocities: t.sequence[t.float64] = field(default_factory=list)
    accelerations: t.sequence[t.float64] = field(default_factory=list)
    effort: t.sequence[t.float64] = field(default_factory=list)
    time_from_start: Duration = field(default_factory=Duration)


@dataclass
class JointTrajectory(IdlStruct, typename=_name("trajectory_msgs", "msg", "JointTrajectory")):
    header: Header = field(default_factory=Header)
    joint_names: t.sequence[str] = field(default_factory=list)
    points: t.sequence[JointTrajectoryPoint] = field(default_factory=list)


@dataclass
class TriggerRequest(IdlStruct, typename=_name("std_srvs", "srv", "Trigger_Request")):
    structure_needs_at_least_one_member: t.uint8 = 0


@dataclass
class TriggerResponse(IdlStruct, typename=_name("std_srvs", "srv", "Trigger_Response")):
    success: bool = False
    message: str = ""


# rmw_cyclonedds sends a service's request and reply with a header before the fields: the
# client's GUID (its second half) and a sequence number, which the reply echoes.
@dataclass
class TriggerRequestWire(IdlStruct, typename=_name("std_srvs", "srv", "Trigger_Request")):
    client_guid: t.uint64 = 0
    sequence: t.int64 = 0
    structure_needs_at_least_one_member: t.uint8 = 0


@dataclass
class TriggerResponseWire(IdlStruct, typename=_name("std_srvs", "srv", "Trigger_Response")):
    client_guid: t.uint64 = 0
    sequence: t.int64 = 0
    success: bool = False
    message: str = ""


def _bytes_on_the_wire(cls: type[IdlStruct], name: str) -> None:
    """Serialise the ``uint8[]`` field ``name`` as one bytes block (the same CDR: a length, then
    the bytes) instead of element by element: an image is one copy, not a Python int each."""
    from cyclonedds.idl._machinery import BytesMachine  # cyclonedds' own octet-sequence codec

    cls.__idl__.populate()
    for machine in (cls.__idl__.v1_machine, cls.__idl__.v2_machine):
        machine.members_machines[name] = BytesMachine()


_bytes_on_the_wire(Image, "data")
_bytes_on_the_wire(CompressedImage, "data")


MESSAGES: dict[str, type[IdlStruct]] = {
    "sensor_msgs/msg/JointState": JointState,
    "sensor_msgs/msg/Image": Image,
    "sensor_msgs/msg/CompressedImage": CompressedImage,
    "geometry_msgs/msg/PoseStamped": PoseStamped,
    "geometry_msgs/msg/Pose": Pose,
    "std_msgs/msg/Float64MultiArray": Float64MultiArray,
    "std_msgs/msg/Float32MultiArray": Float32MultiArray,
    "std_msgs/msg/Float64": Float64,
    "std_msgs/msg/String": String,
    "std_msgs/msg/Bool": Bool,
    "std_msgs/msg/Empty": Empty,
    "trajectory_msgs/msg/JointTrajectory": JointTrajectory,
}
SERVICES: dict[str, tuple[type[IdlStruct], type[IdlStruct]]] = {
    "std_srvs/srv/Trigger": (TriggerRequest, TriggerResponse),
}


def message_class(ros_type: str) -> type[IdlStruct]:
    """The class of a ROS 2 type name (``pkg/msg/Type``; ``pkg/Type`` is read the same)."""
    parts = ros_type.split("/")
    key = f"{parts[0]}/msg/{parts[-1]}" if len(parts) in (2, 3) else ros_type
    if key not in MESSAGES:
        raise ValueError(f"no DDS type for {ros_type!r}; known: {sorted(MESSAGES)}")
    return MESSAGES[key]


def dds_type_name(cls: type[IdlStruct]) -> str:
    """The type name a ROS 2 reader or writer of this message announces on DDS."""
    return cls.__idl_typename__.replace(".", "::")


def to_dict(msg: IdlStruct) -> dict[str, Any]:
    """A message as a dict in ROS field names (nested messages as dicts, sequences as lists,
    ``uint8[]`` as bytes)."""
    hints = type(msg).__annotations__
    out = {}
    for f in fields(msg):
        v = getattr(msg, f.name)
        out[f.name] = bytes(v) if _is_bytes(hints[f.name]) else _plain(v)
    return out


def _is_bytes(hint: Any) -> bool:
    meta = getattr(hint, "__metadata__", ("",))[0]
    return isinstance(meta, (t.sequence, t.array)) and meta.subtype is t.uint8


def _plain(v: Any) -> Any:
    if isinstance(v, IdlStruct):
        return to_dict(v)
    if isinstance(v, list):
        return [_plain(x) for x in v]
    return v


def from_dict(cls: type[IdlStruct], d: Mapping[str, Any]) -> IdlStruct:
    """A message of ``cls`` from a dict in ROS field names; missing fields take defaults,
    unknown ones are an error naming them (a typo must not vanish on the wire)."""
    if not isinstance(d, Mapping):
        raise ValueError(f"{cls.__name__}: expected a dict, got {type(d).__name__}")
    known = {f.name: f for f in fields(cls)}
    unknown = sorted(set(d) - set(known))
    if unknown:
        raise ValueError(f"{cls.__name__} has no field(s) {unknown}")
    hints = cls.__annotations__
    values = {}
    for name, value in d.items():
        values[name] = _field_value(hints[name], value, f"{cls.__name__}.{name}")
    return cls(**values)


def _field_value(hint: Any, value: Any, where: str) -> Any:
    if isinstance(hint, type) and issubclass(hint, IdlStruct):
        return value if isinstance(value, hint) else from_dict(hint, value)
    if _is_bytes(hint):
        if isinstance(value, str):  # rosbridge's base64, should a dict come from there
            import base64

            return base64.b64decode(value)
        return bytes(value)
    meta = getattr(hint, "__metadata__", ("",))[0]
    if isinstance(meta, t.sequence):
        sub = meta.subtype
        if isinstance(sub, type) and issubclass(sub, IdlStruct):
            return [x if isinstance(x, sub) else from_dict(sub, x) for x in value]
        return [_scalar(sub, x, where) for x in value]
    return _scalar(hint, value, where)


def _scalar(hint: Any, value: Any, where: str) -> Any:
    if hint is str:
        return str(value)
    if hint is bool:
        return bool(value)
    kind = str(getattr(hint, "__metadata__", ("",))[0])
    if kind.startswith(("int", "uint")):
        return int(value)
    if kind.startswith("float"):
        return float(value)
    raise ValueError(f"{where}: cannot convert {value!r}")
