"""RosbridgeRobot against real peers: a rosmaster per test, the project's rosbridge server and a
ROS node running the simulated Panda, all started here. roslibpy -> bridge -> ROS -> arm."""

import json
import threading
import time

import numpy as np
import pytest
from rosrig import Rig, have_ros, wait_until

from real.config import RobotSpec
from real.deploy import deploy, make_robot
from real.loop import LoopConfig
from real.robot import EStopped, Robot, RobotError
from real.rosbridge import decode_image, rosauth_mac, stamp_of, type_name

pytestmark = [
    pytest.mark.skipif(not have_ros(), reason="ROS 1 (python3-rospy, rosmaster) missing"),
    # in-process deploys infer on one thread, as uvdiff-deploy does by default (threads: 1),
    # so the loop does not fight the bridge and arm processes for the two cores
    pytest.mark.usefixtures("one_torch_thread"),
]


@pytest.fixture
def rig(tmp_path):
    """A fresh rosmaster for tests that need their own arm (killed, e-stopping, cameras)."""
    r = Rig(tmp_path)
    r.master()
    yield r
    r.stop()


@pytest.fixture(scope="module")
def shared(tmp_path_factory):
    """One rosmaster and one plain arm node for the tests that leave them as they found them;
    each test starts its own bridge (they differ in flags). Arm counters only ever grow."""
    r = Rig(tmp_path_factory.mktemp("shared_rig"))
    r.master()
    r.shared_arm = r.arm()
    yield r
    r.stop()


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    from sim.testing import noise_checkpoint

    return noise_checkpoint(tmp_path_factory.mktemp("ros_policy"))


def robot_cfg(port, *overrides):
    from hydra import compose, initialize_config_module

    with initialize_config_module("configs", version_base="1.3"):
        cfg = compose(
            "deploy",
            overrides=["robot=rosbridge", f"robot.driver.port={port}", "checkpoint=x", *overrides],
        )
    return cfg


def make(port, *overrides, **driver):
    cfg = robot_cfg(port, *overrides)
    robot = make_robot(cfg.robot)
    for k, v in driver.items():
        setattr(robot, k, v)
    return robot, RobotSpec.from_config(cfg.robot), cfg


def arm_status(arm):
    return json.loads(arm.status.read_text())


def wait_for(pred, timeout=5.0):
    return wait_until(pred, timeout, step=0.02)


# ---------------------------------------------------------------------- pure helpers
def test_type_names_stamps_and_mac():
    assert type_name("sensor_msgs/JointState", 2) == "sensor_msgs/msg/JointState"
    assert type_name("sensor_msgs/msg/JointState", 1) == "sensor_msgs/JointState"
    assert type_name("PoseStamped", 1) == "geometry_msgs/PoseStamped"
    with pytest.raises(RobotError, match="unknown message type"):
        type_name("Nope", 1)
    assert stamp_of({"header": {"stamp": {"secs": 3, "nsecs": 500_000_000}}}) == 3.5
    assert stamp_of({"header": {"stamp": {"sec": 3, "nanosec": 250_000_000}}}) == 3.25
    assert stamp_of({"data": [1]}) is None
    mac = rosauth_mac("s" * 16, "c", "d", "r", 10, "admin", 20)
    assert len(mac) == 128 and mac != rosauth_mac("s" * 16, "c", "d", "r", 11, "admin", 20)


def test_decode_image_encodings_and_resize():
    import base64

    import cv2

    rgb = np.zeros((4, 6, 3), np.uint8)
    rgb[..., 0] = 200  # red
    msg = {"height": 4, "width": 6, "encoding": "bgr8", "step": 18}
    out = decode_image(
        {**msg, "data": base64.b64encode(rgb[..., ::-1].tobytes()).decode()}, "Image", None
    )
    np.testing.assert_array_equal(out, rgb)
    out = decode_image(
        {**msg, "encoding": "rgb8", "data": base64.b64encode(rgb.tobytes()).decode()},
        "Image",
        (2, 3),
    )
    assert out.shape == (2, 3, 3) and (out[..., 0] == 200).all()
    ok, buf = cv2.imencode(".png", rgb[..., ::-1])
    out = decode_image(
        {"format": "png", "data": base64.b64encode(buf.tobytes()).decode()}, "CompressedImage", None
    )
    np.testing.assert_array_equal(out, rgb)
    with pytest.raises(RobotError, match="encoding"):
        decode_image({**msg, "encoding": "16UC1", "data": ""}, "Image", None)


# ---------------------------------------------------------------------- against the peers
def test_observe_and_command_through_rosbridge(shared):
    port = shared.bridge()
    arm = shared.shared_arm
    n0 = arm_status(arm)["commands"]
    robot, spec, _ = make(port)
    assert isinstance(robot, Robot)
    robot.connect()
    try:
        obs = robot.observe()
        assert {k: v.shape for k, v in obs.state.items()} == {
            "eef_pos": (3,),
            "eef_quat": (4,),
            "gripper_qpos": (2,),
            "object": (12,),  # the sim lift arm behind the rig
        }
        assert 0 <= time.time() - obs.stamp < 0.3
        assert obs.info["success"] is False and not obs.estop
        z0, seq0 = float(obs.state["eef_pos"][2]), obs.seq
        for _ in range(15):  # up, 2.5 cm a step
            robot.command(np.array([0, 0, 0.5, 0, 0, 0, -1.0]))
            time.sleep(0.05)
        assert wait_for(lambda: arm_status(arm)["commands"] >= n0 + 15)
        obs = robot.observe()
        assert obs.seq > seq0 + 10
        assert float(obs.state["eef_pos"][2]) > z0 + 0.05  # OSC moves ~6 mm a step here
        assert robot.sent == 15 and robot.dropped_commands == 0
    finally:
        robot.close()
    time.sleep(0.2)
    assert arm_status(arm)["commands"] == n0 + 15  # none lost, none twice


def test_ros2_spellings(shared):
    """The bridge speaking ROS 2 (pkg/msg/Type, sec/nanosec): the client reads its stamps."""
    port = shared.bridge("--ros2")
    robot, _, _ = make(port, "robot.driver.ros_version=2")
    robot.connect()
    try:
        obs = robot.observe()
        assert 0 <= time.time() - obs.stamp < 0.3  # header stamps, sec/nanosec
        robot.command(np.zeros(7))
    finally:
        robot.close()


def test_camera_frames_raw_and_compressed(rig):
    port = rig.bridge()
    rig.arm("--camera", "both", "--rate", "10")
    cams = (
        "[{name: raw, topic: /camera/image, type: sensor_msgs/Image, size: [42, 42]},"
        " {name: jpeg, topic: /camera/image/compressed, type: sensor_msgs/CompressedImage,"
        " size: [84, 84]}]"
    )
    robot, _, _ = make(port, f"robot.driver.cameras={cams}")
    robot.connect()
    try:
        frames = robot.observe().frames
    finally:
        robot.close()
    raw, jpeg = frames["raw"], frames["jpeg"]
    assert raw.shape == (42, 42, 3) and raw.dtype == np.uint8 and raw.std() > 5
    assert jpeg.shape == (84, 84, 3) and jpeg.std() > 5
    # the same scene: the jpeg, shrunk, matches the raw frame up to compression
    import cv2

    small = cv2.resize(jpeg, (42, 42), interpolation=cv2.INTER_AREA).astype(float)
    assert np.abs(small - raw).mean() < 12


def test_delayed_reordered_and_garbled_messages(shared):
    """Messages 40 ms late, swapped in pairs, and a malformed frame after every 7th: the
    observation never goes back in time and the age shows the delay."""
    port = shared.bridge("--delay-ms", "40", "--reorder", "--garbage-every", "7")
    robot, _, _ = make(port)
    robot.connect()
    try:
        stamps, seqs, ages = [], [], []
        for _ in range(40):
            o = robot.observe()
            stamps.append(o.stamp)
            seqs.append(o.seq)
            ages.append(time.time() - o.stamp)
            time.sleep(0.025)
    finally:
        robot.close()
    assert all(b >= a for a, b in zip(stamps, stamps[1:], strict=False))
    # reordered pairs: only the newer of each pair advances the observation
    assert all(b >= a for a, b in zip(seqs, seqs[1:], strict=False)) and seqs[-1] > seqs[0] + 2
    assert np.median(ages) >= 0.04  # the delay shows in the age the shield checks


def test_bad_state_messages_are_rejected_on_arrival(shared):
    """Another publisher sends a NaN, a joint-less and a wrong-size state: each is dropped (and
    counted) where it enters; the observation keeps coming from the arm, always finite."""
    import roslibpy

    port = shared.bridge()
    robot, _, _ = make(port)
    robot.connect()
    rogue = roslibpy.Ros("127.0.0.1", port, transport="asyncio")
    rogue.run(5)
    try:
        js = roslibpy.Topic(rogue, "/joint_states", "sensor_msgs/JointState")
        obj = roslibpy.Topic(rogue, "/uvdiff/object_state", "std_msgs/Float64MultiArray")
        js.advertise()
        obj.advertise()
        time.sleep(0.5)
        names = ["panda_finger_joint1", "panda_finger_joint2"]
        for _ in range(3):  # ROS 1 may drop the first messages of a new publisher
            js.publish(roslibpy.Message({"name": names, "position": [float("nan"), 0.01]}))
            js.publish(roslibpy.Message({"name": ["other"], "position": [0.0]}))
            obj.publish(roslibpy.Message({"layout": {"dim": [], "data_offset": 0}, "data": [1.0]}))
            time.sleep(0.1)
        why = ("NaN/Inf in gripper_qpos", "no joint", "object has 1 values")
        assert wait_for(lambda: all(w in " ".join(robot.errors) for w in why)), robot.errors
        assert robot.rejected >= 3
        for _ in range(10):
            o = robot.observe()
            assert all(np.isfinite(v).all() for v in o.state.values())
            assert o.state["object"].shape == (12,)
            time.sleep(0.02)
    finally:
        robot.close()
        rogue.close()


def test_estop_in_the_middle_of_a_chunk_stops_all_commands(rig, checkpoint, tmp_path):
    port = rig.bridge()
    arm = rig.arm("--estop-after", "10")
    robot, spec, _ = make(port)
    loop = LoopConfig(rate_hz=20, max_steps=100)
    report = deploy(checkpoint, robot, spec, loop, policy_settings={"n_action_steps": 4},
                    out=tmp_path)  # fmt: skip
    assert report.status == "estop" and report.exit_code == 2
    assert report.shield["estop"]
    assert wait_for(lambda: arm_status(arm)["estop_at"] is not None)  # written each step
    time.sleep(0.3)
    s = arm_status(arm)
    # the 10th command raised the e-stop (mid-chunk: 4 actions a chunk). Nothing is published
    # once the robot has seen it; what follows at the arm was on the wire before that, and the
    # e-stop crosses ROS and the bridge within a few control periods even on a loaded machine
    assert robot.estop_at is not None and robot.last_command_at < robot.estop_at
    delivery = robot.estop_at - s["estop_at"]
    assert 0 <= delivery < 0.5, delivery
    assert all(dt < delivery + 0.05 for dt in s["after_estop_s"]), (s["after_estop_s"], delivery)
    assert len(s["after_estop_s"]) <= 1 + delivery * loop.rate_hz
    assert report.steps < 10 + 8
    assert s["commands"] == report.sent  # every command sent arrived, and no more


def test_robot_refuses_commands_after_estop_and_nonfinite(shared):
    import roslibpy

    port = shared.bridge()
    arm = shared.shared_arm
    # an e-stop topic of this test's own, so the shared arm's later clients are not stopped
    robot, _, _ = make(port, "robot.driver.estop.topic=/test/estop_refuse")
    robot.connect()
    n0 = arm_status(arm)["commands"]
    operator = roslibpy.Ros("127.0.0.1", port, transport="asyncio")
    operator.run(5)
    try:
        with pytest.raises(RobotError, match="non-finite"):
            robot.command(np.array([np.nan, 0, 0, 0, 0, 0, 0]))
        robot.command(np.zeros(7))
        stop = roslibpy.Topic(operator, "/test/estop_refuse", "std_msgs/Bool")
        stop.advertise()
        time.sleep(0.5)  # the subscriber connects to the new publisher
        stop.publish(roslibpy.Message({"data": True}))
        assert wait_for(lambda: robot.estopped)
        assert robot.observe().estop
        with pytest.raises(EStopped):
            robot.command(np.zeros(7))
    finally:
        robot.close()
        operator.close()
    time.sleep(0.2)
    assert arm_status(arm)["commands"] == n0 + 1


def test_nan_policy_never_reaches_the_arm(shared, checkpoint, tmp_path):
    import shutil

    import torch
    from safetensors.torch import load_file, save_file

    # weights of +-3e38 overflow to inf - inf: the real policy emits NaN actions
    bad = tmp_path / "nan_ckpt"
    shutil.copytree(checkpoint, bad)
    w = load_file(bad / "ema.safetensors")
    sign = lambda v: torch.where(torch.arange(v.numel()).reshape(v.shape) % 2 == 0, 1.0, -1.0)  # noqa: E731
    save_file(
        {k: torch.full_like(v, 3e38) * sign(v) for k, v in w.items()}, bad / "ema.safetensors"
    )
    port = shared.bridge()
    arm = shared.shared_arm
    n0 = arm_status(arm)["commands"]
    robot, spec, _ = make(port)
    report = deploy(bad, robot, spec, LoopConfig(rate_hz=20, max_steps=20), out=tmp_path)
    assert report.status == "max_steps"
    assert report.shield["interventions"]["nonfinite"] >= 15
    actions = np.load(tmp_path / "actions.npy")
    actions = actions[~np.isnan(actions).all(1)]  # rows of ticks skipped after a stall
    assert np.isfinite(actions).all() and (actions[:, :6] == 0).all()  # holds: zero deltas
    assert report.sent + report.skipped == 20
    assert wait_for(lambda: arm_status(arm)["commands"] == n0 + report.sent)


def test_malformed_json_gets_a_status_and_the_link_survives(shared):
    port = shared.bridge()
    arm = shared.shared_arm
    robot, _, _ = make(port)
    robot.connect()
    n0 = arm_status(arm)["commands"]
    try:
        proto = robot.ros.factory._proto  # raw frames: roslibpy only sends valid JSON
        proto.send_message(b"{this is not json")
        proto.send_message(b'["no", "op"]')
        proto.send_message(b'{"op": "publish", "topic": "/uvdiff/command", "msg": {"data": "x"}}')
        assert wait_for(lambda: len(robot.errors) >= 3), robot.errors
        assert "malformed JSON" in robot.errors[0]
        seq = robot.observe().seq
        robot.command(np.zeros(7))
        assert wait_for(lambda: robot.observe().seq > seq + 3)
        assert wait_for(lambda: arm_status(arm)["commands"] == n0 + 1), (n0, arm_status(arm))
    finally:
        robot.close()


def test_authentication(shared):
    secret = "0123456789abcdef"
    port = shared.bridge("--secret", secret)
    robot, _, _ = make(port, f"robot.driver.auth={{secret: {secret}}}")
    robot.connect()
    robot.command(np.zeros(7))
    robot.close()
    robot, _, _ = make(
        port, "robot.driver.auth={secret: wrongwrongwrong0}", "robot.driver.connect_timeout=1.5"
    )
    with pytest.raises(RobotError, match="nothing received"):
        robot.connect()
    robot, _, _ = make(port, "robot.driver.connect_timeout=1.5")  # no auth at all
    with pytest.raises(RobotError, match="not authenticated"):
        robot.connect()


def test_reconnects_after_the_bridge_restarts(shared):
    rig = shared
    port = rig.bridge()
    robot, _, _ = make(port, "robot.driver.reconnect={initial: 0.2, max: 0.5}")
    robot.connect()
    try:
        bridge = rig.procs[-1]
        rig.kill(bridge)
        assert wait_for(lambda: not robot.ros.is_connected, 3)
        robot.command(np.zeros(7))  # dropped, never queued for later
        assert robot.dropped_commands == 1
        seq = robot.observe().seq
        import sys

        from rosrig import HERE, wait_port

        p = rig._spawn("bridge2", [sys.executable, str(HERE / "bridge.py"), "--port", str(port)])
        wait_port(port, proc=p)
        assert wait_for(lambda: robot.observe().seq > seq + 5, 10), robot.errors
        assert robot.disconnects >= 1
    finally:
        robot.close()


def test_killed_robot_node_loop_holds_reports_and_exits_nonzero(rig, checkpoint, tmp_path):
    port = rig.bridge()
    arm = rig.arm()
    robot, spec, _ = make(port)
    threading.Timer(2.0, rig.kill, args=(arm,)).start()
    loop = LoopConfig(rate_hz=20, max_steps=400, lost_after=0.5)
    report = deploy(checkpoint, robot, spec, loop, out=tmp_path)
    assert report.status == "robot_lost" and report.exit_code == 3
    stale = report.shield["interventions"]["stale_observation"]
    assert stale >= 5  # held from 3 periods after the last state until giving up
    assert 10 < report.steps < 2.0 * 20 + 0.5 * 20 + 15
    saved = json.loads((tmp_path / "deploy_report.json").read_text())
    assert saved["status"] == "robot_lost" and saved["exit_code"] == 3


# ---------------------------------------------------------------------- end to end (slow)
@pytest.mark.slow
def test_trained_policy_lifts_the_cube_through_rosbridge(tmp_path):
    """Scripted lift demos -> a tiny state policy trained here -> uvdiff-deploy robot=rosbridge
    -> roslibpy -> the test bridge -> ROS 1 -> the simulated arm node, on unseen seeds."""
    from real.deploy_cli import run
    from sim.collect import collect
    from sim.testing import mlp_policy, train_checkpoint

    stats = collect("lift", 20, tmp_path / "lift", 0, workers=1, progress=False)
    assert stats.succeeded >= 18
    policy = mlp_policy(128, blocks=2, dropout=0.0, d_state=64, horizon=8, n_action_steps=4)
    ckpt = train_checkpoint(  # on one torch thread (train_checkpoint's default)
        tmp_path / "lift",
        tmp_path / "run",
        "none",
        policy=policy,
        steps=1500,
        batch_size=64,
        lr=1e-3,
        warmup_steps=50,
        ema_decay=0.99,
    )
    results = []
    for seed in (100, 101, 102):  # not among the demos' seeds 0-19
        rig = Rig(tmp_path / f"rig{seed}")
        try:
            rig.master()
            port = rig.bridge()
            arm = rig.arm("--seed", str(seed))
            out = tmp_path / f"deploy{seed}"
            cfg = robot_cfg(port, f"checkpoint={ckpt}", "max_steps=300", f"out={out}")
            status = run(cfg)
            report = json.loads((out / "deploy_report.json").read_text())
            assert wait_for(lambda a=arm: arm_status(a)["success"], 2) == report["success"]
            results.append((status, report["success"], report["steps"], report["achieved_hz"]))
        finally:
            rig.stop()
    print("lift over rosbridge (exit, success, steps, Hz):", results)
    assert all(r[0] == 0 for r in results)
    assert sum(r[1] for r in results) >= 2, results


@pytest.mark.parametrize("ros_version", [1, 2])
def test_trajectory_and_pose_commands_as_ros_sees_them(shared, ros_version):
    """JointTrajectory and PoseStamped commands, ROS 1 or ROS 2 spelling on the wire, read back
    by rospy subscribers on the far side of the bridge."""
    port = shared.bridge("--ros2") if ros_version == 2 else shared.bridge()
    names = [f"panda_joint{i}" for i in range(1, 8)] + ["panda_finger_joint1"]
    got = {}
    for kind, extra in [
        (
            "trajectory_msgs/JointTrajectory",
            [
                f"+robot.driver.command.joints=[{','.join(names)}]",
                "+robot.driver.command.time_from_start=0.25",
            ],
        ),
        ("geometry_msgs/PoseStamped", ["+robot.driver.command.frame_id=panda_link0"]),
    ]:
        topic = f"/test/cmd_{kind.split('/')[-1].lower()}_{ros_version}"
        out = shared.listen(topic, kind, name=f"listen_{kind.split('/')[-1]}_{ros_version}")
        robot, _, _ = make(
            port,
            f"robot.driver.command.topic={topic}",
            f"robot.driver.command.type={kind}",
            f"robot.driver.ros_version={ros_version}",
            *extra,
        )
        robot.connect()
        try:
            t0 = time.time()
            a = np.arange(8, dtype=float) / 10
            if kind.endswith("PoseStamped"):
                a = np.array([0.1, 0.2, 0.9, 0.0, 0.0, 0.0, 2.0])  # quaternion not unit: normed
            robot.command(a)
            assert wait_for(lambda o=out: o.exists() and o.read_text().strip(), 5)
        finally:
            robot.close()
        got[kind] = (t0, json.loads(out.read_text().splitlines()[0])["msg"])
    t0, traj = got["trajectory_msgs/JointTrajectory"]
    assert traj["joint_names"] == names
    (point,) = traj["points"]
    np.testing.assert_allclose(point["positions"], np.arange(8) / 10)
    assert point["time_from_start"] == {"secs": 0, "nsecs": 250_000_000}
    stamp = traj["header"]["stamp"]
    assert abs(stamp["secs"] + stamp["nsecs"] * 1e-9 - t0) < 1.0  # our stamp, either spelling
    t0, pose = got["geometry_msgs/PoseStamped"]
    assert pose["header"]["frame_id"] == "panda_link0"
    p, q = pose["pose"]["position"], pose["pose"]["orientation"]
    assert (p["x"], p["y"], p["z"]) == pytest.approx((0.1, 0.2, 0.9))
    assert (q["x"], q["y"], q["z"], q["w"]) == pytest.approx((0, 0, 0, 1))


def test_estop_service_called_from_ros(shared):
    """A plain rospy client calls the std_srvs/Trigger e-stop service the robot advertises."""
    import subprocess
    import sys

    from rosrig import HERE

    port = shared.bridge()
    robot, _, _ = make(port, "robot.driver.estop.service=/test/estop_service")
    robot.connect()
    try:
        robot.command(np.zeros(7))
        r = subprocess.run(
            [sys.executable, str(HERE / "call_trigger.py"), "/test/estop_service"],
            env=shared.env,
            capture_output=True,
            text=True,
            timeout=30,
        )
        assert r.returncode == 0, r.stderr[-2000:]
        reply = json.loads(r.stdout.strip().splitlines()[-1])
        assert reply["success"] and "e-stop latched" in reply["message"]
        assert robot.estopped and robot.observe().estop
        with pytest.raises(EStopped):
            robot.command(np.zeros(7))
    finally:
        robot.close()


def test_an_action_command_over_rosbridge_is_refused_by_name(shared):
    """FollowJointTrajectory goals need the native DDS driver: rosbridge says so at connect
    instead of publishing goals nobody can read."""
    port = shared.bridge()
    robot, _, _ = make(port, "robot.driver.command.type=control_msgs/action/FollowJointTrajectory",
                       "+robot.driver.command.joints=[panda_joint1]")  # fmt: skip
    with pytest.raises(RobotError, match="is a ROS 2 action; use middleware: dds"):
        robot.connect()
    assert robot.sent == 0
