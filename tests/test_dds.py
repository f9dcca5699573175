"""ROS 2 over DDS without ROS: our wire types against two serialisers that are not ours, and
a robot driven through a DDS arm node (a simulated Panda) in its own process on loopback."""

import json
import os
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from rosbags.typesys import Stores, get_typestore

from real import ros2_msgs as ours
from real.dds import DdsRobot, DdsTransport, dds_topic, qos_profile, service_types
from real.robot import EStopped, RobotError
from real.ros_topics import Reconnect

sys.path.insert(0, str(Path(__file__).parent / "rosrig"))
import dds_types as peer  # noqa: E402
from dds_rig import node_starter, random_domain  # noqa: E402
from rosrig import wait_until as _wait  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
NODE = ROOT / "tests" / "rosrig" / "dds_arm_node.py"
STORE = get_typestore(Stores.ROS2_HUMBLE)

HEADER = {"stamp": {"sec": 1733, "nanosec": 250_000_000}, "frame_id": "world"}
SAMPLES = {  # type -> (our dict, the peer's class)
    "sensor_msgs/msg/JointState": (
        {"header": HEADER, "name": ["j1", "j2"], "position": [0.5, -1.25], "velocity": [],
         "effort": [2.0, 3.0]},
        peer.Joints,
    ),
    "sensor_msgs/msg/Image": (
        {"header": HEADER, "height": 2, "width": 3, "encoding": "rgb8", "is_bigendian": 0,
         "step": 9, "data": bytes(range(18))},
        peer.RawImage,
    ),
    "geometry_msgs/msg/PoseStamped": (
        {"header": HEADER, "pose": {"position": {"x": 0.1, "y": -0.2, "z": 0.9},
                                    "orientation": {"x": 0.0, "y": 0.7071, "z": 0.0, "w": 0.7071}}},
        peer.StampedPose,
    ),
    "std_msgs/msg/Float64MultiArray": (
        {"layout": {"dim": [{"label": "a", "size": 3, "stride": 3}], "data_offset": 0},
         "data": [0.1, -0.5, 1.0]},
        peer.Doubles,
    ),
    "std_msgs/msg/Bool": ({"data": True}, peer.Flag),
    "trajectory_msgs/msg/JointTrajectory": (
        {"header": HEADER, "joint_names": ["a", "b"],
         "points": [{"positions": [0.1, 0.2], "velocities": [], "accelerations": [], "effort": [],
                     "time_from_start": {"sec": 0, "nanosec": 100_000_000}}]},
        peer.Traj,
    ),
}  # fmt: skip


NESTED = {
    "header": "std_msgs/msg/Header",
    "stamp": "builtin_interfaces/msg/Time",
    "time_from_start": "builtin_interfaces/msg/Duration",
    "pose": "geometry_msgs/msg/Pose",
    "position": "geometry_msgs/msg/Point",
    "orientation": "geometry_msgs/msg/Quaternion",
    "layout": "std_msgs/msg/MultiArrayLayout",
}


def rosbags_cdr(ros_type: str, d) -> bytes:
    def build(t, value):
        cls = STORE.types[t]
        kw = {}
        for name in value:
            v = value[name]
            if isinstance(v, dict):
                kw[name] = build(NESTED[name], v)
            elif isinstance(v, bytes):
                kw[name] = np.frombuffer(v, np.uint8)
            elif name in ("points", "dim"):
                elem = {"points": "trajectory_msgs/msg/JointTrajectoryPoint",
                        "dim": "std_msgs/msg/MultiArrayDimension"}[name]  # fmt: skip
                kw[name] = [build(elem, x) for x in v]
            elif isinstance(v, list) and name not in ("name", "joint_names"):
                kw[name] = np.asarray(v, dtype=np.float64)
            else:
                kw[name] = v
        return cls(**kw)

    return bytes(STORE.serialize_cdr(build(ros_type, d), ros_type))


@pytest.mark.parametrize("ros_type", sorted(SAMPLES))
def test_our_cdr_is_ros2s_and_reads_both_ways_with_an_independent_peer(ros_type):
    d, peer_cls = SAMPLES[ros_type]
    cls = ours.message_class(ros_type)
    mine = ours.from_dict(cls, d).serialize()
    assert mine == rosbags_cdr(ros_type, d)  # rosbags' own ROS 2 definitions and serialiser
    theirs = peer_cls.deserialize(mine)  # ours -> the peer's declarations
    back = cls.deserialize(theirs.serialize())  # the peer's bytes -> ours
    assert ours.to_dict(back) == d
    assert ours.dds_type_name(cls) == peer_cls.__idl_typename__.replace(".", "::")


def test_type_and_topic_names_follow_ros2():
    assert ours.dds_type_name(ours.JointState) == "sensor_msgs::msg::dds_::JointState_"
    assert ours.message_class("sensor_msgs/JointState") is ours.JointState  # ROS 1 spelling too
    assert dds_topic("/joint_states") == "rt/joint_states"
    assert dds_topic("/uvdiff/estop_trigger", "rq") + "Request" == "rq/uvdiff/estop_triggerRequest"
    request, reply = service_types("std_srvs/Trigger")
    assert (
        request(client_guid=7, sequence=3).serialize()
        == peer.TriggerCall(client_guid=7, sequence=3).serialize()
    )
    with pytest.raises(ValueError, match="no DDS type"):
        ours.message_class("sensor_msgs/msg/PointCloud2")
    with pytest.raises(ValueError, match="has no field"):
        ours.from_dict(ours.Bool, {"dat": True})
    with pytest.raises(ValueError, match="QoS profile"):
        qos_profile("fast")


# ---------------------------------------------------------------- a robot behind the DDS node
def _config(domain: int, **changes):
    import yaml

    cfg = yaml.safe_load((ROOT / "configs" / "robot" / "panda_dds.yaml").read_text())["driver"]
    cfg.pop("middleware")
    cfg.update({"domain_id": domain, "config": peer.LOOPBACK, "connect_timeout": 20, **changes})
    return cfg


def _robot_config(domain: int, *, object_state: bool = False, cameras=None):
    """configs/robot/panda_dds.yaml pointed at the test node (shield on), as an OmegaConf."""
    import yaml
    from omegaconf import OmegaConf

    doc = yaml.safe_load((ROOT / "configs" / "robot" / "panda_dds.yaml").read_text())
    doc["driver"].update(domain_id=domain, config=peer.LOOPBACK, connect_timeout=20)
    if object_state:  # the simulator's object poses, for the state policies of these tests
        doc["driver"]["state"].append({"key": "object", "topic": "/uvdiff/object_state",
                                       "type": "std_msgs/msg/Float64MultiArray"})  # fmt: skip
    if cameras:
        doc["driver"]["cameras"] = cameras
    doc["shield"]["enabled"] = True
    return OmegaConf.create(doc)


@pytest.fixture
def arm(tmp_path):
    """Start the DDS arm node: start(*args) -> (domain, status reader)."""
    with node_starter(NODE, "arm ready", tmp_path) as start:
        yield start


def test_a_ros2_arm_over_dds_observes_obeys_and_latches_the_estop(arm):
    domain, status = arm("--estop-after", "15", "--camera")
    cameras = [{"name": "agentview", "topic": "/camera/image", "type": "sensor_msgs/msg/Image",
                "size": [64, 64]}]  # fmt: skip
    robot = DdsRobot(**_config(domain, cameras=cameras))
    robot.connect()
    try:
        obs = robot.observe()
        assert obs.state["eef_pos"].shape == (3,) and obs.state["gripper_qpos"].shape == (2,)
        assert obs.frames["agentview"].shape == (64, 64, 3) and obs.frames["agentview"].std() > 0
        z0 = float(obs.state["eef_pos"][2])
        up = np.array([0, 0, 1.0, 0, 0, 0, -1])
        for _ in range(14):  # the node moves the arm up by each command it applies
            robot.command(up)
            time.sleep(0.06)
        assert _wait(lambda: status()["applied"] >= 10)
        assert _wait(lambda: robot.observe().state["eef_pos"][2] > z0 + 0.02)
        robot.command(up)  # the 15th: the node answers on /uvdiff/estop
        assert _wait(lambda: robot.estopped)
        with pytest.raises(EStopped):
            robot.command(up)
        assert robot.observe().estop and robot.sent == 15
    finally:
        robot.close()


def test_the_estop_service_answers_a_ros2_call_and_latches(arm):
    domain, status = arm("--call-estop-after", "3")
    robot = DdsRobot(**_config(domain))
    robot.connect()
    try:
        for _ in range(3):
            robot.command(np.zeros(7))
            time.sleep(0.05)
        assert _wait(lambda: robot.estopped)
        assert _wait(lambda: status()["estop_reply"] is not None)
        guid, seq, ok, message = status()["estop_reply"]
        assert (guid, seq, ok) == (0x1234, 1, True) and "e-stop" in message
    finally:
        robot.close()


def test_qos_mismatch_is_named_and_connect_does_not_hang(arm):
    domain, _ = arm("--camera")
    cameras = [{"name": "agentview", "topic": "/camera/image", "type": "sensor_msgs/msg/Image",
                "size": [64, 64]}]  # fmt: skip
    robot = DdsRobot(**_config(domain, cameras=cameras, qos={}, connect_timeout=3))
    t0 = time.monotonic()
    with pytest.raises(RobotError, match="QoS mismatch on /camera/image"):
        robot.connect()  # a reliable reader cannot match the node's best-effort camera
    assert time.monotonic() - t0 < 8


def test_a_publisher_that_vanishes_and_returns_is_counted_and_read_again(arm):
    domain, _ = arm("--vanish-at", "30", "--return-after", "1.0")
    robot = DdsRobot(**_config(domain))
    robot.connect()
    try:
        assert _wait(lambda: robot.disconnects >= 1, timeout=15)
        seq = robot.observe().seq
        assert _wait(lambda: robot.observe().seq > seq + 5, timeout=15)  # fresh states again
        assert any("left" in e for e in robot.errors)
    finally:
        robot.close()


def test_commands_nobody_hears_are_counted():
    link = DdsTransport(random_domain(), config=peer.LOOPBACK)
    errors = []
    link.connect(1.0, Reconnect.from_config(None), lambda: None, errors.append)
    try:
        link.advertise("/nobody/listens", "std_msgs/msg/Float64MultiArray")
        link.publish("/nobody/listens", {"data": [1.0]})
        assert link.unheard == 1 and "no subscriber on /nobody/listens" in errors[-1]
    finally:
        link.close()


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    from sim.testing import noise_checkpoint

    return noise_checkpoint(tmp_path_factory.mktemp("dds_policy"))


def test_deploy_over_dds_stops_every_command_at_an_estop_mid_chunk(arm, checkpoint, tmp_path):
    from real.config import RobotSpec
    from real.deploy import deploy, make_robot
    from real.loop import LoopConfig

    domain, status = arm("--estop-after", "10")
    cfg = _robot_config(domain, object_state=True)
    robot = make_robot(cfg)  # middleware: dds picks the driver
    assert isinstance(robot, DdsRobot)
    loop = LoopConfig(rate_hz=20, max_steps=100)
    report = deploy(checkpoint, robot, RobotSpec.from_config(cfg), loop,
                    policy_settings={"n_action_steps": 4, "rtc": True}, out=tmp_path)  # fmt: skip
    assert report.status == "estop" and report.exit_code == 2 and report.shield["estop"]
    assert _wait(lambda: status()["estop_at"] is not None)
    time.sleep(0.3)
    assert robot.last_command_at < robot.estop_at  # nothing published once it latched
    assert status()["commands"] == report.sent < 10 + 8


def test_a_killed_arm_node_is_held_then_reported_lost(arm, checkpoint, tmp_path):
    import threading

    from real.config import RobotSpec
    from real.deploy import deploy, make_robot
    from real.loop import LoopConfig

    domain, status = arm()
    cfg = _robot_config(domain, object_state=True)
    pid = status()["pid"]
    threading.Timer(2.0, os.kill, args=(pid, 9)).start()
    loop = LoopConfig(rate_hz=20, max_steps=400, lost_after=0.5)
    report = deploy(checkpoint, make_robot(cfg), RobotSpec.from_config(cfg), loop, out=tmp_path)
    assert report.status == "robot_lost" and report.exit_code == 3
    assert report.shield["interventions"]["stale_observation"] >= 5  # held, then gave up
    assert 10 < report.steps < 2.0 * 20 + 0.5 * 20 + 15


def test_an_unknown_middleware_is_named():
    from real.deploy import make_robot

    with pytest.raises(ValueError, match="middleware='zenoh2'"):
        make_robot({"driver": {"middleware": "zenoh2"}})


def test_a_publisher_of_another_type_on_our_topic_is_named():
    from cyclonedds.domain import DomainParticipant
    from cyclonedds.pub import DataWriter
    from cyclonedds.topic import Topic

    domain = random_domain()
    robot = DdsRobot(**_config(domain, connect_timeout=3))
    wrong = DomainParticipant(domain)  # a node publishing Float64MultiArray on /uvdiff/eef_pose
    writer = DataWriter(wrong, Topic(wrong, "rt/uvdiff/eef_pose", peer.Doubles))
    writer.write(peer.Doubles(data=[1.0]))
    with pytest.raises(RobotError, match="sends std_msgs::msg::dds_::Float64MultiArray_"):
        robot.connect()


def test_a_camera_goal_policy_relays_nearest_over_dds(arm, tmp_path, one_torch_thread):
    """A goal=uvd policy on pixels embeddings of agentview, its task a demo folder's episode cut
    by UVD on the same backbone, deployed over DDS with relay=nearest: the arm node's camera
    frames are embedded each tick and the relay hands out subgoal frames."""

    from decomposer.task import RelaySettings
    from real.config import RobotSpec
    from real.deploy import deploy, make_robot
    from real.loop import LoopConfig
    from sim.testing import expert_folder, mlp_policy, train_checkpoint

    folder = expert_folder(tmp_path / "lift", "lift", range(2), cameras=("agentview",),
                           image_size=(32, 32))  # fmt: skip
    from decomposer.pipeline import decompose_folder

    decompose_folder(folder.root, "pixels", camera="agentview", min_interval_s=0.5, plots=False,
                     progress=False)  # fmt: skip
    ckpt = train_checkpoint(
        folder.root, tmp_path / "run", "uvd",
        policy=mlp_policy(32, d_state=8, d_embedding=8, horizon=4, n_action_steps=2),
        state_keys=["eef_pos"], embeddings=["agentview"], backbone="pixels", steps=4,
        batch_size=16,
    )  # fmt: skip
    domain, _ = arm("--camera")
    camera = {"name": "agentview", "topic": "/camera/image", "type": "sensor_msgs/msg/Image",
              "size": [32, 32]}  # fmt: skip
    cfg = _robot_config(domain, cameras=[camera])
    relay = RelaySettings(rule="nearest", min_interval_s=0.5)
    loop = LoopConfig(rate_hz=20, max_steps=40, stop_on_success=False)
    report = deploy(ckpt, make_robot(cfg), RobotSpec.from_config(cfg), loop, demo=folder.root,
                    demo_episode=0, relay=relay, out=tmp_path / "deploy")  # fmt: skip
    assert report.status in ("max_steps", "goal_reached"), report.error
    assert report.sent > 0 and report.subgoal is not None and report.error == ""


def test_bytes_that_do_not_decode_are_dropped_and_counted_and_states_keep_coming(arm):
    """Every 3rd step the node also writes a JointState whose CDR passes DDS's checks but whose
    name is not UTF-8: each is counted as malformed, none costs a good state."""
    domain, _ = arm("--garble-every", "3")
    robot = DdsRobot(**_config(domain))
    robot.connect()
    try:
        seq = robot.observe().seq
        assert _wait(lambda: robot.link.malformed >= 3, timeout=15), robot.errors
        assert robot.observe().seq >= seq + 6  # the good ones in between all arrived
        assert any("malformed sample on /joint_states" in e for e in robot.errors)
        assert robot.health()["malformed"] == robot.link.malformed
        assert all(np.isfinite(v).all() for v in robot.observe().state.values())
    finally:
        robot.close()


def test_a_type_of_the_same_name_with_other_fields_is_named(arm):
    from dataclasses import dataclass, field

    from cyclonedds.domain import DomainParticipant
    from cyclonedds.idl import IdlStruct
    from cyclonedds.pub import DataWriter
    from cyclonedds.topic import Topic

    @dataclass
    class Other(IdlStruct, typename="sensor_msgs::msg::dds_::JointState_"):
        header: peer.Hdr = field(default_factory=peer.Hdr)  # and nothing else

    domain, _ = arm()
    robot = DdsRobot(**_config(domain))
    robot.connect()
    other = DomainParticipant(domain)
    try:
        writer = DataWriter(other, Topic(other, "rt/joint_states", Other))
        writer.write(Other())
        assert _wait(lambda: any("type mismatch on /joint_states" in e for e in robot.errors))
        seq = robot.observe().seq
        assert _wait(lambda: robot.observe().seq > seq + 3)  # the arm's own states still read
    finally:
        robot.close()


def test_a_clock_jump_back_is_named_and_the_loop_holds_on_the_old_stamps(arm, checkpoint, tmp_path):
    """The arm's header stamps go 30 s back at its 60th publication: the topic restarts from
    the new clock (named, counted) and the shield holds every step after, as stale, until the
    loop ends; no planned action reaches the arm meanwhile."""
    from real.config import RobotSpec
    from real.deploy import deploy, make_robot
    from real.loop import LoopConfig

    domain, status = arm("--clock-jump-at", "60", "--clock-jump-by", "30")
    cfg = _robot_config(domain, object_state=True)
    loop = LoopConfig(rate_hz=20, max_steps=100, lost_after=30.0)
    report = deploy(checkpoint, make_robot(cfg), RobotSpec.from_config(cfg), loop,
                    policy_settings={"n_action_steps": 4}, out=tmp_path)  # fmt: skip
    assert report.link["clock_jumps"] >= 1, report.link
    assert any(
        "clock jump on /joint_states: header stamps went back" in e for e in report.link["errors"]
    ), report.link
    assert report.shield["interventions"]["stale_observation"] >= 30  # held after the jump
    saved = json.loads((tmp_path / "deploy_report.json").read_text())
    assert saved["link"]["clock_jumps"] == report.link["clock_jumps"]


def test_states_stamped_ahead_of_our_clock_are_rejected_and_named(arm):
    domain, _ = arm("--clock-jump-at", "30", "--clock-jump-by", "-30")  # 30 s into the future
    robot = DdsRobot(**_config(domain))
    robot.connect()
    try:
        assert _wait(lambda: robot.rejected >= 3, timeout=15)
        assert any("ahead of this machine's clock" in e for e in robot.errors), robot.errors
        seq = robot.observe().seq
        time.sleep(0.5)
        assert robot.observe().seq == seq  # nothing from the future became an observation
    finally:
        robot.close()
