"""Keyboard teleoperation of the end effector, without ROS."""
