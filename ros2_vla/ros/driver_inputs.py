"""Joint states as a driver profile publishes them, subscribed and renamed to the bridge's joints."""

from __future__ import annotations

from collections.abc import Callable

from rclpy.node import Node
from sensor_msgs.msg import JointState

from ros2_vla.config import RobotConfig
from ros2_vla.driver_profile import DriverProfile, bridge_joint_state
from ros2_vla.ros.qos import SENSOR

# (message, names, positions): names with the source's prefix, a gripper in driver units converted back
JointStateCallback = Callable[[JointState, list[str], list[float]], None]


def subscribe_joint_states(node: Node, robot: RobotConfig, profile: DriverProfile, callback: JointStateCallback):
    """One subscription per joint state topic of `profile`; each message reaches `callback` in bridge names."""

    def on_message(msg: JointState, source) -> None:
        names, positions = bridge_joint_state(robot, profile, source, msg.name, msg.position)
        callback(msg, names, positions)

    return [
        node.create_subscription(JointState, s.topic, lambda m, s=s: on_message(m, s), SENSOR)
        for s in profile.joint_states
    ]
