"""Messages built with rclpy, written as CDR a strict bag reader (rosbags) takes, and rclpy reads back equal."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("rclpy", reason="rclpy not importable: run through scripts/test")

from rclpy.serialization import deserialize_message  # noqa: E402
from sensor_msgs.msg import JointState  # noqa: E402
from std_msgs.msg import Bool, String  # noqa: E402
from trajectory_msgs.msg import JointTrajectory  # noqa: E402

from ros2_vla.actions.chunk import Chunk  # noqa: E402
from ros2_vla.bridge.status import BridgeCode, BridgeState  # noqa: E402
from ros2_vla.data.typestore import typestore  # noqa: E402
from ros2_vla.msg import ActionChunk, BridgeStatus  # noqa: E402
from ros2_vla.ros.cdr import to_cdr  # noqa: E402
from ros2_vla.ros.convert import (  # noqa: E402
    bridge_status_msg,
    chunk_to_msg,
    image_msg,
    joint_trajectory_msg,
    sec_to_time,
)


def messages():
    """One of each message the in-process recorder writes, as the nodes build them."""
    stamp = sec_to_time(1796684635.25)
    state = JointState(name=["fr3_joint1", "fr3_finger_joint1"], position=[0.1, 0.04], velocity=[0.0, -0.2])
    state.header.stamp = stamp  # no efforts: the case rclpy's own serializer pads past the CDR length
    chunk = Chunk(
        stamp=1796684635.25,
        embodiment="franka",
        action_space="ee_delta",
        dimension_names=("x", "y", "z", "roll", "pitch", "yaw", "gripper"),
        dt=0.1,
        horizon=2,
        values=np.arange(14, dtype=np.float32),
        instruction="pick up the red cube",
        policy="scripted_expert",
        sequence=3,
    )
    status = BridgeState(code=BridgeCode.OK, message="chunk 3: 2 steps planned", enabled=True, chunk_sequence=3)
    return [
        (state, "sensor_msgs/msg/JointState", JointState),
        (
            image_msg(np.arange(48, dtype=np.uint8).reshape(4, 4, 3), stamp, "scene_optical_frame"),
            "sensor_msgs/msg/Image",
            None,
        ),
        (chunk_to_msg(chunk), "ros2_vla/msg/ActionChunk", ActionChunk),
        (bridge_status_msg(status, "franka", stamp), "ros2_vla/msg/BridgeStatus", BridgeStatus),
        (
            joint_trajectory_msg(["a", "b"], [0.1, 0.2], np.ones((2, 2)), np.zeros((2, 2)), 12.5),
            "trajectory_msgs/msg/JointTrajectory",
            JointTrajectory,
        ),
        (String(data="pick up the red cube"), "std_msgs/msg/String", String),
        (Bool(data=True), "std_msgs/msg/Bool", Bool),
    ]


@pytest.mark.parametrize("index", range(7))
def test_each_message_reads_back_in_rosbags_and_rclpy(index):
    msg, msgtype, cls = messages()[index]
    cls = cls or type(msg)
    data = to_cdr(msg, msgtype)
    typestore().deserialize_cdr(data, msgtype)  # refuses a size mismatch
    assert deserialize_message(data, cls) == msg
