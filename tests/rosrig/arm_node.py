"""A ROS 1 node that is a simulated Panda (``sim.robot.SimRobot``) for the real/ tests.

Publishes, stamped, at ``--rate`` Hz (one simulation step each):
``/joint_states`` (sensor_msgs/JointState: 7 arm joints + 2 fingers), ``/uvdiff/eef_pose``
(geometry_msgs/PoseStamped), ``/uvdiff/object_state`` (std_msgs/Float64MultiArray),
``/uvdiff/success`` (std_msgs/Bool) and, with ``--camera raw|jpeg|both``, ``/camera/image``
(sensor_msgs/Image, rgb8, 84x84 or ``--image-size``) and/or ``/camera/image/compressed`` (jpeg).

Obeys ``/uvdiff/command`` (std_msgs/Float64MultiArray: the 7-D OSC delta action): each command
is applied once, at the next step; a step without a new command holds (zero delta, gripper
kept) like a controller's command timeout. ``--estop-after N`` publishes ``/uvdiff/estop``
(std_msgs/Bool, latched) after N commands. ``--status FILE`` gets a JSON summary (commands,
success, stage, e-stop time, commands after it) after every step, written atomically.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
from real.rospath import use_ros_python  # noqa: E402

use_ros_python()
import numpy as np  # noqa: E402
import rospy  # noqa: E402
from geometry_msgs.msg import PoseStamped  # noqa: E402
from sensor_msgs.msg import CompressedImage, Image, JointState  # noqa: E402
from std_msgs.msg import Bool, Float64MultiArray  # noqa: E402

from sim.robot import SimRobot  # noqa: E402

ARM = [f"panda_joint{i}" for i in range(1, 8)]
FINGERS = ["panda_finger_joint1", "panda_finger_joint2"]


class ArmNode:
    def __init__(self, args):
        self.args = args
        self.robot = SimRobot(args.env, seed=args.seed)
        self.robot.connect()
        self.raw = self.robot.env.raw
        rb = self.raw.robots[0]
        self.q_idx = list(rb._ref_joint_pos_indexes)
        self.g_idx = list(rb._ref_gripper_joint_pos_indexes["right"])
        self.lock = threading.Lock()
        self.pending: np.ndarray | None = None
        self.gripper = -1.0
        self.commands = 0
        self.applied = 0
        self.best_stage = 0
        self.success = False
        self.estop_at: float | None = None
        self.after_estop: list[float] = []
        self.pubs = {
            "joints": rospy.Publisher("/joint_states", JointState, queue_size=10),
            "pose": rospy.Publisher("/uvdiff/eef_pose", PoseStamped, queue_size=10),
            "object": rospy.Publisher("/uvdiff/object_state", Float64MultiArray, queue_size=10),
            "success": rospy.Publisher("/uvdiff/success", Bool, queue_size=10),
            "estop": rospy.Publisher("/uvdiff/estop", Bool, queue_size=1, latch=True),
        }
        if args.camera in ("raw", "both"):
            self.pubs["image"] = rospy.Publisher("/camera/image", Image, queue_size=2)
        if args.camera in ("jpeg", "both"):
            self.pubs["jpeg"] = rospy.Publisher(
                "/camera/image/compressed", CompressedImage, queue_size=2
            )
        rospy.Subscriber("/uvdiff/command", Float64MultiArray, self.on_command, queue_size=10)

    def on_command(self, msg) -> None:
        a = np.asarray(msg.data, dtype=np.float64)
        with self.lock:
            self.commands += 1
            if self.estop_at is not None:
                self.after_estop.append(time.time() - self.estop_at)
            if a.shape == (7,) and np.isfinite(a).all():
                self.pending = a
            n = self.commands
        if self.args.estop_after and n == self.args.estop_after and self.estop_at is None:
            self.estop_at = time.time()
            self.pubs["estop"].publish(Bool(data=True))

    def step(self) -> None:
        with self.lock:
            a, self.pending = self.pending, None
        if a is None:
            a = np.zeros(7)
            a[6] = self.gripper
        else:
            self.gripper = a[6]
            self.applied += 1
        self.robot.command(a)
        info = self.robot.observe().info
        self.best_stage = max(self.best_stage, int(info.get("stage", 0)))
        self.success = self.success or bool(info.get("success"))
        self.publish(bool(info.get("success")))

    def publish(self, success: bool) -> None:
        obs = self.robot.observe()
        stamp = rospy.Time.from_sec(time.time())
        qpos = self.raw.sim.data.qpos
        js = JointState(name=ARM + FINGERS, position=[*qpos[self.q_idx], *qpos[self.g_idx]])
        js.header.stamp = stamp
        self.pubs["joints"].publish(js)
        pose = PoseStamped()
        pose.header.stamp, pose.header.frame_id = stamp, "world"
        p, q = obs.state["eef_pos"], obs.state["eef_quat"]  # quaternion x, y, z, w
        pose.pose.position.x, pose.pose.position.y, pose.pose.position.z = map(float, p)
        o = pose.pose.orientation
        o.x, o.y, o.z, o.w = map(float, q)
        self.pubs["pose"].publish(pose)
        self.pubs["object"].publish(Float64MultiArray(data=obs.state["object"].tolist()))
        self.pubs["success"].publish(Bool(data=success))
        if self.args.camera != "none":
            h, w = self.args.image_size
            frame = self.robot.env.render("agentview", (h, w))
            if "image" in self.pubs:
                img = Image(height=h, width=w, encoding="rgb8", step=3 * w, data=frame.tobytes())
                img.header.stamp = stamp
                self.pubs["image"].publish(img)
            if "jpeg" in self.pubs:
                import cv2

                ok, buf = cv2.imencode(".jpg", frame[..., ::-1])
                jpg = CompressedImage(format="jpeg", data=buf.tobytes())
                jpg.header.stamp = stamp
                self.pubs["jpeg"].publish(jpg)

    def write_status(self) -> None:
        if not self.args.status:
            return
        doc = {
            "commands": self.commands,
            "applied": self.applied,
            "success": self.success,
            "stage": self.best_stage,
            "estop_at": self.estop_at,
            "after_estop_s": self.after_estop,
            "pid": os.getpid(),
        }
        tmp = self.args.status + ".tmp"
        with open(tmp, "w") as f:
            json.dump(doc, f)
        os.replace(tmp, self.args.status)


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--env", default="lift")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--rate", type=float, default=20.0)
    p.add_argument("--camera", choices=["none", "raw", "jpeg", "both"], default="none")
    p.add_argument("--image-size", type=int, nargs=2, default=[84, 84])
    p.add_argument("--estop-after", type=int, default=0)
    p.add_argument("--status", default="")
    args = p.parse_args()
    rospy.init_node("uvdiff_sim_arm", anonymous=True)
    node = ArmNode(args)
    node.publish(False)
    node.write_status()
    print("arm ready", flush=True)
    period = 1.0 / args.rate
    nxt = time.monotonic()
    while not rospy.is_shutdown():
        node.step()
        node.write_status()
        nxt += period
        delay = nxt - time.monotonic()
        if delay > 0:
            time.sleep(delay)
        else:
            nxt = time.monotonic()
    node.robot.close()


if __name__ == "__main__":
    main()
