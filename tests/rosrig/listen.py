"""A rospy subscriber that writes every message it gets on one topic as a JSON line (the ROS
side's own view of what a client published): python listen.py TOPIC TYPE OUT.jsonl"""

import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
from real.rospath import use_ros_python  # noqa: E402

use_ros_python()
import roslib.message  # noqa: E402
import rospy  # noqa: E402
from rospy_message_converter import message_converter  # noqa: E402


def main():
    topic, type_, out = sys.argv[1:4]
    f = open(out, "a")  # noqa: SIM115 (open for the node's life)

    def got(msg):
        d = message_converter.convert_ros_message_to_dictionary(msg)
        f.write(json.dumps({"received": time.time(), "msg": d}) + "\n")
        f.flush()

    rospy.init_node("uvdiff_test_listener", anonymous=True)
    rospy.Subscriber(topic, roslib.message.get_message_class(type_), got, queue_size=100)
    print("listening", flush=True)
    rospy.spin()


if __name__ == "__main__":
    main()
