"""The OpenVLA checkpoint in the published layout drives the Franka sim closed loop over DDS: sim_node,
vla_node (the native openvla backend on the CPU, seconds per one-step chunk) and bridge_node as
`ros2-vla launch` starts them. The weights are random, so nothing is expected of the motion but that it
happens and stays within every limit: each chunk arrives long after its 0.1 s step and is still played."""

from __future__ import annotations

import numpy as np
import pytest
from helpers import launched, wait_for

pytest.importorskip("rclpy")
from sensor_msgs.msg import JointState  # noqa: E402
from std_msgs.msg import String  # noqa: E402

from ros2_vla.bringup import NAMES  # noqa: E402
from ros2_vla.config import load_robot_config  # noqa: E402
from ros2_vla.msg import BridgeStatus, PolicyStatus  # noqa: E402
from ros2_vla.ros.qos import COMMAND, STATUS  # noqa: E402

pytestmark = pytest.mark.slow
ROBOT = load_robot_config("franka")
MOVING = (
    BridgeStatus.OK,
    BridgeStatus.JOINT_LIMIT,
    BridgeStatus.WORKSPACE_LIMIT,
    BridgeStatus.DECELERATE_FOR_SINGULARITY,
)


def test_an_openvla_checkpoint_moves_the_sim_arm_within_its_limits(ros_node, openvla_checkpoint):
    from rclpy.qos import qos_profile_sensor_data

    arm = ROBOT.arms[0]
    lower = np.array([j.lower for j in arm.chain.joints])
    upper = np.array([j.upper for j in arm.chain.joints])
    bridge, policy, states = [], [], []
    ros_node.create_subscription(BridgeStatus, NAMES.bridge_status, bridge.append, STATUS)
    ros_node.create_subscription(PolicyStatus, NAMES.policy_status, policy.append, STATUS)

    def on_state(msg: JointState) -> None:
        index = {n: i for i, n in enumerate(msg.name)}
        if all(n in index for n in arm.chain.joint_names):
            states.append(np.array([msg.position[index[n]] for n in arm.chain.joint_names]))

    ros_node.create_subscription(JointState, ROBOT.joint_states_topic, on_state, qos_profile_sensor_data)
    instruct = ros_node.create_publisher(String, NAMES.instruction, COMMAND)
    with launched(
        "franka",
        "--sim",
        "--policy",
        "openvla",
        "--model",
        str(openvla_checkpoint),
        "--device",
        "cpu",
        "--quantization",
        "fp32",
        timeout=30,
    ) as proc:
        wait_for(
            lambda: (
                any(p.code in (PolicyStatus.IDLE, PolicyStatus.WAITING) and "ready" in p.message for p in policy)
                or proc.poll() is not None
            ),
            120,
            "the OpenVLA checkpoint to load",
        )
        assert proc.poll() is None, proc.stdout.read()
        start = states[-1].copy()
        wait_for(lambda: instruct.get_subscription_count() > 0, 10, "vla_node to subscribe")
        instruct.publish(String(data="pick up the red cube"))
        played = lambda: [b for b in bridge if b.chunk_sequence >= 1 and b.code in MOVING]  # noqa: E731
        wait_for(
            lambda: len({b.chunk_sequence for b in played()}) >= 3 or proc.poll() is not None,
            180,
            "three OpenVLA chunks played by the bridge",
        )
        assert proc.poll() is None, proc.stdout.read()
        assert all(b.chunk_lateness > 0.0 for b in played()), [b.chunk_lateness for b in played()]  # seconds late
        assert not [b for b in bridge if b.code == BridgeStatus.CHUNK_REJECTED], [b.message for b in bridge]
        wait_for(lambda: np.abs(states[-1] - start).max() > 1e-3, 20, "the sim arm to move")
    q = np.array(states)
    assert np.all(q >= lower - 1e-6) and np.all(q <= upper + 1e-6), "a joint left its limits"
    assert np.all(np.isfinite(q))
