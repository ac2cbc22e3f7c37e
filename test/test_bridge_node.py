"""bridge_node over real DDS: chunks from a plain rclpy process become JointTrajectories that keep every limit
and reach the commanded targets; bad input gets its status and no trajectory; the IK backend is a parameter."""

from __future__ import annotations

import subprocess
import sys
import time

import numpy as np
import pytest
from bridge_checks import check_arm_points, check_gripper_points, expected_targets, fk, pose_errors
from helpers import launched, wait_for

pytest.importorskip("rclpy")
from rclpy.duration import Duration  # noqa: E402
from rclpy.qos import qos_profile_sensor_data  # noqa: E402
from sensor_msgs.msg import JointState  # noqa: E402
from std_srvs.srv import SetBool  # noqa: E402
from trajectory_msgs.msg import JointTrajectory  # noqa: E402

from ros2_vla.config import RobotConfig, load_robot_config  # noqa: E402
from ros2_vla.msg import ActionChunk, BridgeStatus  # noqa: E402

POSE_TOL, ROT_TOL = 1e-3, 0.01  # [m], [rad]
AHEAD = 0.3  # [s] chunks are stamped this far ahead: "skip" keeps every step whatever the DDS latency
EE = ["x", "y", "z", "roll", "pitch", "yaw", "gripper"]


def _home_state(robot: RobotConfig) -> tuple[list[str], list[float]]:
    names, positions = [], []
    for arm in robot.arms:
        names += list(arm.chain.joint_names) + [arm.gripper.joint]
        positions += list(arm.chain.home) + [arm.gripper.open_position]
    return names, positions


def _sender_script(robot: RobotConfig, chunks: list[dict], gap: float) -> str:
    """A plain rclpy program (no ros2_vla code but the message) standing in for the robot and the policy:
    joint states that follow the commanded trajectories (like ros2_control's mock hardware: each joint
    moves linearly to the points of the latest command), and each chunk, stamped AHEAD s in the future,
    `gap` s apart. Prints the monotonic time of every send."""
    names, positions = _home_state(robot)
    topics = sorted(
        {a.trajectory_topic for a in robot.arms}
        | {a.gripper.topic for a in robot.arms if a.gripper and a.gripper.mode == "separate"}
    )
    return f"""
import time, rclpy
from rclpy.qos import qos_profile_sensor_data
from sensor_msgs.msg import JointState
from trajectory_msgs.msg import JointTrajectory
from ros2_vla.msg import ActionChunk
rclpy.init()
node = rclpy.create_node("plain_sender")
js = node.create_publisher(JointState, {robot.joint_states_topic!r}, qos_profile_sensor_data)
ch = node.create_publisher(ActionChunk, "/vla/action_chunk", 10)
names, state = {names!r}, dict(zip({names!r}, {positions!r}))
speed = dict.fromkeys(names, 0.0)
commands = []  # (receipt time, start positions, start velocities, trajectory)
def on_trajectory(msg):
    now = time.monotonic()
    follow(now)  # the state at receipt, not at the last update: each re-anchoring would lose that motion
    commands.append((now, [state[n] for n in msg.joint_names], [speed[n] for n in msg.joint_names], msg))
for topic in {topics!r}:
    node.create_subscription(JointTrajectory, topic, on_trajectory, 10)
def hermite(p0, v0, p1, v1, h, u):
    return ((2*u**3 - 3*u**2 + 1) * p0 + (u**3 - 2*u**2 + u) * h * v0
            + (-2*u**3 + 3*u**2) * p1 + (u**3 - u**2) * h * v1,
            ((6*u**2 - 6*u) * p0 + (3*u**2 - 4*u + 1) * h * v0 + (-6*u**2 + 6*u) * p1 + (3*u**2 - 2*u) * h * v1) / h)
def follow(now):
    # As a JointTrajectoryController plays a command (mock hardware follows it exactly): from the state
    # at receipt, a cubic through the points and their velocities (linear when they carry none).
    latest = {{}}
    for c in commands[-3:]:
        latest[tuple(c[3].joint_names)] = c
    for t0, q0, v0, msg in latest.values():
        prev_t, prev_q, prev_v = 0.0, q0, v0
        q, v = prev_q, [0.0] * len(prev_q)
        for p in msg.points:
            t = p.time_from_start.sec + p.time_from_start.nanosec * 1e-9
            pv = list(p.velocities) or None
            if now - t0 <= t:
                h, u = t - prev_t, (now - t0 - prev_t) / (t - prev_t)
                if pv is None:
                    q = [a + u * (b - a) for a, b in zip(prev_q, p.positions)]
                    v = [(b - a) / h for a, b in zip(prev_q, p.positions)]
                else:
                    qv = [hermite(a, va, b, vb, h, u) for a, va, b, vb in zip(prev_q, prev_v, p.positions, pv)]
                    q, v = [x for x, _ in qv], [y for _, y in qv]
                break
            prev_t, prev_q, prev_v = t, list(p.positions), pv or [0.0] * len(prev_q)
        else:
            q, v = prev_q, [0.0] * len(prev_q)
        state.update(zip(msg.joint_names, q))
        speed.update(zip(msg.joint_names, v))
def joint_state():
    for _ in range(20):  # take every command that arrived (the bridge streams at its control rate)
        rclpy.spin_once(node, timeout_sec=0.0)
    follow(time.monotonic())
    m = JointState(name=names, position=[state[n] for n in names])
    m.header.stamp = node.get_clock().now().to_msg()
    js.publish(m)
def pause(seconds):
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        joint_state(); time.sleep(0.01)
deadline = time.monotonic() + 20
while ch.get_subscription_count() == 0 and time.monotonic() < deadline:
    joint_state(); time.sleep(0.01)
pause(0.5)  # the bridge arms on the first joint state
for fields in {chunks!r}:
    c = ActionChunk(**fields)
    c.header.stamp.sec, c.header.stamp.nanosec = divmod(node.get_clock().now().nanoseconds + int({AHEAD} * 1e9), 10**9)
    print("sent", fields["sequence"], time.monotonic(), flush=True)
    ch.publish(c)
    pause({gap})
node.destroy_node()
rclpy.shutdown()
"""


def _ee_fields(robot: RobotConfig, deltas: np.ndarray, sequence: int) -> dict:
    return dict(
        embodiment=robot.name,
        action_space="ee_delta",
        dimension_names=EE[: deltas.shape[1]],
        dt=robot.action.dt,
        horizon=len(deltas),
        values=[float(v) for v in deltas.ravel()],
        sequence=sequence,
    )


def _aloha_fields(robot: RobotConfig, values: np.ndarray, sequence: int) -> dict:
    return dict(
        embodiment="aloha",
        action_space="joint_position",
        dimension_names=list(robot.action.dimension_names),
        dt=robot.action.dt,
        horizon=len(values),
        values=[float(v) for v in values.ravel()],
        sequence=sequence,
    )


# Small deltas first (no bound applies), then one far past the step limits and down into the floor of the box.
SMALL = np.array(
    [
        [0.006, -0.004, 0.005, 0.03, -0.02, 0.05, 1.0],
        [0.004, 0.006, -0.006, -0.02, 0.03, 0.02, 0.0],
        [-0.005, 0.002, 0.004, 0.01, 0.0, -0.04, 0.0],
        [0.002, -0.003, -0.002, 0.0, 0.02, 0.03, 1.0],
    ]
)
CLAMPED = {
    "franka": np.array([[0.2, 0.0, 0.0, 0.0, 0.0, 1.0]] + [[0.0, 0.0, -1.0, 0.0, 0.0, 0.0]] * 10),
    "widowx": np.array([[0.0, 0.0, -1.0, 0.0, 0.0, 0.5]] * 6),
}


def _aloha_values(robot: RobotConfig) -> tuple[np.ndarray, np.ndarray]:
    home = np.concatenate([np.r_[a.chain.home, 1.0] for a in robot.arms])  # gripper dims: openness, 1 = open
    small = home + np.linspace(0.01, 0.05, 5)[:, None] * np.cos(np.arange(14))[None, :]
    small[:, 6], small[:, 13] = [0.95, 0.9, 0.85, 0.8, 0.75], [1.0, 0.95, 0.9, 0.9, 0.95]
    beyond = np.tile(small[-1], (2, 1))
    beyond[:, 2] = beyond[:, 9] = 9.0  # both elbows far past their upper limit
    beyond[:, 6] = 2.0  # left gripper past fully open
    return small, beyond


class Received:
    """Messages of one topic with their monotonic receipt times."""

    def __init__(self, node, msg_type, topic: str) -> None:
        self.items: list[tuple[float, object]] = []
        node.create_subscription(msg_type, topic, lambda m: self.items.append((time.monotonic(), m)), 100)

    def after(self, t: float) -> list:
        return [m for ts, m in self.items if ts > t]


def _points(msg: JointTrajectory) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    t = np.array([p.time_from_start.sec + p.time_from_start.nanosec * 1e-9 for p in msg.points])
    q = np.array([p.positions for p in msg.points])
    qd = np.array([p.velocities for p in msg.points]) if msg.points[0].velocities else None
    return t, q, qd


def _run_sender(robot: RobotConfig, chunks: list[dict], gap: float) -> dict[int, float]:
    sender = subprocess.run(
        [sys.executable, "-c", _sender_script(robot, chunks, gap)], cwd="/", timeout=90, capture_output=True, text=True
    )
    assert sender.returncode == 0, sender.stderr
    return {
        int(w[1]): float(w[2]) for w in (line.split() for line in sender.stdout.splitlines()) if w and w[0] == "sent"
    }


def _answers(statuses: Received) -> dict[int, int]:
    """The bridge's answer to each chunk: the code of the first status naming it. (The sender's stand-in
    robot may later lag far enough on a busy CPU for a tracking hold; these tests are not about that.)"""
    codes: dict[int, int] = {}
    for _, s in statuses.items:
        if s.chunk_sequence:
            codes.setdefault(s.chunk_sequence, s.code)
    return codes


def _check_every_message(arm, msgs: list[JointTrajectory], n: int) -> None:
    assert msgs, f"no trajectory on {arm.trajectory_topic}"
    for m in msgs:
        assert tuple(m.joint_names[:n]) == arm.chain.joint_names
        t, q, qd = _points(m)
        check_arm_points(arm, t, q[:, :n], qd[:, :n])


@pytest.mark.parametrize("name", ["franka", "widowx"])
def test_ee_chunks_over_dds_reach_their_targets_within_limits(ros_node, name):
    robot = load_robot_config(name)
    arm = robot.arms[0]
    n = len(arm.chain.joint_names)
    statuses = Received(ros_node, BridgeStatus, "/vla/bridge/status")
    trajectories = Received(ros_node, JointTrajectory, arm.trajectory_topic)
    grippers = Received(ros_node, JointTrajectory, arm.gripper.topic)
    small, clamped = SMALL, CLAMPED[name]
    # The workspace box alone: with the collision check, the clamped descent stops above the table
    # (HALT_FOR_COLLISION, test_collision*.py) before it reaches the box's floor.
    with launched(name, "--enable", "--param", "bridge.check_collisions:=false") as proc:
        wait_for(lambda: statuses.items, 20, "status from the launched bridge")
        sent = _run_sender(robot, [_ee_fields(robot, small, 1), _ee_fields(robot, clamped, 2)], gap=2.0)
        wait_for(lambda: [s for _, s in statuses.items if s.chunk_sequence == 2], 10, "status of chunk 2")
        assert proc.poll() is None, "the launcher died"
    codes = _answers(statuses)
    assert codes == {1: BridgeStatus.OK, 2: BridgeStatus.WORKSPACE_LIMIT}, sorted(
        {s.message for _, s in statuses.items if s.chunk_sequence}
    )

    first = trajectories.after(sent[1])
    second = trajectories.after(sent[2])
    _check_every_message(arm, first, n)
    home = np.array(arm.chain.home)
    # Chunk 1 from rest at home: every point reaches its integrated target; the controller starts at home.
    t, q, qd = _points(first[0])
    assert len(q) == len(small)
    check_arm_points(arm, t, q, qd, home, np.zeros(n))
    for qk, T in zip(q, expected_targets(fk(arm.chain, home), small)):
        dp, dr = pose_errors(fk(arm.chain, qk), T)
        assert dp < POSE_TOL and dr < ROT_TOL, (dp, dr)
    g = grippers.after(sent[1])[0]
    tg, qg, _ = _points(g)
    check_gripper_points(arm, tg, qg[:, 0], arm.gripper.open_position)
    assert qg[:, 0].min() < arm.gripper.open_position and qg[-1, 0] == arm.gripper.open_position  # closes, opens again
    # Chunk 2 from where chunk 1 left the arm: the step clamp and the box cut every target.
    end = q[-1]
    t2, q2, qd2 = _points(second[0])
    assert len(q2) == len(clamped)
    check_arm_points(arm, t2, q2, qd2, end, np.zeros(n))
    targets = expected_targets(fk(arm.chain, end), clamped, robot.safety)
    assert targets[-1][2, 3] == robot.safety.workspace_min[2]
    lo, hi = np.array(robot.safety.workspace_min) - 1e-4, np.array(robot.safety.workspace_max) + 1e-4
    for qk, T in zip(q2, targets):
        dp, dr = pose_errors(fk(arm.chain, qk), T)
        assert dp < POSE_TOL and dr < ROT_TOL, (dp, dr)
        p = fk(arm.chain, qk)[:3, 3]
        assert np.all(p >= lo) and np.all(p <= hi)


def test_aloha_joint_chunks_over_dds_are_passed_through_clipped(ros_node):
    robot = load_robot_config("aloha")
    statuses = Received(ros_node, BridgeStatus, "/vla/bridge/status")
    trajectories = {a.name: Received(ros_node, JointTrajectory, a.trajectory_topic) for a in robot.arms}
    small, beyond = _aloha_values(robot)
    # The joint limits alone: the elbow clipped to its limit folds into the collision check.
    with launched("aloha", "--enable", "--param", "bridge.check_collisions:=false") as proc:
        wait_for(lambda: statuses.items, 20, "status from the launched bridge")
        sent = _run_sender(robot, [_aloha_fields(robot, small, 1), _aloha_fields(robot, beyond, 2)], gap=1.8)
        wait_for(lambda: [s for _, s in statuses.items if s.chunk_sequence == 2], 10, "status of chunk 2")
        assert proc.poll() is None, "the launcher died"
    codes = _answers(statuses)
    assert codes == {1: BridgeStatus.OK, 2: BridgeStatus.JOINT_LIMIT}, [s.message for _, s in statuses.items]
    for i, arm in enumerate(robot.arms):
        lower, upper = np.array([j.lower for j in arm.chain.joints]), np.array([j.upper for j in arm.chain.joints])
        spec = arm.gripper
        _check_every_message(arm, [m for _, m in trajectories[arm.name].items], 6)
        start = np.r_[arm.chain.home, spec.open_position]
        for seq, values in ((1, small), (2, beyond)):
            msg = trajectories[arm.name].after(sent[seq])[0]
            assert msg.joint_names == [*arm.chain.joint_names, spec.joint]  # the gripper rides in the trajectory
            t, q, qd = _points(msg)
            joints = np.clip(values[:, 7 * i : 7 * i + 6], lower, upper)
            openness = np.clip(values[:, 7 * i + 6], 0.0, 1.0)
            np.testing.assert_allclose(q[:, :6], joints, atol=1e-6)  # float32 on the wire
            np.testing.assert_allclose(
                q[:, 6], spec.closed_position + openness * (spec.open_position - spec.closed_position), atol=1e-6
            )
            check_arm_points(arm, t, q[:, :6], qd[:, :6], start[:6], np.zeros(6))
            check_gripper_points(arm, t, q[:, 6], start[6])
            start = q[-1]


def test_bad_input_over_dds_gets_its_status_and_no_trajectory(ros_node):
    robot = load_robot_config("franka")
    arm = robot.arms[0]
    statuses = Received(ros_node, BridgeStatus, "/vla/bridge/status")
    trajectories = Received(ros_node, JointTrajectory, arm.trajectory_topic)
    chunks = ros_node.create_publisher(ActionChunk, "/vla/action_chunk", 10)
    js = ros_node.create_publisher(JointState, robot.joint_states_topic, qos_profile_sensor_data)
    names, positions = _home_state(robot)
    feeding = {"on": True}
    ros_node.create_timer(0.02, lambda: feeding["on"] and js.publish(JointState(name=names, position=positions)))
    enable = ros_node.create_client(SetBool, "/vla/enable")

    def send(sequence: int, **change) -> BridgeStatus:
        fields = {**_ee_fields(robot, SMALL, sequence), **change}
        msg = ActionChunk(**fields)
        msg.header.stamp = ros_node.get_clock().now().to_msg()
        chunks.publish(msg)
        return wait_for(
            lambda: [s for _, s in statuses.items if s.chunk_sequence == sequence], 10, f"status of chunk {sequence}"
        )[0]

    def no_trajectory_since(t: float) -> None:
        time.sleep(0.4)  # many control periods
        assert trajectories.after(t) == []

    with launched("franka") as proc:
        wait_for(lambda: chunks.get_subscription_count() > 0 and statuses.items, 20, "the bridge to come up")
        t0 = time.monotonic()
        state = send(1)
        assert state.code == BridgeStatus.DISARMED and not state.enabled, state.message
        no_trajectory_since(t0)

        assert enable.wait_for_service(timeout_sec=10)
        reply = enable.call_async(SetBool.Request(data=True))
        wait_for(reply.done, 10, "/vla/enable to answer")
        assert reply.result().success, reply.result().message

        t0 = time.monotonic()
        values = list(_ee_fields(robot, SMALL, 0)["values"])
        values[3] = float("nan")
        state = send(2, values=values)
        assert state.code == BridgeStatus.CHUNK_REJECTED and "NaN" in state.message, state.message
        state = send(3, embodiment="ur5")
        assert state.code == BridgeStatus.CHUNK_REJECTED and "ur5" in state.message, state.message
        no_trajectory_since(t0)

        feeding["on"] = False
        t0 = time.monotonic()
        wait_for(
            lambda: [s for ts, s in statuses.items if ts > t0 and s.code == BridgeStatus.STALE_INPUT], 5, "STALE_INPUT"
        )
        time.sleep(0.2)
        holds = trajectories.after(t0)
        assert len(holds) == 1 and len(holds[0].points) == 1, holds  # one hold at the measured position
        np.testing.assert_allclose(holds[0].points[0].positions, arm.chain.home)
        t1 = time.monotonic()
        state = send(4)
        assert state.code == BridgeStatus.STALE_INPUT, state.message
        no_trajectory_since(t1)

        feeding["on"] = True
        time.sleep(0.2)
        t2 = time.monotonic()
        state = send(5)
        assert state.code == BridgeStatus.OK, state.message
        wait_for(lambda: trajectories.after(t2), 5, "the trajectory of chunk 5 once joint states are back")

        # a slow model: one step of 0.1 s whose observation is 0.4 s old moves the arm, late but whole
        one_step = {"horizon": 1, "values": list(_ee_fields(robot, SMALL, 0)["values"])[:7], "dt": 0.1}
        time.sleep(0.5)  # chunk 5's motion is over
        t3 = time.monotonic()
        msg = ActionChunk(**{**_ee_fields(robot, SMALL, 6), **one_step})
        msg.header.stamp = (ros_node.get_clock().now() - Duration(seconds=0.4)).to_msg()
        chunks.publish(msg)
        state = wait_for(lambda: [s for _, s in statuses.items if s.chunk_sequence == 6], 10, "status of chunk 6")[0]
        assert state.code == BridgeStatus.OK and 0.29 < state.chunk_lateness < 1.0, (
            state.chunk_lateness,
            state.message,
        )
        wait_for(lambda: trajectories.after(t3), 5, "the trajectory of the late chunk 6")
        # and an older observation after it is refused rather than rewinding the plan
        msg = ActionChunk(**{**_ee_fields(robot, SMALL, 7), **one_step})
        msg.header.stamp = (ros_node.get_clock().now() - Duration(seconds=2.0)).to_msg()
        chunks.publish(msg)
        state = wait_for(lambda: [s for _, s in statuses.items if s.chunk_sequence == 7], 10, "status of chunk 7")[0]
        assert state.code == BridgeStatus.CHUNK_REJECTED and "out of order" in state.message, state.message
        assert proc.poll() is None


def _bridge_node(*params: str) -> subprocess.CompletedProcess:
    args = [a for p in params for a in ("-p", p)]
    return subprocess.run(
        [sys.executable, "-m", "ros2_vla.nodes.bridge_node", "--ros-args", *args],
        cwd="/",
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_moveit_backend_without_moveit_exits_2_with_one_clear_line():
    try:
        import moveit_msgs  # noqa: F401
    except ModuleNotFoundError:
        pass
    else:
        pytest.skip("moveit_msgs is installed: the backend is available here")
    out = _bridge_node("ik_backend:=moveit", "moveit_group:=fr3_arm")
    assert out.returncode == 2, out.stderr
    lines = out.stderr.strip().splitlines()
    assert (
        len(lines) == 1 and "error" in lines[0] and "moveit_msgs" in lines[0] and "ik_backend:=pinocchio" in lines[0]
    ), out.stderr
    assert "Traceback" not in out.stderr


def test_unknown_ik_backend_exits_2():
    out = _bridge_node("ik_backend:=ikfast")
    assert out.returncode == 2 and "unknown ik_backend 'ikfast'" in out.stderr and "Traceback" not in out.stderr, (
        out.stderr
    )


def test_blocking_client_gets_its_answer_inside_a_callback_without_deadlock(ros_node):
    from rclpy.executors import SingleThreadedExecutor
    from rclpy.node import Node

    from ros2_vla.ros.blocking_client import BlockingClient

    def echo(request, response):
        response.success, response.message = request.data, "pong"
        return response

    ros_node.create_service(SetBool, "/test_blocking_client/echo", echo)
    # A single-threaded "bridge" that waits for the reply inside its own timer callback, as bridge_node
    # does in its chunk callback with ik_backend moveit.
    bridge = Node("blocking_caller")
    executor = SingleThreadedExecutor()
    executor.add_node(bridge)
    client = BlockingClient(SetBool, "/test_blocking_client/echo", "blocking_caller_client")
    absent = BlockingClient(SetBool, "/test_blocking_client/nobody", "blocking_caller_absent")
    answers = []

    def on_timer() -> None:
        if not answers:
            answers.append(client.call(SetBool.Request(data=True), timeout=5.0))
            started = time.monotonic()
            answers.append(absent.call(SetBool.Request(data=True), timeout=5.0))
            answers.append(time.monotonic() - started)

    try:
        assert client.wait_for_service(10.0)
        bridge.create_timer(0.01, on_timer)
        deadline = time.monotonic() + 15.0
        while len(answers) < 3 and time.monotonic() < deadline:
            executor.spin_once(timeout_sec=0.05)
        reply, missing, waited = answers
        assert reply.success and reply.message == "pong"
        assert missing is None and waited < 0.5  # no server: no wait
    finally:
        client.destroy()
        absent.destroy()
        executor.remove_node(bridge)
        bridge.destroy_node()
