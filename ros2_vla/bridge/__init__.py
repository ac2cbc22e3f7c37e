"""The bridge core, without ROS: chunks planned into joint waypoints per arm, gripper paths, safety state, status."""
