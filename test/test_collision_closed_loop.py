"""The collision check over real DDS with the MuJoCo sim: chunks that drive the hand into the table, into the
arm's own base, the forearm into the upper arm, and ALOHA's two grippers into each other stop short, with
HALT_FOR_COLLISION on /vla/bridge/status naming the pair. Contact is judged on the sim's own geometry (its
capsules, palm and pads, not the bridge's collision model) at every joint state the sim published."""

from __future__ import annotations

import time

import mujoco
import numpy as np
import pytest
from driver_players import Topic
from helpers import launched, wait_for
from test_collision import ALOHA_MEET, FOREARM_INTO_UPPER_ARM, HAND_INTO_BASE, both_arms, joint_line, make_chunk

rclpy = pytest.importorskip("rclpy")
from sensor_msgs.msg import JointState  # noqa: E402

from ros2_vla.bridge.status import BridgeCode  # noqa: E402
from ros2_vla.config import RobotConfig, load_robot_config  # noqa: E402
from ros2_vla.msg import ActionChunk, BridgeStatus  # noqa: E402
from ros2_vla.ros.convert import chunk_to_msg  # noqa: E402
from ros2_vla.sim.mjcf import build_scene_xml  # noqa: E402


class SimGeometry:
    """The sim's MuJoCo model, posed from published joint states, for distances between groups of bodies."""

    def __init__(self, robot: RobotConfig) -> None:
        self.model = mujoco.MjModel.from_xml_string(build_scene_xml(robot))
        self.data = mujoco.MjData(self.model)

    def geoms(self, *bodies: str, subtree: bool = False) -> list[int]:
        """Geoms on the named bodies (and, with subtree, on every body below them)."""
        roots = {self.model.body(b).id for b in bodies}
        chosen = set(roots)
        if subtree:
            for b in range(self.model.nbody):
                parent = b
                while parent and parent not in roots:
                    parent = self.model.body_parentid[parent]
                if parent in roots:
                    chosen.add(b)
        return [g for g in range(self.model.ngeom) if self.model.geom_bodyid[g] in chosen]

    def distance(self, positions: dict[str, float], first: list[int], second: list[int]) -> float:
        for name, q in positions.items():
            joint = self.model.joint(name)
            self.data.qpos[joint.qposadr[0]] = q
        mujoco.mj_kinematics(self.model, self.data)
        fromto = np.zeros(6)
        return min(mujoco.mj_geomDistance(self.model, self.data, a, b, 1.0, fromto) for a in first for b in second)


EE_DOWN = [[0, 0, -0.05, 0, 0, 0, 1]] * 12  # 12 steps of -5 cm from home: the hand into the table
CASES = {
    # name: robot, chunk space, target (None: EE_DOWN), pair the status names, sim bodies that must not
    # touch (the first with everything below it, the second)
    "hand_into_table": ("franka", "ee_delta", None, ("fr3_hand_tcp", "table"), ("fr3_hand_tcp",), ("table",)),
    "hand_into_base": (
        "franka",
        "joint_position",
        HAND_INTO_BASE,
        ("fr3_hand_tcp", "fr3_link0"),
        ("fr3_hand_tcp",),
        ("fr3_link0", "fr3_link1"),
    ),
    "forearm_into_upper_arm": (
        "widowx",
        "joint_position",
        FOREARM_INTO_UPPER_ARM,
        ("upper_arm_link", "lower_forearm_link"),
        ("lower_forearm_link",),
        ("upper_arm_link",),
    ),
    "aloha_grippers_into_each_other": (
        "aloha",
        "joint_position",
        ALOHA_MEET,  # both arms
        ("left/left_ee_gripper_link", "right/right_ee_gripper_link"),
        ("left_wrist_link",),
        ("right_wrist_link",),
    ),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_a_chunk_into_a_collision_stops_short_in_the_sim(ros_node, case):
    name, space, target, pair, moving, fixed = CASES[case]
    robot = load_robot_config(name)
    if target is None:
        values, names = EE_DOWN, robot.action.dimension_names
    elif len(robot.arms) > 1:
        values, names = both_arms(robot, target), robot.action.dimension_names
    else:
        values, names = joint_line(robot, target)
    geometry = SimGeometry(robot)
    first = geometry.geoms(*moving, subtree=True)
    if fixed == ("table",):
        second = [geometry.model.geom("table").id]
    else:
        second = geometry.geoms(*fixed, subtree=len(robot.arms) > 1)  # the other arm's wrist and gripper
    states: list[dict[str, float]] = []
    ros_node.create_subscription(
        JointState, robot.joint_states_topic, lambda m: states.append(dict(zip(m.name, m.position))), 100
    )
    status = Topic(ros_node, BridgeStatus, "/vla/bridge/status")
    chunks = ros_node.create_publisher(ActionChunk, "/vla/action_chunk", 10)
    with launched(name, "--sim", "--enable", "--seed", "100000"):
        wait_for(lambda: status.items and status.items[-1][1].enabled and states, 60.0, "the bridge to arm")
        wait_for(lambda: chunks.get_subscription_count() > 0, 10.0, "bridge_node on /vla/action_chunk")
        stamp = ros_node.get_clock().now().nanoseconds * 1e-9
        chunks.publish(chunk_to_msg(make_chunk(robot, values, names, space=space, stamp=stamp)))
        wait_for(
            lambda: any(s.code == BridgeCode.HALT_FOR_COLLISION for _, s in status.items),
            15.0,
            f"{case}: HALT_FOR_COLLISION",
            detail=lambda: f"last status {status.items[-1][1] if status.items else None}",
        )
        halt = next(s for _, s in status.items if s.code == BridgeCode.HALT_FOR_COLLISION)
        assert all(link in halt.message for link in pair), halt.message
        # The arm moves, then comes to rest where the plan stopped: no joint moves for half a second.
        joints = [j for arm in robot.arms for j in arm.chain.joint_names]

        def travel(window: list[dict[str, float]]) -> float:
            rows = [[s[j] for j in joints] for s in window if all(j in s for j in joints)]
            return float(np.ptp(rows, axis=0).max()) if len(rows) > 1 else 0.0

        wait_for(lambda: travel(states) > 0.3, 20.0, f"{case}: the arm moving")
        # The last steps before the halt are slowed (up to 20 times their dt): allow for that.
        wait_for(lambda: len(states) > 50 and travel(states[-50:]) < 1e-3, 45.0, f"{case}: the arm at rest")
        time.sleep(0.2)
    moved = [s for s in states if all(j in s for j in joints)]
    closest = min(geometry.distance({j: s[j] for j in joints}, first, second) for s in moved[::5])
    assert closest > 0.0, f"{case}: the sim's {moving} touched {fixed} ({closest * 1e3:.1f} mm)"
