"""Recorded episodes and datasets: rosbag2 recording and reading, conversion to LeRobot v3.0, frames in memory."""
