"""The closed loop through every driver profile: sim_node plays the driver (its action servers, Interbotix
commands, split joint state topics), bridge_node drives it through the matching adapters, over real DDS.

For each profile the scripted expert does its task within limits; the FR3's hand opens and closes through
GripperCommand and through franka_gripper's grasp and move."""

from __future__ import annotations

import time

import numpy as np
import pytest
from driver_players import Topic
from helpers import POSITION_SLACK, launched, wait_for

rclpy = pytest.importorskip("rclpy")
from sensor_msgs.msg import JointState  # noqa: E402
from std_msgs.msg import Bool  # noqa: E402

from ros2_vla.actions.chunk import Chunk  # noqa: E402
from ros2_vla.config import load_robot_config  # noqa: E402
from ros2_vla.driver_profile import bridge_joint_state, load_driver_profile  # noqa: E402
from ros2_vla.msg import ActionChunk, BridgeStatus  # noqa: E402
from ros2_vla.ros.convert import chunk_to_msg  # noqa: E402

PROFILES = [
    ("franka", "franka_ros2"),
    ("franka", "forward_position"),
    ("widowx", "xs_sdk"),
    ("widowx", "ros2_control_action"),
    ("aloha", "aloha"),
]


class Measured:
    """The driver's joint states, as the bridge reads them (renamed, gripper in bridge units)."""

    def __init__(self, node, robot, profile) -> None:
        self.values: list[dict[str, float]] = []
        for source in profile.joint_states:
            node.create_subscription(JointState, source.topic, lambda m, s=source: self._on(robot, profile, s, m), 100)

    def _on(self, robot, profile, source, msg) -> None:
        names, positions = bridge_joint_state(robot, profile, source, msg.name, msg.position)
        self.values.append(dict(zip(names, positions)))

    def series(self, name: str) -> np.ndarray:
        return np.array([v[name] for v in self.values if name in v])


@pytest.mark.parametrize("robot_name,driver", PROFILES)
def test_the_expert_does_its_task_through_each_driver_profile_within_limits(ros_node, robot_name, driver):
    robot = load_robot_config(robot_name)
    profile = load_driver_profile(robot, driver)
    measured = Measured(ros_node, robot, profile)
    success = Topic(ros_node, Bool, "/sim/success")
    status = Topic(ros_node, BridgeStatus, "/vla/bridge/status")
    with launched(robot_name, "--sim", "--expert", "--driver", driver, "--seed", "100000"):
        wait_for(
            lambda: any(m.data for _, m in success.items),
            90.0,
            f"{robot_name} through {driver}: the task done",
            detail=lambda: f"last bridge status {status.items[-1][1] if status.items else None}",
        )
    assert all(s.code != 11 for _, s in status.items), "no controller error on the way"
    for arm in robot.arms:
        moved = 0.0
        for joint in arm.chain.joints:
            q = measured.series(joint.name)
            assert q.size > 100, f"{joint.name}: {q.size} joint states"
            assert q.min() >= joint.lower - POSITION_SLACK and q.max() <= joint.upper + POSITION_SLACK, joint.name
            moved = max(moved, float(np.ptp(q)))
        assert moved > 0.1, f"{arm.name} hardly moved ({moved:.3f} rad)"
        g = measured.series(arm.gripper.joint)
        lo, hi = sorted((arm.gripper.closed_position, arm.gripper.open_position))
        assert g.min() >= lo - 1e-3 and g.max() <= hi + 1e-3
        assert np.ptp(g) > 0.3 * (hi - lo), f"{arm.name}'s gripper closed on its cube"


@pytest.mark.parametrize("driver", ["franka_ros2", "forward_position"])
def test_the_fr3_hand_closes_and_opens_through_its_actions(ros_node, driver):
    """franka_ros2: franka_gripper's grasp and move; forward_position: its GripperCommand server."""
    robot = load_robot_config("franka")
    profile = load_driver_profile(robot, driver)
    measured = Measured(ros_node, robot, profile)
    chunks = ros_node.create_publisher(ActionChunk, "/vla/action_chunk", 10)
    status = Topic(ros_node, BridgeStatus, "/vla/bridge/status")
    finger = robot.arms[0].gripper.joint

    def send(gripper: float, sequence: int) -> None:
        chunk = Chunk(
            stamp=ros_node.get_clock().now().nanoseconds * 1e-9,
            embodiment="franka",
            action_space="ee_delta",
            dimension_names=robot.action.dimension_names,
            dt=robot.action.dt,
            horizon=2,
            values=np.array([[0, 0, 0, 0, 0, 0, gripper]] * 2, dtype=np.float32),
            sequence=sequence,
        )
        chunks.publish(chunk_to_msg(chunk))

    with launched("franka", "--sim", "--driver", driver, "--enable", "--seed", "100000"):
        wait_for(lambda: status.items and status.items[-1][1].enabled, 60.0, "the bridge to arm")
        wait_for(lambda: measured.series(finger).size, 10.0, "the fingers' joint states")
        assert measured.series(finger)[-1] == pytest.approx(0.04, abs=1e-3)  # the sim starts open
        send(0.0, 1)
        wait_for(lambda: measured.series(finger)[-1] < 0.002, 10.0, "the hand closed (nothing between the fingers)")
        time.sleep(0.5)
        send(1.0, 2)
        wait_for(lambda: measured.series(finger)[-1] > 0.038, 10.0, "the hand open again")
    assert all(s.code != 11 for _, s in status.items), [s.message for _, s in status.items if s.code == 11]


def test_the_sims_trajectory_controller_stops_a_canceled_goal(ros_node):
    """sim_node's FollowJointTrajectory server, as JTC: a cancel stops the joints where they are."""
    from control_msgs.action import FollowJointTrajectory
    from rclpy.action import ActionClient
    from trajectory_msgs.msg import JointTrajectory, JointTrajectoryPoint

    from ros2_vla.ros.convert import sec_to_duration

    robot = load_robot_config("franka")
    profile = load_driver_profile(robot, "franka_ros2")
    measured = Measured(ros_node, robot, profile)
    client = ActionClient(ros_node, FollowJointTrajectory, "/fr3_arm_controller/follow_joint_trajectory")
    chain = robot.arms[0].chain
    with launched("franka", "--sim", "--driver", "franka_ros2", "--seed", "100000"):
        assert client.wait_for_server(timeout_sec=60.0)
        wait_for(lambda: measured.series(chain.joint_names[0]).size, 10.0, "joint states")
        goal = FollowJointTrajectory.Goal()
        goal.trajectory = JointTrajectory(joint_names=list(chain.joint_names))
        target = list(chain.home)
        target[0] += 0.6  # joint 1, slowly: 0.6 rad in 6 s
        goal.trajectory.points = [JointTrajectoryPoint(positions=target, time_from_start=sec_to_duration(6.0))]
        sent = client.send_goal_async(goal)
        handle = wait_for(lambda: sent.done() and sent.result(), 10.0, "the goal accepted")
        assert handle.accepted
        time.sleep(1.5)
        canceled = handle.cancel_goal_async()
        wait_for(canceled.done, 5.0, "the cancel answered")
        result = handle.get_result_async()
        wait_for(result.done, 5.0, "the goal's result")
        assert result.result().status == 5  # CANCELED
        q1 = measured.series(chain.joint_names[0])[-1]
        time.sleep(1.5)
        q2 = measured.series(chain.joint_names[0])[-1]
    assert chain.home[0] + 0.05 < q1 < chain.home[0] + 0.5, "it moved, and stopped short of the target"
    assert abs(q2 - q1) < 0.01, f"still moving after the cancel: {q1:.3f} -> {q2:.3f} rad"
