"""ROS 2 action types as DDS sees them: ``control_msgs/action/FollowJointTrajectory`` and the
``action_msgs`` it runs on (see ``docs/notes/ros2_action_wire.md`` for the sources).

A ROS 2 action is three services and two topics under ``<action>/_action/``: ``send_goal``
(``<Action>_SendGoal``: a goal UUID and the goal; accepted and a stamp back), ``get_result``
(``<Action>_GetResult``: the UUID; a status and the result back, once the goal ends),
``cancel_goal`` (``action_msgs/srv/CancelGoal``), and the topics ``feedback``
(``<Action>_FeedbackMessage``: UUID and feedback) and ``status``
(``action_msgs/msg/GoalStatusArray``, transient local). rosidl puts the derived types in the
action's namespace: ``control_msgs::action::dds_::FollowJointTrajectory_SendGoal_Request_``.

Services carry rmw_cyclonedds' request header (``client_guid``, ``sequence``) before their
fields, as ``real.ros2_msgs.TriggerRequestWire`` does; the classes here are those wire forms.

Layouts by distro (``LAYOUTS``): Humble (control_msgs 4.x) and Jazzy (5.x) are the same;
control_msgs 6.3 and later (Rolling) add ``index`` and ``multi_dof_index`` to the feedback.
"""

from dataclasses import dataclass, field

import cyclonedds.idl.types as t
from cyclonedds.idl import IdlStruct

from .ros2_msgs import (
    Duration,
    Header,
    JointTrajectory,
    JointTrajectoryPoint,
    Quaternion,
    Time,
    _name,
)

FJT = "control_msgs/action/FollowJointTrajectory"
ZERO_UUID = bytes(16)


def _fjt(short: str) -> str:
    return _name("control_msgs", "action", f"FollowJointTrajectory_{short}")


# ------------------------------------------------------------------ messages the action uses
@dataclass
class UUID(IdlStruct, typename=_name("unique_identifier_msgs", "msg", "UUID")):
    uuid: t.array[t.uint8, 16] = ZERO_UUID


@dataclass
class Vector3(IdlStruct, typename=_name("geometry_msgs", "msg", "Vector3")):
    x: t.float64 = 0.0
    y: t.float64 = 0.0
    z: t.float64 = 0.0


@dataclass
class Transform(IdlStruct, typename=_name("geometry_msgs", "msg", "Transform")):
    translation: Vector3 = field(default_factory=Vector3)
    rotation: Quaternion = field(default_factory=Quaternion)


@dataclass
class Twist(IdlStruct, typename=_name("geometry_msgs", "msg", "Twist")):
    linear: Vector3 = field(default_factory=Vector3)
    angular: Vector3 = field(default_factory=Vector3)


@dataclass
class MultiDOFJointTrajectoryPoint(
    IdlStruct, typename=_name("trajectory_msgs", "msg", "MultiDOFJointTrajectoryPoint")
):
    transforms: t.sequence[Transform] = field(default_factory=list)
    velocities: t.sequence[Twist] = field(default_factory=list)
    accelerations: t.sequence[Twist] = field(default_factory=list)
    time_from_start: Duration = field(default_factory=Duration)


@dataclass
class MultiDOFJointTrajectory(
    IdlStruct, typename=_name("trajectory_msgs", "msg", "MultiDOFJointTrajectory")
):
    header: Header = field(default_factory=Header)
    joint_names: t.sequence[str] = field(default_factory=list)
    points: t.sequence[MultiDOFJointTrajectoryPoint] = field(default_factory=list)


@dataclass
class JointTolerance(IdlStruct, typename=_name("control_msgs", "msg", "JointTolerance")):
    name: str = ""
    position: t.float64 = 0.0
    velocity: t.float64 = 0.0
    acceleration: t.float64 = 0.0


@dataclass
class JointComponentTolerance(
    IdlStruct, typename=_name("control_msgs", "msg", "JointComponentTolerance")
):
    joint_name: str = ""
    component: t.uint16 = 0  # X_AXIS=1 Y_AXIS=2 Z_AXIS=3 TRANSLATION=4 ROTATION=5
    position: t.float64 = 0.0
    velocity: t.float64 = 0.0
    acceleration: t.float64 = 0.0


# ------------------------------------------------------------------ FollowJointTrajectory
@dataclass
class FollowJointTrajectoryGoal(IdlStruct, typename=_fjt("Goal")):
    trajectory: JointTrajectory = field(default_factory=JointTrajectory)
    multi_dof_trajectory: MultiDOFJointTrajectory = field(default_factory=MultiDOFJointTrajectory)
    path_tolerance: t.sequence[JointTolerance] = field(default_factory=list)
    component_path_tolerance: t.sequence[JointComponentTolerance] = field(default_factory=list)
    goal_tolerance: t.sequence[JointTolerance] = field(default_factory=list)
    component_goal_tolerance: t.sequence[JointComponentTolerance] = field(default_factory=list)
    goal_time_tolerance: Duration = field(default_factory=Duration)


@dataclass
class FollowJointTrajectoryResult(IdlStruct, typename=_fjt("Result")):
    error_code: t.int32 = 0
    error_string: str = ""


ERROR_CODES = {0: "SUCCESSFUL", -1: "INVALID_GOAL", -2: "INVALID_JOINTS",
               -3: "OLD_HEADER_TIMESTAMP", -4: "PATH_TOLERANCE_VIOLATED",
               -5: "GOAL_TOLERANCE_VIOLATED"}  # fmt: skip


@dataclass
class FollowJointTrajectoryFeedback(IdlStruct, typename=_fjt("Feedback")):
    """Humble and Jazzy (control_msgs 4.x, 5.x and 6.0-6.2)."""

    header: Header = field(default_factory=Header)
    joint_names: t.sequence[str] = field(default_factory=list)
    desired: JointTrajectoryPoint = field(default_factory=JointTrajectoryPoint)
    actual: JointTrajectoryPoint = field(default_factory=JointTrajectoryPoint)
    error: JointTrajectoryPoint = field(default_factory=JointTrajectoryPoint)
    multi_dof_joint_names: t.sequence[str] = field(default_factory=list)
    multi_dof_desired: MultiDOFJointTrajectoryPoint = field(
        default_factory=MultiDOFJointTrajectoryPoint
    )
    multi_dof_actual: MultiDOFJointTrajectoryPoint = field(
        default_factory=MultiDOFJointTrajectoryPoint
    )
    multi_dof_error: MultiDOFJointTrajectoryPoint = field(
        default_factory=MultiDOFJointTrajectoryPoint
    )


@dataclass
class FollowJointTrajectoryFeedbackIndexed(IdlStruct, typename=_fjt("Feedback")):
    """control_msgs 6.3 and later (Rolling): the index of the point being executed."""

    header: Header = field(default_factory=Header)
    joint_names: t.sequence[str] = field(default_factory=list)
    desired: JointTrajectoryPoint = field(default_factory=JointTrajectoryPoint)
    actual: JointTrajectoryPoint = field(default_factory=JointTrajectoryPoint)
    error: JointTrajectoryPoint = field(default_factory=JointTrajectoryPoint)
    index: t.int32 = 0
    multi_dof_joint_names: t.sequence[str] = field(default_factory=list)
    multi_dof_desired: MultiDOFJointTrajectoryPoint = field(
        default_factory=MultiDOFJointTrajectoryPoint
    )
    multi_dof_actual: MultiDOFJointTrajectoryPoint = field(
        default_factory=MultiDOFJointTrajectoryPoint
    )
    multi_dof_error: MultiDOFJointTrajectoryPoint = field(
        default_factory=MultiDOFJointTrajectoryPoint
    )
    multi_dof_index: t.int32 = 0


@dataclass
class FollowJointTrajectorySendGoalRequest(IdlStruct, typename=_fjt("SendGoal_Request")):
    client_guid: t.uint64 = 0  # rmw_cyclonedds' request header
    sequence: t.int64 = 0
    goal_id: UUID = field(default_factory=UUID)
    goal: FollowJointTrajectoryGoal = field(default_factory=FollowJointTrajectoryGoal)


@dataclass
class FollowJointTrajectorySendGoalResponse(IdlStruct, typename=_fjt("SendGoal_Response")):
    client_guid: t.uint64 = 0
    sequence: t.int64 = 0
    accepted: bool = False
    stamp: Time = field(default_factory=Time)


@dataclass
class FollowJointTrajectoryGetResultRequest(IdlStruct, typename=_fjt("GetResult_Request")):
    client_guid: t.uint64 = 0
    sequence: t.int64 = 0
    goal_id: UUID = field(default_factory=UUID)


@dataclass
class FollowJointTrajectoryGetResultResponse(IdlStruct, typename=_fjt("GetResult_Response")):
    client_guid: t.uint64 = 0
    sequence: t.int64 = 0
    status: t.int8 = 0
    result: FollowJointTrajectoryResult = field(default_factory=FollowJointTrajectoryResult)


@dataclass
class FollowJointTrajectoryFeedbackMessage(IdlStruct, typename=_fjt("FeedbackMessage")):
    goal_id: UUID = field(default_factory=UUID)
    feedback: FollowJointTrajectoryFeedback = field(default_factory=FollowJointTrajectoryFeedback)


@dataclass
class FollowJointTrajectoryFeedbackMessageIndexed(IdlStruct, typename=_fjt("FeedbackMessage")):
    goal_id: UUID = field(default_factory=UUID)
    feedback: FollowJointTrajectoryFeedbackIndexed = field(
        default_factory=FollowJointTrajectoryFeedbackIndexed
    )


# ------------------------------------------------------------------ action_msgs
STATUS = {0: "UNKNOWN", 1: "ACCEPTED", 2: "EXECUTING", 3: "CANCELING", 4: "SUCCEEDED",
          5: "CANCELED", 6: "ABORTED"}  # fmt: skip
TERMINAL = (4, 5, 6)
CANCEL_CODES = {0: "ERROR_NONE", 1: "ERROR_REJECTED", 2: "ERROR_UNKNOWN_GOAL_ID",
                3: "ERROR_GOAL_TERMINATED"}  # fmt: skip


@dataclass
class GoalInfo(IdlStruct, typename=_name("action_msgs", "msg", "GoalInfo")):
    goal_id: UUID = field(default_factory=UUID)
    stamp: Time = field(default_factory=Time)


@dataclass
class GoalStatus(IdlStruct, typename=_name("action_msgs", "msg", "GoalStatus")):
    goal_info: GoalInfo = field(default_factory=GoalInfo)
    status: t.int8 = 0


@dataclass
class GoalStatusArray(IdlStruct, typename=_name("action_msgs", "msg", "GoalStatusArray")):
    status_list: t.sequence[GoalStatus] = field(default_factory=list)


@dataclass
class CancelGoalRequest(IdlStruct, typename=_name("action_msgs", "srv", "CancelGoal_Request")):
    client_guid: t.uint64 = 0
    sequence: t.int64 = 0
    goal_info: GoalInfo = field(default_factory=GoalInfo)  # zero id and stamp: every goal


@dataclass
class CancelGoalResponse(IdlStruct, typename=_name("action_msgs", "srv", "CancelGoal_Response")):
    client_guid: t.uint64 = 0
    sequence: t.int64 = 0
    return_code: t.int8 = 0
    goals_canceling: t.sequence[GoalInfo] = field(default_factory=list)


# ------------------------------------------------------------------ layouts
@dataclass(frozen=True)
class ActionLayout:
    """The wire types of one action in one distro's layout."""

    type: str
    distro: str
    goal: type[IdlStruct]
    result: type[IdlStruct]
    send_goal: tuple[type[IdlStruct], type[IdlStruct]]
    get_result: tuple[type[IdlStruct], type[IdlStruct]]
    feedback: type[IdlStruct]
    cancel: tuple[type[IdlStruct], type[IdlStruct]] = (CancelGoalRequest, CancelGoalResponse)
    status: type[IdlStruct] = GoalStatusArray


def _fjt_layout(distro: str, feedback: type[IdlStruct]) -> ActionLayout:
    return ActionLayout(
        FJT, distro, FollowJointTrajectoryGoal, FollowJointTrajectoryResult,
        (FollowJointTrajectorySendGoalRequest, FollowJointTrajectorySendGoalResponse),
        (FollowJointTrajectoryGetResultRequest, FollowJointTrajectoryGetResultResponse),
        feedback,
    )  # fmt: skip


LAYOUTS: dict[str, ActionLayout] = {
    "humble": _fjt_layout("humble", FollowJointTrajectoryFeedbackMessage),
    "jazzy": _fjt_layout("jazzy", FollowJointTrajectoryFeedbackMessage),
    "rolling": _fjt_layout("rolling", FollowJointTrajectoryFeedbackMessageIndexed),
}
DISTROS = tuple(LAYOUTS)


def action_layout(ros_type: str, distro: str = "humble") -> ActionLayout:
    """The wire types of ``ros_type`` (``pkg/action/Name``) as ``distro`` lays them out."""
    parts = ros_type.split("/")
    if f"{parts[0]}/action/{parts[-1]}" != FJT:
        raise ValueError(f"no DDS types for the action {ros_type!r}; known: [{FJT!r}]")
    if distro not in LAYOUTS:
        raise ValueError(
            f"distro={distro!r}: use one of {list(DISTROS)} (Humble and Jazzy share a layout; "
            "rolling is control_msgs 6.3+, whose feedback carries index fields)"
        )
    return LAYOUTS[distro]
