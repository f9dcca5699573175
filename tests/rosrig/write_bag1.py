"""Write a ROS 1 bag with Debian's own ``rosbag`` library (an independent writer for the
converter's tests): python write_bag1.py OUT.bag [--steps N]

Commands (Float64MultiArray, 7-D; command k has k in dim 0) at 20 Hz; JointState, PoseStamped
and an object Float64MultiArray at 40 Hz (value = the sample index); a 32x48 JPEG at 10 Hz.
The bag's receive times are t0 + i * period.
"""

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
from real.rospath import use_ros_python  # noqa: E402

use_ros_python()
import cv2  # noqa: E402
import numpy as np  # noqa: E402
import rosbag  # noqa: E402
import rospy  # noqa: E402
from geometry_msgs.msg import PoseStamped  # noqa: E402
from sensor_msgs.msg import CompressedImage, JointState  # noqa: E402
from std_msgs.msg import Float64MultiArray  # noqa: E402

T0 = 1_700_000_000.0


def main():
    p = argparse.ArgumentParser()
    p.add_argument("out")
    p.add_argument("--steps", type=int, default=30)
    args = p.parse_args()
    with rosbag.Bag(args.out, "w") as bag:
        for i in range(args.steps * 2):  # 40 Hz state
            t = rospy.Time.from_sec(T0 + i / 40)
            js = JointState(
                name=["panda_finger_joint1", "x", "panda_finger_joint2"],
                position=[i, -1.0, i + 0.5],
            )
            js.header.stamp = t
            bag.write("/joint_states", js, t)
            pose = PoseStamped()
            pose.header.stamp = t
            pose.pose.position.x, pose.pose.position.y, pose.pose.position.z = i, 0.0, 1.0
            pose.pose.orientation.w = 1.0
            bag.write("/uvdiff/eef_pose", pose, t)
            bag.write("/uvdiff/object_state", Float64MultiArray(data=[i] * 10), t)
            if i % 4 == 0:  # 10 Hz camera
                img = np.zeros((32, 48, 3), np.uint8)
                img[..., 2] = 200  # red in BGR
                ok, buf = cv2.imencode(".jpg", img)
                cam = CompressedImage(format="jpeg", data=buf.tobytes())
                cam.header.stamp = t
                bag.write("/camera/image/compressed", cam, t)
        for k in range(args.steps):  # 20 Hz commands, 5 ms after the state sample
            t = rospy.Time.from_sec(T0 + k / 20 + 0.005)
            bag.write("/uvdiff/command", Float64MultiArray(data=[k, 0, 0, 0, 0, 0, -1.0]), t)


if __name__ == "__main__":
    main()
