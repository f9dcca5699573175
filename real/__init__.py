"""Real robot: the Robot protocol, ROS bridge, control loop and safety shield."""
