"""bridge_node's output adapters over real DDS, against plain rclpy processes playing each driver's interface.

Each test starts a real bridge_node with a driver profile; the test node plays the driver (joint states on
the profile's topics, action servers that accept, reject, abort or never finish, command subscribers) and
checks what arrives: the goals and their fields, the streamed commands' rates and ranges, and that every
failure ends in CONTROLLER_ERROR with its reason, the bridge disarmed (holding), and re-arming working."""

from __future__ import annotations

import subprocess
import sys
import time
from contextlib import contextmanager
from types import SimpleNamespace

import numpy as np
import pytest
from driver_players import ActionPlayer, JointStatePlayer, Topic
from helpers import wait_for

rclpy = pytest.importorskip("rclpy")
from control_msgs.action import FollowJointTrajectory, GripperCommand  # noqa: E402
from franka_msgs.action import Grasp, Move  # noqa: E402
from interbotix_xs_msgs.msg import JointGroupCommand, JointSingleCommand  # noqa: E402
from std_msgs.msg import Float64MultiArray  # noqa: E402
from std_srvs.srv import SetBool  # noqa: E402

from ros2_vla.actions.chunk import Chunk  # noqa: E402
from ros2_vla.bridge.status import BridgeCode  # noqa: E402
from ros2_vla.config import RobotConfig, load_robot_config  # noqa: E402
from ros2_vla.driver_profile import load_driver_profile  # noqa: E402
from ros2_vla.msg import ActionChunk, BridgeStatus  # noqa: E402
from ros2_vla.ros.convert import chunk_to_msg  # noqa: E402

FJT_NAME = "/fr3_arm_controller/follow_joint_trajectory"


def _home(robot: RobotConfig) -> dict[str, float]:
    state = {}
    for a in robot.arms:
        state.update(zip(a.chain.joint_names, a.chain.home))
        if a.gripper:
            state[a.gripper.joint] = a.gripper.open_position
    return state


@contextmanager
def bridge(robot: str, driver: str):
    """A bridge_node process on `robot` with `driver`, arming when joint states arrive."""
    args = ["-p", f"robot:={robot}", "-p", f"driver:={driver}", "-p", "enabled:=true"]
    proc = subprocess.Popen(
        [sys.executable, "-m", "ros2_vla.nodes.bridge_node", "--ros-args", *args],
        cwd="/",
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        yield proc
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


class Graph:
    """The test node's side: chunks out, statuses in, /vla/enable."""

    def __init__(self, node, robot: RobotConfig) -> None:
        self.node, self.robot = node, robot
        self.chunks = node.create_publisher(ActionChunk, "/vla/action_chunk", 10)
        self.status = Topic(node, BridgeStatus, "/vla/bridge/status")
        self.enable = node.create_client(SetBool, "/vla/enable")
        self.sequence = 0

    def latest(self) -> BridgeStatus | None:
        return self.status.items[-1][1] if self.status.items else None

    def wait_status(self, predicate, timeout: float, what: str) -> BridgeStatus:
        return wait_for(
            lambda: (s := self.latest()) is not None and predicate(s) and s,
            timeout,
            what,
            detail=lambda: f"last status {self.latest()}",
        )

    def send(self, values: np.ndarray, space: str = "ee_delta") -> None:
        self.sequence += 1
        chunk = Chunk(
            stamp=self.node.get_clock().now().nanoseconds * 1e-9,
            embodiment=self.robot.name,
            action_space=space,
            dimension_names=self.robot.action.dimension_names,
            dt=self.robot.action.dt,
            horizon=len(values),
            values=np.asarray(values, dtype=np.float32),
            sequence=self.sequence,
        )
        self.chunks.publish(chunk_to_msg(chunk))

    def call_enable(self, on: bool) -> SetBool.Response:
        assert self.enable.wait_for_service(5.0)
        future = self.enable.call_async(SetBool.Request(data=on))
        wait_for(future.done, 5.0, "/vla/enable's answer")
        return future.result()


@contextmanager
def franka_ros2_played(ros_node, fjt: str | None = "accept", grasp: str = "accept", fjt_result=None):
    """franka_ros2's side, played: fr3_arm_controller's FollowJointTrajectory server (`fjt` its mode, None:
    absent), franka_gripper's grasp (`grasp` its mode) and move servers, and the split joint states."""
    robot = load_robot_config("franka")
    players = SimpleNamespace(
        fjt=ActionPlayer(ros_node, FollowJointTrajectory, FJT_NAME, fjt, result=fjt_result) if fjt else None,
        grasp=ActionPlayer(
            ros_node, Grasp, "/franka_gripper/grasp", grasp, result=lambda g: Grasp.Result(success=True)
        ),
        move=ActionPlayer(ros_node, Move, "/franka_gripper/move", result=lambda g: Move.Result(success=True)),
        state=JointStatePlayer(ros_node, robot, load_driver_profile(robot, "franka_ros2"), _home(robot)),
    )
    try:
        yield players
    finally:
        for p in vars(players).values():
            if p is not None:
                p.destroy()


def _ee_chunk(gripper: float, steps: int = 4) -> np.ndarray:
    """A short, slow +x motion with the gripper dimension at `gripper` (1 open, 0 closed)."""
    return np.array([[0.004, 0.0, 0.0, 0.0, 0.0, 0.0, gripper]] * steps)


def _within_limits(robot: RobotConfig, names, positions) -> None:
    limits = {j.name: (j.lower, j.upper) for a in robot.arms for j in a.chain.joints}
    for n, q in zip(names, positions):
        lo, hi = limits[n]
        assert lo - 1e-9 <= q <= hi + 1e-9, f"{n} = {q} outside [{lo}, {hi}]"


def test_franka_ros2_sends_one_trajectory_goal_per_plan_and_grasps_and_moves_the_hand(ros_node):
    robot = load_robot_config("franka")
    graph = Graph(ros_node, robot)
    with franka_ros2_played(ros_node) as played, bridge("franka", "franka_ros2"):
        fjt, grasp, move = played.fjt, played.grasp, played.move
        graph.wait_status(lambda s: s.enabled, 30.0, "the bridge to arm on the split joint states")
        # Two steps (0.2 s): the hand's close (0.4 s) outlasts the arm's plan, while the bridge repeats
        # the arm's end every period: still one goal.
        graph.send(_ee_chunk(gripper=0.0, steps=2))
        wait_for(lambda: fjt.goals and grasp.goals, 10.0, "a trajectory goal and a grasp goal")
        goal = fjt.goals[0][1]
        assert tuple(goal.trajectory.joint_names) == robot.arms[0].chain.joint_names
        times = [p.time_from_start.sec + 1e-9 * p.time_from_start.nanosec for p in goal.trajectory.points]
        assert np.all(np.diff(times) > 0) and times[0] > 0
        for p in goal.trajectory.points:
            _within_limits(robot, goal.trajectory.joint_names, p.positions)
        g = grasp.goals[0][1]
        assert (g.width, g.speed, g.force) == pytest.approx((0.0, 0.1, 20.0))
        assert (g.epsilon.inner, g.epsilon.outer) == pytest.approx((0.005, 0.08))
        # The bridge re-sends its plan every control period; the action gets it once.
        time.sleep(1.0)
        assert len(fjt.goals) == 1 and len(grasp.goals) == 1
        graph.send(_ee_chunk(gripper=1.0))
        wait_for(lambda: move.goals, 10.0, "a move goal that opens the hand")
        m = move.goals[0][1]
        assert (m.width, m.speed) == pytest.approx((0.08, 0.1))
        wait_for(lambda: len(fjt.goals) == 2, 5.0, "the second plan's goal")
        codes = {s.code for _, s in graph.status.items}
        assert BridgeCode.CONTROLLER_ERROR not in codes and graph.latest().enabled


@pytest.mark.parametrize(
    "mode,reason",
    [
        ("reject", f"{FJT_NAME} rejected the trajectory goal"),
        ("abort", "PATH_TOLERANCE_VIOLATED (fr3_joint4 left its path)"),
        ("silent", "accepted the trajectory but gave no result"),
    ],
)
def test_a_failing_trajectory_server_disarms_with_its_reason_and_rearming_works(ros_node, mode, reason):
    robot = load_robot_config("franka")
    result = FollowJointTrajectory.Result(error_code=-4, error_string="fr3_joint4 left its path")
    graph = Graph(ros_node, robot)
    aborted = (lambda g: result) if mode == "abort" else None
    with franka_ros2_played(ros_node, fjt=mode, fjt_result=aborted) as played, bridge("franka", "franka_ros2"):
        fjt = played.fjt
        graph.wait_status(lambda s: s.enabled, 30.0, "the bridge to arm")
        graph.send(_ee_chunk(gripper=1.0))
        status = graph.wait_status(
            lambda s: s.code == BridgeCode.CONTROLLER_ERROR, 10.0, f"CONTROLLER_ERROR after a {mode} server"
        )
        assert reason in status.message and "holding" in status.message
        assert not status.enabled
        # Disarmed: at most the one hold goal follows, then nothing.
        sent = len(fjt.goals)
        time.sleep(1.0)
        assert len(fjt.goals) <= sent + 1
        settled = len(fjt.goals)
        time.sleep(0.5)
        assert len(fjt.goals) == settled
        fjt.mode = "accept"
        answer = graph.call_enable(True)
        assert answer.success, answer.message
        graph.wait_status(
            lambda s: s.enabled and s.code != BridgeCode.CONTROLLER_ERROR, 5.0, "armed again, the error cleared"
        )
        graph.send(_ee_chunk(gripper=1.0))
        wait_for(lambda: len(fjt.goals) > settled, 5.0, "a goal after re-arming")


@pytest.mark.parametrize(
    "mode,reason", [("reject", "/franka_gripper/grasp was rejected"), ("silent", "did not finish within 5 s")]
)
def test_a_failing_gripper_server_disarms_with_its_reason(ros_node, mode, reason):
    graph = Graph(ros_node, load_robot_config("franka"))
    with franka_ros2_played(ros_node, grasp=mode), bridge("franka", "franka_ros2"):
        graph.wait_status(lambda s: s.enabled, 30.0, "the bridge to arm")
        graph.send(_ee_chunk(gripper=0.0))
        status = graph.wait_status(
            lambda s: s.code == BridgeCode.CONTROLLER_ERROR, 10.0, f"CONTROLLER_ERROR after a {mode} grasp server"
        )
        assert reason in status.message and not status.enabled


def test_an_absent_trajectory_server_keeps_the_bridge_disarmed_and_says_so(ros_node):
    graph = Graph(ros_node, load_robot_config("franka"))
    with franka_ros2_played(ros_node, fjt=None) as played, bridge("franka", "franka_ros2"):
        status = graph.wait_status(
            lambda s: s.code == BridgeCode.CONTROLLER_ERROR, 30.0, "a status about the missing server"
        )
        assert f"waiting to arm: no FollowJointTrajectory server on {FJT_NAME}" in status.message
        assert not status.enabled
        answer = graph.call_enable(True)
        assert not answer.success and "no FollowJointTrajectory server" in answer.message
        played.fjt = ActionPlayer(ros_node, FollowJointTrajectory, FJT_NAME)  # the controller comes up
        graph.wait_status(lambda s: s.enabled, 10.0, "the bridge to arm once the server is there")


def test_forward_position_streams_the_plan_and_gripper_command_opens_and_closes(ros_node):
    robot = load_robot_config("franka")
    profile = load_driver_profile(robot, "forward_position")
    gc = ActionPlayer(ros_node, GripperCommand, "/franka_gripper/gripper_action")
    commands = Topic(ros_node, Float64MultiArray, "/forward_position_controller/commands")
    players = [gc, JointStatePlayer(ros_node, robot, profile, _home(robot))]
    graph = Graph(ros_node, robot)
    try:
        with bridge("franka", "forward_position"):
            graph.wait_status(lambda s: s.enabled, 30.0, "the bridge to arm")
            graph.send(_ee_chunk(gripper=0.0, steps=10))
            wait_for(lambda: gc.goals, 10.0, "a GripperCommand goal")
            close = gc.goals[0][1].command
            assert (close.position, close.max_effort) == pytest.approx((0.0, 20.0))  # per finger, as franka_gripper
            t0 = time.monotonic()
            time.sleep(1.0)
            window = commands.after(t0)
            assert len(window) >= 40, f"{len(window)} commands in 1 s (100 Hz control rate)"
            q = np.array([m.data for m in window])
            assert q.shape[1] == 7
            for row in q:
                _within_limits(robot, robot.arms[0].chain.joint_names, row)
            assert np.ptp(q[:, 0]) + np.ptp(q[:, 1]) > 1e-4, "the streamed setpoint follows the plan"
            graph.send(_ee_chunk(gripper=1.0))
            wait_for(lambda: len(gc.goals) == 2, 10.0, "the opening goal")
            assert gc.goals[1][1].command.position == pytest.approx(robot.arms[0].gripper.open_position)
    finally:
        for p in players:
            p.destroy()


def test_xs_sdk_streams_the_arm_group_and_pushes_the_gripper_until_it_stops(ros_node):
    robot = load_robot_config("widowx")
    profile = load_driver_profile(robot, "xs_sdk")
    group = Topic(ros_node, JointGroupCommand, "/wx250s/commands/joint_group")
    single = Topic(ros_node, JointSingleCommand, "/wx250s/commands/joint_single")
    state = JointStatePlayer(ros_node, robot, profile, _home(robot))
    graph = Graph(ros_node, robot)
    try:
        with bridge("widowx", "xs_sdk"):
            graph.wait_status(lambda s: s.enabled, 30.0, "the bridge to arm")
            graph.send(np.array([[0.004, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0]] * 5))
            wait_for(lambda: any(m.cmd == -250.0 for _, m in single.items), 10.0, "the close (-250 PWM)")
            t0 = time.monotonic()
            time.sleep(1.0)
            window = group.after(t0)
            assert len(window) >= 20, f"{len(window)} group commands in 1 s (50 Hz control rate)"
            for m in window:
                assert m.name == "arm" and len(m.cmd) == 6
                _within_limits(robot, robot.arms[0].chain.joint_names, m.cmd)
            assert not any(m.cmd == 0.0 for _, m in single.items)
            state.positions["left_finger"] = robot.arms[0].gripper.closed_position  # the fingers reach their stop
            wait_for(lambda: single.items[-1][1].cmd == 0.0, 5.0, "PWM 0 once the fingers are closed")
    finally:
        state.destroy()


def test_aloha_followers_get_their_arm_groups_and_gripper_radians(ros_node):
    robot = load_robot_config("aloha")
    profile = load_driver_profile(robot, "aloha")
    groups = {s: Topic(ros_node, JointGroupCommand, f"/follower_{s}/commands/joint_group") for s in ("left", "right")}
    singles = {
        s: Topic(ros_node, JointSingleCommand, f"/follower_{s}/commands/joint_single") for s in ("left", "right")
    }
    state = JointStatePlayer(ros_node, robot, profile, _home(robot))
    graph = Graph(ros_node, robot)
    try:
        with bridge("aloha", "aloha"):
            # Arming needs both arms' states: each follower's unprefixed names renamed to left_/right_.
            graph.wait_status(lambda s: s.enabled, 30.0, "the bridge to arm on the followers' joint states")
            home = np.concatenate([np.r_[a.chain.home, 1.0] for a in robot.arms])
            values = home + np.linspace(0.01, 0.05, 10)[:, None] * np.cos(np.arange(14))[None, :]
            values[:, 6], values[:, 13] = np.linspace(1.0, 0.2, 10), 1.0
            t0 = time.monotonic()
            graph.send(values, space="joint_position")
            time.sleep(1.0)
            for side, arm in zip(("left", "right"), robot.arms):
                window = groups[side].after(t0)
                assert len(window) >= 20, f"{side}: {len(window)} group commands in 1 s (50 Hz)"
                for m in window:
                    assert m.name == "arm" and len(m.cmd) == 6
                    _within_limits(robot, arm.chain.joint_names, m.cmd)
                grip = [m.cmd for m in singles[side].after(t0)]
                assert grip and all(m.name == "gripper" for m in singles[side].after(t0))
                assert all(0.6197 - 1e-6 <= g <= 1.6214 + 1e-6 for g in grip), (min(grip), max(grip))
            left = [m.cmd for m in singles["left"].after(t0)]
            assert max(left) - min(left) > 0.3, "the left gripper closes along the plan, in motor radians"
    finally:
        state.destroy()


def test_a_driver_topic_nobody_listens_to_keeps_the_bridge_disarmed_and_losing_it_holds(ros_node):
    """Topics give no answer: the only sign of a driver that is not there, or went away, is its subscription."""
    robot = load_robot_config("widowx")
    state = JointStatePlayer(ros_node, robot, load_driver_profile(robot, "xs_sdk"), _home(robot))
    graph = Graph(ros_node, robot)
    try:
        with bridge("widowx", "xs_sdk"):
            status = graph.wait_status(
                lambda s: s.code == BridgeCode.CONTROLLER_ERROR, 30.0, "a status about the missing driver"
            )
            assert "waiting to arm: nobody subscribes to /wx250s/commands/joint_group" in status.message
            assert not status.enabled
            single = Topic(ros_node, JointSingleCommand, "/wx250s/commands/joint_single")
            group = Topic(ros_node, JointGroupCommand, "/wx250s/commands/joint_group")  # xs_sdk comes up
            graph.wait_status(lambda s: s.enabled, 10.0, "the bridge to arm once xs_sdk listens")
            ros_node.destroy_subscription(group.sub)  # ... and goes away
            status = graph.wait_status(
                lambda s: s.code == BridgeCode.CONTROLLER_ERROR, 10.0, "a controller error once it is gone"
            )
            assert "/wx250s/commands/joint_group lost its subscriber" in status.message and not status.enabled
            ros_node.destroy_subscription(single.sub)
    finally:
        state.destroy()
