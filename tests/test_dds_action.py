"""The ROS 2 action control_msgs/action/FollowJointTrajectory over DDS without ROS: our wire
types against a peer's own declarations (rosbags has no control_msgs), CDR checked by hand
where it is easy to get wrong, and goals sent to an action server in its own process
(tests/rosrig/dds_fjt_node.py) on loopback."""

import struct
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from real import ros2_actions as acts
from real import ros2_msgs as ours
from real.dds import DdsRobot, DdsTransport
from real.dds_action import ActionRejected, ActionTimeout
from real.robot import EStopped, RobotError
from real.ros_topics import Reconnect, command_message

sys.path.insert(0, str(Path(__file__).parent / "rosrig"))
import dds_types as peer  # noqa: E402
from dds_rig import node_starter, random_domain  # noqa: E402
from rosrig import wait_until as _wait  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
NODE = ROOT / "tests" / "rosrig" / "dds_fjt_node.py"
ACTION = "/joint_trajectory_controller/follow_joint_trajectory"
PANDA = [f"panda_joint{i}" for i in range(1, 8)]

STAMP = {"sec": 1733, "nanosec": 250_000_000}
HEADER = {"stamp": STAMP, "frame_id": "world"}
UUID = bytes(range(1, 17))
POINT = {
    "positions": [0.1, 0.2],
    "velocities": [0.0, 0.5],
    "accelerations": [],
    "effort": [],
    "time_from_start": {"sec": 0, "nanosec": 100_000_000},
}
MDOF_POINT = {
    "transforms": [
        {
            "translation": {"x": 1.0, "y": 2.0, "z": 3.0},
            "rotation": {"x": 0.0, "y": 0.0, "z": 0.7071, "w": 0.7071},
        }
    ],
    "velocities": [
        {"linear": {"x": 0.1, "y": 0.0, "z": 0.0}, "angular": {"x": 0.0, "y": 0.0, "z": 0.2}}
    ],
    "accelerations": [],
    "time_from_start": {"sec": 2, "nanosec": 5},
}
MDOF = {"header": HEADER, "joint_names": ["base"], "points": [MDOF_POINT]}
JTOL = {"name": "a", "position": 0.01, "velocity": 0.1, "acceleration": 0.0}
JCTOL = {
    "joint_name": "base",
    "component": 4,
    "position": 0.02,
    "velocity": 0.0,
    "acceleration": 0.5,
}
GOAL = {
    "trajectory": {"header": HEADER, "joint_names": ["a", "b"], "points": [POINT]},
    "multi_dof_trajectory": MDOF,
    "path_tolerance": [JTOL],
    "component_path_tolerance": [JCTOL],
    "goal_tolerance": [JTOL, JTOL],
    "component_goal_tolerance": [],
    "goal_time_tolerance": {"sec": 1, "nanosec": 0},
}
FEEDBACK = {
    "header": HEADER,
    "joint_names": ["a", "b"],
    "desired": POINT,
    "actual": POINT,
    "error": POINT,
    "multi_dof_joint_names": ["base"],
    "multi_dof_desired": MDOF_POINT,
    "multi_dof_actual": MDOF_POINT,
    "multi_dof_error": MDOF_POINT,
}
RESULT = {"error_code": -4, "error_string": "panda_joint2 off the path by 0.2 rad"}
INFO = {"goal_id": {"uuid": UUID}, "stamp": STAMP}
RQ = {"client_guid": 0x0123456789ABCDEF, "sequence": 42}
SAMPLES = {  # name -> (our class, a dict in ROS field names, the peer's class)
    "UUID": (acts.UUID, {"uuid": UUID}, peer.GoalUuid),
    "JointTolerance": (acts.JointTolerance, JTOL, peer.JTol),
    "JointComponentTolerance": (acts.JointComponentTolerance, JCTOL, peer.JCTol),
    "MultiDOFJointTrajectory": (acts.MultiDOFJointTrajectory, MDOF, peer.MdofTraj),
    "Goal": (acts.FollowJointTrajectoryGoal, GOAL, peer.FjtGoal),
    "Result": (acts.FollowJointTrajectoryResult, RESULT, peer.FjtResult),
    "Feedback": (acts.FollowJointTrajectoryFeedback, FEEDBACK, peer.FjtFeedback),
    "FeedbackIndexed": (acts.FollowJointTrajectoryFeedbackIndexed,
                        {**FEEDBACK, "index": 3, "multi_dof_index": -1}, peer.FjtFeedbackIdx),
    "FeedbackMessage": (acts.FollowJointTrajectoryFeedbackMessage,
                        {"goal_id": {"uuid": UUID}, "feedback": FEEDBACK}, peer.FeedbackMsg),
    "SendGoal_Request": (acts.FollowJointTrajectorySendGoalRequest,
                         {**RQ, "goal_id": {"uuid": UUID}, "goal": GOAL}, peer.GoalCall),
    "SendGoal_Response": (acts.FollowJointTrajectorySendGoalResponse,
                          {**RQ, "accepted": True, "stamp": STAMP}, peer.GoalAnswer),
    "GetResult_Request": (acts.FollowJointTrajectoryGetResultRequest,
                          {**RQ, "goal_id": {"uuid": UUID}}, peer.ResultCall),
    "GetResult_Response": (acts.FollowJointTrajectoryGetResultResponse,
                           {**RQ, "status": 6, "result": RESULT}, peer.ResultAnswer),
    "GoalStatusArray": (acts.GoalStatusArray,
                        {"status_list": [{"goal_info": INFO, "status": 2},
                                         {"goal_info": INFO, "status": -1}]}, peer.GoalStats),
    "CancelGoal_Request": (acts.CancelGoalRequest, {**RQ, "goal_info": INFO}, peer.CancelCall),
    "CancelGoal_Response": (acts.CancelGoalResponse,
                            {**RQ, "return_code": 0, "goals_canceling": [INFO]},
                            peer.CancelAnswer),
}  # fmt: skip


@pytest.mark.parametrize("name", sorted(SAMPLES))
def test_our_cdr_is_the_peers_byte_for_byte_both_ways(name):
    cls, d, peer_cls = SAMPLES[name]
    mine = ours.from_dict(cls, d).serialize()
    theirs = peer_cls.deserialize(mine)  # ours -> the peer's declarations
    assert theirs.serialize() == mine  # and the same bytes back from the peer
    assert ours.to_dict(cls.deserialize(theirs.serialize())) == d
    assert ours.dds_type_name(cls) == peer_cls.__idl_typename__.replace(".", "::")


def test_cdr_by_hand_header_uuid_padding_and_strings():
    """Bytes written out from the CDR rules, so that both declarations cannot agree on a
    mistake: little-endian encapsulation, rmw_cyclonedds' header, uint8[16] without a length,
    padding to each member's alignment counted from after the encapsulation."""
    enc = b"\x00\x01\x00\x00"
    head = struct.pack("<Qq", RQ["client_guid"], RQ["sequence"])
    answer = acts.FollowJointTrajectorySendGoalResponse(
        **RQ, accepted=True, stamp=ours.Time(1733, 250_000_000)
    )
    assert answer.serialize() == enc + head + b"\x01\x00\x00\x00" + struct.pack(
        "<iI", 1733, 250_000_000
    )
    result = ours.from_dict(
        acts.FollowJointTrajectoryGetResultResponse,
        {**RQ, "status": 6, "result": {"error_code": -4, "error_string": "x"}},
    )
    assert (
        result.serialize()
        == enc + head + b"\x06\x00\x00\x00" + struct.pack("<iI", -4, 2) + b"x\x00"
    )
    cancel = ours.from_dict(acts.CancelGoalRequest, {**RQ, "goal_info": INFO})
    assert cancel.serialize() == enc + head + UUID + struct.pack("<iI", 1733, 250_000_000)
    # the only difference between the layouts: two int32 in the feedback (padding may absorb one)
    plain = ours.from_dict(acts.FollowJointTrajectoryFeedback, FEEDBACK).serialize()
    indexed = ours.from_dict(acts.FollowJointTrajectoryFeedbackIndexed, FEEDBACK).serialize()
    assert len(plain) < len(indexed) <= len(plain) + 8 + 2 * 4
    assert acts.action_layout("control_msgs/action/FollowJointTrajectory", "jazzy").feedback is (
        acts.action_layout(acts.FJT, "humble").feedback
    )
    with pytest.raises(ValueError, match="distro='iron'"):
        acts.action_layout(acts.FJT, "iron")
    with pytest.raises(ValueError, match="no DDS types for the action"):
        acts.action_layout("nav2_msgs/action/NavigateToPose")


# ---------------------------------------------------------------- against the action server
@pytest.fixture
def server(tmp_path):
    """Start the action server node; yields start(*args) -> (domain, status reader)."""
    with node_starter(NODE, "fjt ready", tmp_path) as start:
        yield start


def _client(domain: int, distro: str = "humble"):
    link = DdsTransport(domain, config=peer.LOOPBACK, distro=distro)
    errors: list[str] = []
    link.connect(1.0, Reconnect.from_config(None), lambda: None, errors.append)
    client = link.action_client(ACTION, "control_msgs/action/FollowJointTrajectory")
    assert client.wait_for_server(10), "the action server was not discovered"
    return link, client, errors


def _goal(q, joints=PANDA, dt=0.3) -> dict:
    spec = {"joints": joints, "time_from_start": dt}
    return command_message("FollowJointTrajectory", np.asarray(q, float), spec, 2, time.time())


def test_a_goal_is_accepted_fed_back_and_its_result_read_and_an_abort_is_named(server):
    domain, status = server("--limit", "2.0")
    link, client, errors = _client(domain)
    try:
        q = [0.1, -0.2, 0.3, -1.5, 0.0, 1.6, 0.7]
        handle = client.send_goal(_goal(q), timeout=5)
        result = client.result(handle, timeout=5)
        assert result == {"error_code": 0, "error_string": "", "status": "SUCCEEDED"}
        assert handle.feedback >= 3 and handle.last_feedback["joint_names"] == PANDA
        assert np.allclose(handle.last_feedback["desired"]["positions"], q)
        assert _wait(lambda: np.allclose(status()["q"], q))
        assert status()["requests"][0]["points"] == [q]
        far = client.send_goal(_goal([2.5, 0, 0, 0, 0, 0, 0]), timeout=5)
        result = client.result(far, timeout=5)
        assert result["status"] == "ABORTED" and result["error_code"] == -4
        assert any("aborted: error_code -4 (PATH_TOLERANCE_VIOLATED)" in e for e in errors)
        assert client.counts()["goals_aborted"] == 1 and client.counts()["goals_accepted"] == 2
    finally:
        link.close()


def test_a_rejected_goal_is_named_with_its_action(server):
    domain, status = server()
    link, client, errors = _client(domain)
    try:
        with pytest.raises(ActionRejected, match=f"{ACTION}: the action server rejected goal"):
            client.send_goal(_goal([0.0] * 3, joints=["a", "b", "c"]), timeout=5)
        assert _wait(lambda: status()["rejected"] == 1) and client.counts()["goals_rejected"] == 1
    finally:
        link.close()


def _robot(domain: int, **command):
    import yaml

    doc = yaml.safe_load((ROOT / "configs" / "robot" / "panda_dds_fjt.yaml").read_text())
    cfg = doc["driver"]
    cfg.pop("middleware")
    cfg.update(domain_id=domain, config=peer.LOOPBACK, connect_timeout=10)
    cfg["command"].update(command)
    return DdsRobot(**cfg)


def test_commands_preempt_and_the_estop_cancels_the_active_goal_and_sends_no_other(server):
    domain, status = server("--estop-after", "3", "--duration", "5")  # goals outlast the test
    robot = _robot(domain)
    robot.connect()
    try:
        for i in range(3):
            robot.command(np.full(7, 0.1 * (i + 1)))  # each waits for its acceptance
            time.sleep(0.05)
        assert _wait(lambda: robot.estopped)  # the node's /uvdiff/estop after the 3rd goal
        with pytest.raises(EStopped):
            robot.command(np.zeros(7))
        ids = [r["id"] for r in status()["requests"]]
        assert len(ids) == 3
        assert _wait(lambda: ids[2] in status()["cancels"])  # the active goal, cancelled
        ends = {r["id"]: (r["state"], r["code"]) for r in status()["results"]}
        assert ends[ids[0]] == ends[ids[1]] == (5, -1)  # preempted by the next, as JTC does
        assert ends[ids[2]] == (5, 0)  # cancelled on our request
        time.sleep(0.3)
        assert len(status()["requests"]) == 3 and robot.sent == 3
        assert robot.health()["goals_accepted"] == 3
    finally:
        robot.close()


def test_a_server_that_never_answers_is_a_named_timeout_not_a_hang(server):
    domain, status = server("--mute")
    robot = _robot(domain, accept_timeout=0.5)
    robot.connect()  # the server is matched: it exists, it just never answers
    try:
        t0 = time.monotonic()
        with pytest.raises(ActionTimeout, match=f"{ACTION}: no answer .*a server is matched"):
            robot.command(np.zeros(7))
        assert time.monotonic() - t0 < 2.0
        assert _wait(lambda: len(status()["requests"]) == 1)
    finally:
        robot.close()


def test_no_action_server_is_named_at_connect():
    robot = _robot(random_domain())
    robot.connect_timeout = 1.0
    t0 = time.monotonic()
    with pytest.raises(RobotError, match=f"no control_msgs/action/FollowJointTrajectory server "
                                         f"on {ACTION}"):  # fmt: skip
        robot.connect()
    assert time.monotonic() - t0 < 4.0


def test_a_feedback_layout_of_another_distro_is_named(server):
    domain, _ = server("--layout", "rolling", "--duration", "0.3")
    link, client, errors = _client(domain, "humble")
    link2, client2, _ = _client(domain, "rolling")
    try:
        handle = client.send_goal(_goal([0.2] * 7), timeout=5)
        assert client.result(handle, timeout=5)["status"] == "SUCCEEDED"  # goals still work
        assert handle.feedback == 0
        assert any("type mismatch" in e and "distro" in e for e in errors), errors
        handle = client2.send_goal(_goal([0.3] * 7), timeout=5)
        client2.result(handle, timeout=5)
        assert handle.feedback >= 3 and "index" in handle.last_feedback
    finally:
        link.close()
        link2.close()
