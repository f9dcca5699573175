"""uvdiff-record against real peers: an operator's commands (roslibpy) drive the simulated arm
node; the recorder listens to both through the test rosbridge server and writes demo folders."""

import threading
import time

import numpy as np
import pytest
from rosrig import Rig, have_ros

from demos import DemoFolder, validate

pytestmark = pytest.mark.skipif(not have_ros(), reason="ROS 1 (python3-rospy, rosmaster) missing")


class Operator(threading.Thread):
    """Publishes a teleop command stream at 20 Hz; command k has k / 1000 in dim 3."""

    def __init__(self, port):
        super().__init__(daemon=True)
        import roslibpy

        self.ros = roslibpy.Ros("127.0.0.1", port, transport="asyncio")
        self.ros.run(5)
        self.topic = roslibpy.Topic(self.ros, "/uvdiff/command", "std_msgs/Float64MultiArray")
        self.topic.advertise()
        self.stop = threading.Event()
        self.k = 0

    def run(self):
        import roslibpy

        time.sleep(0.5)
        while not self.stop.is_set():
            a = [0.0, 0.0, 0.05, self.k / 1000, 0.0, 0.0, -1.0]
            self.topic.publish(
                roslibpy.Message({"layout": {"dim": [], "data_offset": 0}, "data": a})
            )
            self.k += 1
            time.sleep(0.05)

    def close(self):
        self.stop.set()
        self.join(2)
        self.ros.close()


@pytest.fixture
def rig(tmp_path, request):
    r = Rig(tmp_path / "rig")
    r.master()
    r.port = r.bridge()
    r.arm_proc = r.arm(*getattr(request, "param", ()))
    yield r
    r.stop()


CAMERA = (
    "robot.driver.cameras=[{name: agentview, topic: /camera/image/compressed, "
    "type: sensor_msgs/CompressedImage, size: [48, 64]}]"
)


def compose(*overrides):
    from hydra import compose as hydra_compose
    from hydra import initialize_config_module

    with initialize_config_module("configs", version_base="1.3"):
        return hydra_compose("record", overrides=list(overrides))


@pytest.mark.parametrize("rig", [("--camera", "jpeg")], indirect=True)
def test_records_teleoperated_episodes(rig, tmp_path, capsys):
    from real.record_cli import run

    op = Operator(rig.port)
    op.start()
    try:
        out = tmp_path / "demo"
        cfg = compose(
            "robot=rosbridge",
            f"robot.driver.port={rig.port}",
            f"out={out}",
            "episodes=2",
            "max_steps=25",
            "task=lift the cube",
            CAMERA,
        )
        assert run(cfg) == 0
    finally:
        op.close()
    assert "2 episodes written (25, 25 steps)" in capsys.readouterr().out
    report = validate(out)
    assert report.ok, report
    folder = DemoFolder(out)
    assert folder.info.state == {"eef_pos": 3, "eef_quat": 4, "gripper_qpos": 2, "object": 12}
    assert folder.info.action_kind == "delta_ee" and folder.info.fps == 20
    assert folder.info.cameras == {"agentview": (48, 64)}
    eps = [folder.read_episode(e) for e in folder.episode_ids]
    for ep in eps:
        k = np.round(ep.action[:, 3] * 1000)
        assert (np.diff(k) >= 0).all() and k[-1] - k[0] >= 15  # the operator's stream, in order
        np.testing.assert_allclose(ep.action[:, [2, 6]], [[0.05, -1.0]] * 25, atol=1e-6)
        assert (np.diff(ep.timestamp) > 0).all() and ep.task == "lift the cube"
        assert ep.state["eef_pos"][-1][2] > ep.state["eef_pos"][0][2]  # the arm rose
        frames = ep.frames["agentview"]
        assert frames.shape == (25, 48, 64, 3) and frames.std() > 5
    assert eps[1].action[0, 3] > eps[0].action[-1, 3] - 0.0015  # episode 2 follows episode 1


def test_robot_killed_mid_episode_keeps_what_was_recorded(rig, tmp_path, capsys):
    from real.record_cli import run

    op = Operator(rig.port)
    op.start()
    threading.Timer(2.5, rig.kill, args=(rig.arm_proc,)).start()
    try:
        out = tmp_path / "demo"
        cfg = compose(
            "robot=rosbridge",
            f"robot.driver.port={rig.port}",
            f"out={out}",
            "max_steps=400",
            "lost_after=0.5",
        )
        assert run(cfg) == 3
    finally:
        op.close()
    assert "robot_lost" in capsys.readouterr().out
    assert validate(out).ok
    folder = DemoFolder(out)
    (ep_id,) = folder.episode_ids
    ep = folder.read_episode(ep_id)
    assert ep.success is False
    assert 20 <= ep.length <= 2.5 * 20 + 5
    # no made-up rows: the recording ends at the last fresh state (no trailing repeats)
    last = ep.state["eef_pos"]
    assert not np.array_equal(last[-1], last[-2]) or not np.array_equal(last[-2], last[-3])
