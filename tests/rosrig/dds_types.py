"""The test peer's own declarations of the ROS 2 wire types, written from the ``.msg`` files
and rosidl's IDL mapping, independently of ``real.ros2_msgs`` (which the tests check against
these and against rosbags' ROS 2 serialiser). Only what the DDS arm node needs."""

from dataclasses import dataclass, field

from cyclonedds.idl import IdlStruct
from cyclonedds.idl.types import float64, int32, int64, sequence, uint8, uint32, uint64


@dataclass
class Stamp(IdlStruct, typename="builtin_interfaces::msg::dds_::Time_"):
    sec: int32 = 0
    nanosec: uint32 = 0


@dataclass
class Hdr(IdlStruct, typename="std_msgs::msg::dds_::Header_"):
    stamp: Stamp = field(default_factory=Stamp)
    frame_id: str = ""


@dataclass
class Joints(IdlStruct, typename="sensor_msgs::msg::dds_::JointState_"):
    header: Hdr = field(default_factory=Hdr)
    name: sequence[str] = field(default_factory=list)
    position: sequence[float64] = field(default_factory=list)
    velocity: sequence[float64] = field(default_factory=list)
    effort: sequence[float64] = field(default_factory=list)


@dataclass
class RawImage(IdlStruct, typename="sensor_msgs::msg::dds_::Image_"):
    header: Hdr = field(default_factory=Hdr)
    height: uint32 = 0
    width: uint32 = 0
    encoding: str = ""
    is_bigendian: uint8 = 0
    step: uint32 = 0
    data: sequence[uint8] = field(default_factory=list)


@dataclass
class Vec3(IdlStruct, typename="geometry_msgs::msg::dds_::Point_"):
    x: float64 = 0.0
    y: float64 = 0.0
    z: float64 = 0.0


@dataclass
class Quat(IdlStruct, typename="geometry_msgs::msg::dds_::Quaternion_"):
    x: float64 = 0.0
    y: float64 = 0.0
    z: float64 = 0.0
    w: float64 = 1.0


@dataclass
class PoseOnly(IdlStruct, typename="geometry_msgs::msg::dds_::Pose_"):
    position: Vec3 = field(default_factory=Vec3)
    orientation: Quat = field(default_factory=Quat)


@dataclass
class StampedPose(IdlStruct, typename="geometry_msgs::msg::dds_::PoseStamped_"):
    header: Hdr = field(default_factory=Hdr)
    pose: PoseOnly = field(default_factory=PoseOnly)


@dataclass
class Dim(IdlStruct, typename="std_msgs::msg::dds_::MultiArrayDimension_"):
    label: str = ""
    size: uint32 = 0
    stride: uint32 = 0


@dataclass
class Layout(IdlStruct, typename="std_msgs::msg::dds_::MultiArrayLayout_"):
    dim: sequence[Dim] = field(default_factory=list)
    data_offset: uint32 = 0


@dataclass
class Doubles(IdlStruct, typename="std_msgs::msg::dds_::Float64MultiArray_"):
    layout: Layout = field(default_factory=Layout)
    data: sequence[float64] = field(default_factory=list)


@dataclass
class Flag(IdlStruct, typename="std_msgs::msg::dds_::Bool_"):
    data: bool = False


@dataclass
class Span(IdlStruct, typename="builtin_interfaces::msg::dds_::Duration_"):
    sec: int32 = 0
    nanosec: uint32 = 0


@dataclass
class TrajPoint(IdlStruct, typename="trajectory_msgs::msg::dds_::JointTrajectoryPoint_"):
    positions: sequence[float64] = field(default_factory=list)
    velocities: sequence[float64] = field(default_factory=list)
    accelerations: sequence[float64] = field(default_factory=list)
    effort: sequence[float64] = field(default_factory=list)
    time_from_start: Span = field(default_factory=Span)


@dataclass
class Traj(IdlStruct, typename="trajectory_msgs::msg::dds_::JointTrajectory_"):
    header: Hdr = field(default_factory=Hdr)
    joint_names: sequence[str] = field(default_factory=list)
    points: sequence[TrajPoint] = field(default_factory=list)


@dataclass
class TriggerCall(IdlStruct, typename="std_srvs::srv::dds_::Trigger_Request_"):
    client_guid: uint64 = 0  # rmw_cyclonedds' request header
    sequence: int64 = 0
    structure_needs_at_least_one_member: uint8 = 0


@dataclass
class TriggerAnswer(IdlStruct, typename="std_srvs::srv::dds_::Trigger_Response_"):
    client_guid: uint64 = 0
    sequence: int64 = 0
    success: bool = False
    message: str = ""


LOOPBACK = (
    "<CycloneDDS><Domain id='any'><General><Interfaces><NetworkInterface name='lo'/>"
    "</Interfaces><AllowMulticast>false</AllowMulticast></General><Discovery>"
    "<ParticipantIndex>auto</ParticipantIndex><MaxAutoParticipantIndex>30"
    "</MaxAutoParticipantIndex><Peers><Peer address='127.0.0.1'/></Peers></Discovery>"
    "</Domain></CycloneDDS>"
)
