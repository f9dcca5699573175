"""The test peer's own declarations of the ROS 2 wire types, written from the ``.msg`` files
and rosidl's IDL mapping, independently of ``real.ros2_msgs`` (which the tests check against
these and against rosbags' ROS 2 serialiser). Only what the DDS arm node needs."""

from dataclasses import dataclass, field

from cyclonedds.idl import IdlStruct
from cyclonedds.idl import types as idl
from cyclonedds.idl.types import (
    array,
    float64,
    int8,
    int32,
    int64,
    sequence,
    uint8,
    uint16,
    uint32,
    uint64,
)


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


# ---- control_msgs/action/FollowJointTrajectory, written from the .action/.msg files of
# control_msgs (humble, jazzy, master), action_msgs, unique_identifier_msgs and rosidl_parser's
# Action (the derived SendGoal/GetResult/FeedbackMessage structs), for the action server node.
def _act(short: str) -> str:
    return f"control_msgs::action::dds_::FollowJointTrajectory_{short}_"


@dataclass
class GoalUuid(IdlStruct, typename="unique_identifier_msgs::msg::dds_::UUID_"):
    uuid: array[uint8, 16] = bytes(16)


@dataclass
class V3(IdlStruct, typename="geometry_msgs::msg::dds_::Vector3_"):
    x: float64 = 0.0
    y: float64 = 0.0
    z: float64 = 0.0


@dataclass
class Xform(IdlStruct, typename="geometry_msgs::msg::dds_::Transform_"):
    translation: V3 = field(default_factory=V3)
    rotation: Quat = field(default_factory=Quat)


@dataclass
class Vel6(IdlStruct, typename="geometry_msgs::msg::dds_::Twist_"):
    linear: V3 = field(default_factory=V3)
    angular: V3 = field(default_factory=V3)


@dataclass
class MdofPoint(IdlStruct, typename="trajectory_msgs::msg::dds_::MultiDOFJointTrajectoryPoint_"):
    transforms: sequence[Xform] = field(default_factory=list)
    velocities: sequence[Vel6] = field(default_factory=list)
    accelerations: sequence[Vel6] = field(default_factory=list)
    time_from_start: Span = field(default_factory=Span)


@dataclass
class MdofTraj(IdlStruct, typename="trajectory_msgs::msg::dds_::MultiDOFJointTrajectory_"):
    header: Hdr = field(default_factory=Hdr)
    joint_names: sequence[str] = field(default_factory=list)
    points: sequence[MdofPoint] = field(default_factory=list)


@dataclass
class JTol(IdlStruct, typename="control_msgs::msg::dds_::JointTolerance_"):
    name: str = ""
    position: float64 = 0.0
    velocity: float64 = 0.0
    acceleration: float64 = 0.0


@dataclass
class JCTol(IdlStruct, typename="control_msgs::msg::dds_::JointComponentTolerance_"):
    joint_name: str = ""
    component: uint16 = 0
    position: float64 = 0.0
    velocity: float64 = 0.0
    acceleration: float64 = 0.0


@dataclass
class FjtGoal(IdlStruct, typename=_act("Goal")):
    trajectory: Traj = field(default_factory=Traj)
    multi_dof_trajectory: MdofTraj = field(default_factory=MdofTraj)
    path_tolerance: sequence[JTol] = field(default_factory=list)
    component_path_tolerance: sequence[JCTol] = field(default_factory=list)
    goal_tolerance: sequence[JTol] = field(default_factory=list)
    component_goal_tolerance: sequence[JCTol] = field(default_factory=list)
    goal_time_tolerance: Span = field(default_factory=Span)


@dataclass
class FjtResult(IdlStruct, typename=_act("Result")):
    error_code: int32 = 0
    error_string: str = ""


@dataclass
class FjtFeedback(IdlStruct, typename=_act("Feedback")):  # control_msgs 4.x / 5.x
    header: Hdr = field(default_factory=Hdr)
    joint_names: sequence[str] = field(default_factory=list)
    desired: TrajPoint = field(default_factory=TrajPoint)
    actual: TrajPoint = field(default_factory=TrajPoint)
    error: TrajPoint = field(default_factory=TrajPoint)
    multi_dof_joint_names: sequence[str] = field(default_factory=list)
    multi_dof_desired: MdofPoint = field(default_factory=MdofPoint)
    multi_dof_actual: MdofPoint = field(default_factory=MdofPoint)
    multi_dof_error: MdofPoint = field(default_factory=MdofPoint)


@dataclass
class FjtFeedbackIdx(IdlStruct, typename=_act("Feedback")):  # control_msgs master (6.3+)
    header: Hdr = field(default_factory=Hdr)
    joint_names: sequence[str] = field(default_factory=list)
    desired: TrajPoint = field(default_factory=TrajPoint)
    actual: TrajPoint = field(default_factory=TrajPoint)
    error: TrajPoint = field(default_factory=TrajPoint)
    index: int32 = 0
    multi_dof_joint_names: sequence[str] = field(default_factory=list)
    multi_dof_desired: MdofPoint = field(default_factory=MdofPoint)
    multi_dof_actual: MdofPoint = field(default_factory=MdofPoint)
    multi_dof_error: MdofPoint = field(default_factory=MdofPoint)
    multi_dof_index: int32 = 0


@dataclass
class GoalCall(IdlStruct, typename=_act("SendGoal_Request")):
    client_guid: uint64 = 0  # rmw_cyclonedds' request header, as for Trigger
    sequence: int64 = 0
    goal_id: GoalUuid = field(default_factory=GoalUuid)
    goal: FjtGoal = field(default_factory=FjtGoal)


@dataclass
class GoalAnswer(IdlStruct, typename=_act("SendGoal_Response")):
    client_guid: uint64 = 0
    sequence: int64 = 0
    accepted: bool = False
    stamp: Stamp = field(default_factory=Stamp)


@dataclass
class ResultCall(IdlStruct, typename=_act("GetResult_Request")):
    client_guid: uint64 = 0
    sequence: int64 = 0
    goal_id: GoalUuid = field(default_factory=GoalUuid)


@dataclass
class ResultAnswer(IdlStruct, typename=_act("GetResult_Response")):
    client_guid: uint64 = 0
    sequence: int64 = 0
    status: int8 = 0
    result: FjtResult = field(default_factory=FjtResult)


@dataclass
class FeedbackMsg(IdlStruct, typename=_act("FeedbackMessage")):
    goal_id: GoalUuid = field(default_factory=GoalUuid)
    feedback: FjtFeedback = field(default_factory=FjtFeedback)


@dataclass
class FeedbackMsgIdx(IdlStruct, typename=_act("FeedbackMessage")):
    goal_id: GoalUuid = field(default_factory=GoalUuid)
    feedback: FjtFeedbackIdx = field(default_factory=FjtFeedbackIdx)


@dataclass
class GoalInf(IdlStruct, typename="action_msgs::msg::dds_::GoalInfo_"):
    goal_id: GoalUuid = field(default_factory=GoalUuid)
    stamp: Stamp = field(default_factory=Stamp)


@dataclass
class GoalStat(IdlStruct, typename="action_msgs::msg::dds_::GoalStatus_"):
    goal_info: GoalInf = field(default_factory=GoalInf)
    status: int8 = 0


@dataclass
class GoalStats(IdlStruct, typename="action_msgs::msg::dds_::GoalStatusArray_"):
    status_list: sequence[GoalStat] = field(default_factory=list)


@dataclass
class CancelCall(IdlStruct, typename="action_msgs::srv::dds_::CancelGoal_Request_"):
    client_guid: uint64 = 0
    sequence: int64 = 0
    goal_info: GoalInf = field(default_factory=GoalInf)


@dataclass
class CancelAnswer(IdlStruct, typename="action_msgs::srv::dds_::CancelGoal_Response_"):
    client_guid: uint64 = 0
    sequence: int64 = 0
    return_code: int8 = 0
    goals_canceling: idl.sequence[GoalInf] = field(default_factory=list)  # a member shadows it


LOOPBACK = (
    "<CycloneDDS><Domain id='any'><General><Interfaces><NetworkInterface name='lo'/>"
    "</Interfaces><AllowMulticast>false</AllowMulticast></General><Discovery>"
    "<ParticipantIndex>auto</ParticipantIndex><MaxAutoParticipantIndex>30"
    "</MaxAutoParticipantIndex><Peers><Peer address='127.0.0.1'/></Peers></Discovery>"
    "</Domain></CycloneDDS>"
)
