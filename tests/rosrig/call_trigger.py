"""Call a std_srvs/Trigger service from a plain rospy client: python call_trigger.py SERVICE
Prints the response as JSON (success, message)."""

import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
from real.rospath import use_ros_python  # noqa: E402

use_ros_python()
import rospy  # noqa: E402
from std_srvs.srv import Trigger  # noqa: E402

if __name__ == "__main__":
    name = sys.argv[1]
    rospy.init_node("uvdiff_test_trigger", anonymous=True)
    rospy.wait_for_service(name, timeout=10)
    r = rospy.ServiceProxy(name, Trigger)()
    print(json.dumps({"success": r.success, "message": r.message}), flush=True)
