"""sim_node over real DDS: the closed loop through bridge_node succeeds, bad trajectories are refused
while the arm holds, a reset in mid-motion is safe, and a bad parameter fails the reset call, not the node.

Every test starts `ros2-vla launch ROBOT --sim ...` as real processes and talks to them from a
test-side rclpy node.
"""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest
from helpers import launched, wait_for

pytest.importorskip("rclpy")
from rcl_interfaces.msg import Parameter, ParameterType, ParameterValue  # noqa: E402
from rcl_interfaces.srv import SetParameters  # noqa: E402
from rclpy.qos import qos_profile_sensor_data  # noqa: E402
from sensor_msgs.msg import Image, JointState  # noqa: E402
from std_msgs.msg import Bool, String  # noqa: E402
from std_srvs.srv import Trigger  # noqa: E402
from trajectory_msgs.msg import JointTrajectory, JointTrajectoryPoint  # noqa: E402

from ros2_vla.bringup import NAMES  # noqa: E402
from ros2_vla.config import RobotConfig, load_robot_config  # noqa: E402
from ros2_vla.kinematics.model import ArmModel  # noqa: E402
from ros2_vla.ros.convert import sec_to_duration, time_to_sec  # noqa: E402
from ros2_vla.ros.qos import COMMAND, LATCHED, STATUS  # noqa: E402
from ros2_vla.sim.tasks import Task, sample_task  # noqa: E402
from ros2_vla.sim.world import Simulation  # noqa: E402

SERVO_NOISE = 2e-3  # [rad or m] how far a holding joint may drift


class JointLog:
    """Every /joint_states message of the robot, as (receipt time [s], positions (n,)) in `state_names` order."""

    def __init__(self, node, robot: RobotConfig) -> None:
        self.names = state_names(robot)
        self.samples: list[tuple[float, np.ndarray]] = []
        self._lock = threading.Lock()
        node.create_subscription(JointState, robot.joint_states_topic, self._on, qos_profile_sensor_data)

    def _on(self, msg: JointState) -> None:
        index = {n: i for i, n in enumerate(msg.name)}
        q = np.array([msg.position[index[n]] if n in index else np.nan for n in self.names])
        with self._lock:
            self.samples.append((time.monotonic(), q))

    def latest(self) -> np.ndarray | None:
        with self._lock:
            return self.samples[-1][1] if self.samples else None

    def since(self, t: float) -> list[tuple[float, np.ndarray]]:
        with self._lock:
            return [s for s in self.samples if s[0] >= t]


def state_names(robot: RobotConfig) -> list[str]:
    """Arm by arm: the chain's joints, then its gripper joint (as sim_node publishes them)."""
    return [n for arm in robot.arms for n in (*arm.chain.joint_names, *([arm.gripper.joint] if arm.gripper else []))]


def home(robot: RobotConfig) -> np.ndarray:
    """Positions at reset in config joint order: each chain's home, grippers open."""
    q = []
    for arm in robot.arms:
        q += list(arm.chain.home)
        if arm.gripper is not None:
            q.append(arm.gripper.open_position)
    return np.array(q)


def limits(robot: RobotConfig) -> tuple[np.ndarray, np.ndarray]:
    lower, upper = [], []
    for arm in robot.arms:
        lower += [j.lower for j in arm.chain.joints]
        upper += [j.upper for j in arm.chain.joints]
        if arm.gripper is not None:
            lower.append(min(arm.gripper.open_position, arm.gripper.closed_position))
            upper.append(max(arm.gripper.open_position, arm.gripper.closed_position))
    return np.array(lower), np.array(upper)


def task_of(robot: RobotConfig, seed: int) -> Task:
    """The task sim_node draws for `seed` (task_kind unset)."""
    sim = Simulation(robot, seed=seed)
    try:
        return sample_task(robot, np.random.default_rng(seed), sim=sim)
    finally:
        sim.close()


def first_seed(robot: RobotConfig, kind: str) -> int:
    return next(s for s in range(50) if task_of(robot, s).kind == kind)


def latest_task(node) -> list[str]:
    tasks: list[str] = []
    node.create_subscription(String, NAMES.sim_task, lambda m: tasks.append(m.data), LATCHED)
    return tasks


# --- 1. the closed loop ---------------------------------------------------------------------------
@pytest.mark.slow
@pytest.mark.parametrize(("name", "kind"), [("franka", "pick"), ("widowx", "pick"), ("aloha", "bimanual_pick")])
def test_expert_through_the_bridge_succeeds_over_dds(ros_node, name, kind):
    robot = load_robot_config(name)
    seed = first_seed(robot, kind)
    task = task_of(robot, seed)
    tasks = latest_task(ros_node)
    success: list[bool] = []
    ros_node.create_subscription(Bool, NAMES.sim_success, lambda m: success.append(m.data), STATUS)
    joints = JointLog(ros_node, robot)
    with launched(name, "--sim", "--expert", "--seed", str(seed)) as proc:
        wait_for(lambda: tasks, 20, "the task on /sim/task")
        assert tasks[-1] == task.instruction
        wait_for(lambda: joints.latest() is not None, 10, "joint states")
        wait_for(
            lambda: any(success) or proc.poll() is not None, 40, f"/sim/success for {task.instruction!r} (seed {seed})"
        )
        assert proc.poll() is None, "the launcher died"
        assert any(success)
        # The episode starts at home (the first state this test sees may come later, under load): a
        # pick takes the TCP from home down to the table, tens of centimetres.
        index = {n: i for i, n in enumerate(joints.names)}
        travel = [
            np.linalg.norm(
                ArmModel.from_arm(a).fk(joints.latest()[[index[n] for n in a.chain.joint_names]])[:3, 3]
                - ArmModel.from_arm(a).fk(np.array(a.chain.home))[:3, 3]
            )
            for a in robot.arms
        ]
        assert max(travel) > 0.1, f"success without the arm moving (TCP travel {travel} m)"


# --- 2. bad trajectories are refused --------------------------------------------------------------
def _trajectory(names, rows, times) -> JointTrajectory:
    """A JointTrajectory built field by field, so it can be as malformed as the test wants."""
    msg = JointTrajectory(joint_names=list(names))
    for row, t in zip(rows, times):
        msg.points.append(JointTrajectoryPoint(positions=[float(v) for v in row], time_from_start=sec_to_duration(t)))
    return msg


@pytest.mark.slow
def test_the_cameras_of_one_rate_are_captured_at_one_instant(ros_node):
    robot = load_robot_config("franka")
    stamps = {c.name: set() for c in robot.cameras}
    for cam in robot.cameras:
        ros_node.create_subscription(
            Image, cam.topic, lambda m, c=cam.name: stamps[c].add(time_to_sec(m.header.stamp)), qos_profile_sensor_data
        )
    with launched("franka", "--sim"):
        wait_for(lambda: all(len(s) >= 10 for s in stamps.values()), 30, "10 frames from every camera")
    scene, wrist = stamps["scene"], stamps["wrist"]
    # Best-effort delivery may drop a frame here and there; the frames that came share their stamps.
    assert len(scene & wrist) >= 0.8 * min(len(scene), len(wrist))


def test_bad_trajectories_are_rejected_and_the_arm_holds(ros_node):
    robot = load_robot_config("franka")
    arm = robot.arms[0]
    names, q0 = arm.chain.joint_names, np.array(arm.chain.home)
    joints = JointLog(ros_node, robot)
    pub = ros_node.create_publisher(JointTrajectory, arm.trajectory_topic, COMMAND)
    gripper_pub = ros_node.create_publisher(JointTrajectory, arm.gripper.topic, COMMAND)
    target = q0.copy()
    target[0] += 0.3
    bad = {
        "unknown joint": _trajectory((*names[:-1], "no_such_joint"), [target], [1.0]),
        "NaN position": _trajectory(names, [np.where(np.arange(len(names)) == 2, np.nan, target)], [1.0]),
        "times not increasing": _trajectory(names, [q0, target, target], [0.5, 0.5, 1.0]),
        "times decreasing": _trajectory(names, [target, q0], [1.0, 0.5]),
        "too few positions": _trajectory(names, [target[:3]], [1.0]),
        "joint twice": _trajectory((names[0], names[0]), [[target[0], target[0]]], [1.0]),
    }
    with launched("franka", "--sim") as proc:
        wait_for(
            lambda: pub.get_subscription_count() > 0 and gripper_pub.get_subscription_count() > 0,
            20,
            "sim_node's controller subscriptions",
        )
        wait_for(lambda: len(joints.since(time.monotonic() - 0.5)) > 10, 10, "joint states at rate")
        time.sleep(0.5)  # the bridge is disarmed: nothing else commands the arm
        before = joints.latest()
        t_bad = time.monotonic()
        for msg in bad.values():
            pub.publish(msg)
            time.sleep(0.05)
        gripper_pub.publish(_trajectory((arm.gripper.joint,), [[np.inf]], [0.5]))
        time.sleep(1.5)
        after = joints.since(t_bad)
        assert len(after) > 50, "joint states stopped: the sim died on a bad trajectory"
        drift = max(float(np.max(np.abs(q - before))) for _, q in after)
        assert np.all(np.isfinite([q for _, q in after]))
        assert drift < SERVO_NOISE, f"the arm moved {drift:.4f} on rejected trajectories"
        assert proc.poll() is None

        # A valid trajectory from the same publisher does move it: the check above can fail.
        pub.publish(_trajectory(names, [target], [0.8]))
        wait_for(lambda: abs(joints.latest()[0] - target[0]) < 0.01, 5, f"{names[0]} to reach {target[0]:.2f} rad")
        assert proc.poll() is None
    output = proc.stdout.read()
    assert "rejected, holding" in output, output  # sim_node's warning (throttled to one a second)
    assert "Traceback" not in output, output


# --- 3. reset in mid-motion -----------------------------------------------------------------------
@pytest.mark.slow
def test_reset_during_motion_returns_home_safely(ros_node):
    robot = load_robot_config("franka")
    seed = first_seed(robot, "pick")
    q_home = home(robot)
    lower, upper = limits(robot)
    joints = JointLog(ros_node, robot)
    tasks = latest_task(ros_node)
    client = ros_node.create_client(Trigger, NAMES.sim_reset)
    with launched("franka", "--sim", "--expert", "--seed", str(seed)) as proc:
        wait_for(lambda: client.service_is_ready(), 20, "/sim/reset")
        wait_for(
            lambda: joints.latest() is not None and np.max(np.abs(joints.latest() - q_home)[:7]) > 0.15,
            20,
            "the expert to move the arm away from home",
        )
        future = client.call_async(Trigger.Request())
        response = wait_for(lambda: future.result(), 5, "the /sim/reset response")
        t_reset = time.monotonic()
        assert response.success and str(seed + 1) in response.message, response.message
        wait_for(
            lambda: any(np.max(np.abs(q - q_home)) < 0.01 for _, q in joints.since(t_reset - 0.05)),
            1.0,
            "joint states at home after the reset",
        )
        wait_for(lambda: tasks and tasks[-1] == task_of(robot, seed + 1).instruction, 5, "the new task on /sim/task")
        time.sleep(2.0)
        after = joints.since(t_reset - 0.05)
        positions = np.array([q for _, q in after])
        assert np.all(np.isfinite(positions)), "NaN in joint states after the reset"
        margin = 1e-3
        outside = (positions < lower - margin) | (positions > upper + margin)
        assert not outside.any(), f"joints {np.array(state_names(robot))[outside.any(axis=0)]} left their limits"
        assert len(after) > 150, "joint states stopped after the reset"
        assert proc.poll() is None


@pytest.mark.slow
def test_after_a_reset_the_bridge_holds_instead_of_dragging_the_arm_back(ros_node):
    # Without the bridge's tracking-error hold it kept planning from its pre-reset plan and pulled the
    # arm back to the old pose within 0.2 s, at 3.8x the FR3's velocity limit.
    robot = load_robot_config("franka")
    arm = robot.arms[0]
    seed = first_seed(robot, "pick")
    q_home = np.array(arm.chain.home)
    vmax = np.array([j.velocity for j in arm.chain.joints])
    states: list[tuple[float, np.ndarray, np.ndarray]] = []  # (stamp [s], positions, velocities)
    index = list(arm.chain.joint_names)

    def on_state(msg: JointState) -> None:
        at = {n: i for i, n in enumerate(msg.name)}
        states.append(
            (
                time_to_sec(msg.header.stamp),
                np.array([msg.position[at[n]] for n in index]),
                np.array([msg.velocity[at[n]] for n in index]),
            )
        )

    ros_node.create_subscription(JointState, robot.joint_states_topic, on_state, qos_profile_sensor_data)
    client = ros_node.create_client(Trigger, NAMES.sim_reset)
    with launched("franka", "--sim", "--expert", "--seed", str(seed)):
        wait_for(lambda: client.service_is_ready(), 20, "/sim/reset")
        # Well past the bridge's tracking-error limit: a reset by less is, to the bridge, the arm lagging its
        # command, which it rightly keeps driving (it moved 0.15 rad back after a reset from 0.34 rad, limit 0.3).
        far = 2 * robot.safety.max_tracking_error
        wait_for(lambda: states and np.max(np.abs(states[-1][1] - q_home)) > far, 20, "the expert to move the arm")
        t_call = ros_node.get_clock().now().nanoseconds * 1e-9
        future = client.call_async(Trigger.Request())
        wait_for(lambda: future.result(), 5, "the /sim/reset response")
        time.sleep(1.0)
    # Timed by the sim's stamps, not by arrival here: on a loaded machine states from before the reset
    # still arrive after its response. The reset is the first state back at home.
    ordered = sorted((s for s in states if s[0] >= t_call), key=lambda s: s[0])
    t_reset = next((t for t, q, _ in ordered if np.max(np.abs(q - q_home)) < 0.02), None)
    assert t_reset is not None, "no joint state at home after /sim/reset"
    after = [(t - t_reset, q, v) for t, q, v in ordered if t >= t_reset]
    early = max(float(np.max(np.abs(q - q_home))) for t, q, _ in after if t < 0.25)
    too_fast = max(float(np.max(np.abs(v) / vmax)) for _, _, v in after)
    # From home, the new task's first chunks move the arm slowly; the old plan would pull it far and fast.
    assert early < 0.1, f"the arm left home by {early:.2f} rad within 0.25 s of the reset"
    assert too_fast < 1.2, f"a joint reached {too_fast:.1f}x its velocity limit after the reset"


def test_a_trajectory_sent_before_a_reset_is_ignored_after_it(ros_node):
    # A trajectory stamped before /sim/reset but delivered after it was planned for the old scene.
    robot = load_robot_config("franka")
    arm = robot.arms[0]
    names, q_home = arm.chain.joint_names, np.array(arm.chain.home)
    target = q_home.copy()
    target[0] += 0.3
    joints = JointLog(ros_node, robot)
    pub = ros_node.create_publisher(JointTrajectory, arm.trajectory_topic, COMMAND)
    client = ros_node.create_client(Trigger, NAMES.sim_reset)
    with launched("franka", "--sim") as proc:
        wait_for(lambda: client.service_is_ready() and pub.get_subscription_count() > 0, 20, "sim_node")
        stale = _trajectory(names, [target], [0.3])
        stale.header.stamp = ros_node.get_clock().now().to_msg()  # sent now, delivered after the reset
        future = client.call_async(Trigger.Request())
        wait_for(lambda: future.result(), 5, "the /sim/reset response")
        pub.publish(stale)
        time.sleep(1.0)
        assert abs(joints.latest()[0] - q_home[0]) < 0.01, "the arm followed a trajectory sent before the reset"
        fresh = _trajectory(names, [target], [0.3])
        fresh.header.stamp = ros_node.get_clock().now().to_msg()
        pub.publish(fresh)
        wait_for(lambda: abs(joints.latest()[0] - target[0]) < 0.01, 5, "a trajectory sent after the reset to move it")
        assert proc.poll() is None
    assert "stamped before the last reset: ignored" in proc.stdout.read()


def test_a_bad_start_jitter_disturbance_or_slip_fails_the_reset_call_and_a_good_one_takes_effect(ros_node):
    robot = load_robot_config("franka")
    joints = JointLog(ros_node, robot)
    reset = ros_node.create_client(Trigger, NAMES.sim_reset)
    params = ros_node.create_client(SetParameters, "/sim/set_parameters")

    def call(client, request, what):
        future = client.call_async(request)
        return wait_for(lambda: future.result(), 5, what)

    def set_param(name: str, value: float) -> None:
        value_msg = ParameterValue(type=ParameterType.PARAMETER_DOUBLE, double_value=value)
        result = call(
            params,
            SetParameters.Request(parameters=[Parameter(name=name, value=value_msg)]),
            "the set_parameters response",
        )
        assert result.results[0].successful

    with launched("franka", "--sim") as proc:
        wait_for(
            lambda: reset.service_is_ready() and params.service_is_ready(), 20, "/sim/reset and /sim/set_parameters"
        )
        set_param("start_jitter", -0.1)
        response = call(reset, Trigger.Request(), "the /sim/reset response")
        assert not response.success and "start_jitter must be >= 0" in response.message
        assert proc.poll() is None  # the node answered; it did not die
        set_param("start_jitter", 0.3)
        response = call(reset, Trigger.Request(), "the /sim/reset response")
        assert response.success, response.message
        t_reset = time.monotonic()
        wait_for(lambda: len(joints.since(t_reset)) > 5, 5, "joint states after the reset")
        q = joints.since(t_reset)[-1][1][:7]
        assert 0.05 < np.max(np.abs(q - np.array(robot.arms[0].chain.home))) <= 0.3 + SERVO_NOISE
        set_param("disturbance", -0.01)
        response = call(reset, Trigger.Request(), "the /sim/reset response")
        assert not response.success and "disturbance must be >= 0" in response.message
        set_param("disturbance", 0.05)
        response = call(reset, Trigger.Request(), "the /sim/reset response")
        assert response.success, response.message
        t_reset = time.monotonic()
        wait_for(lambda: len(joints.since(t_reset)) > 5, 5, "joint states after the reset")
        start = joints.since(t_reset)[0][1][:7]
        time.sleep(2.0)  # no trajectory is sent: the servos hold the start, off by the wandering offset
        assert np.max(np.abs(joints.since(t_reset)[-1][1][:7] - start)) > 0.01
        set_param("slip", 1.5)
        response = call(reset, Trigger.Request(), "the /sim/reset response")
        assert not response.success and "slip must be a chance in [0, 1]" in response.message
        set_param("slip", 1.0)
        response = call(reset, Trigger.Request(), "the /sim/reset response")
        assert response.success, response.message
