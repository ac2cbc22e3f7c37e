"""Bridge (core, no ROS): commands reach the commanded targets within every limit, bad input is refused with
its status and no trajectory, and a new chunk takes over without a jump."""

from __future__ import annotations

import functools
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import yaml
from bridge_checks import check_arm_points, check_gripper_points, expected_targets, fk, pose_errors
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from ros2_vla.actions.chunk import Chunk
from ros2_vla.bridge.bridge import Bridge, TrajectoryCommand
from ros2_vla.bridge.status import BridgeCode
from ros2_vla.config import RobotConfig, load_robot_config
from ros2_vla.ik.params import IkParams, IkResult
from ros2_vla.ik.solve import solve_ik
from ros2_vla.trajectory.blend_config import BLEND_MODES, BlendConfig

EE = ("x", "y", "z", "roll", "pitch", "yaw", "gripper")
POSE_TOL, ROT_TOL = 1e-3, 0.01  # [m], [rad]: the acceptance bound on FK of every point
IK = IkParams()


@functools.cache
def _robot(name: str) -> RobotConfig:
    return load_robot_config(name)


def _joint_state(robot: RobotConfig, q: dict[str, np.ndarray] | None = None) -> tuple[list[str], list[float]]:
    names, positions = [], []
    for arm in robot.arms:
        names += list(arm.chain.joint_names)
        positions += [float(x) for x in (arm.chain.home if q is None else q[arm.name])]
        if arm.gripper is not None:
            names.append(arm.gripper.joint)
            positions.append(arm.gripper.open_position)
    return names, positions


def _armed(robot: RobotConfig, now: float = 0.0, q=None, **kwargs) -> Bridge:
    # The layers before the collision check (workspace box, limits, blending) are tested here, with chunks
    # that run the TCP to the workspace floor or fold ALOHA's elbows: test_collision.py tests the check.
    kwargs.setdefault("check_collisions", False)
    bridge = Bridge(robot, **kwargs)
    bridge.update_joint_state(*_joint_state(robot, q), now)
    ok, message, commands = bridge.set_enabled(True, now)
    assert ok and commands == [], message
    return bridge


def _chunk(robot: RobotConfig, values, names=EE, space="ee_delta", stamp=0.0, dt=None, sequence=1, **fields) -> Chunk:
    values = np.asarray(values, dtype=np.float64)
    base = dict(
        embodiment=robot.name,
        action_space=space,
        dimension_names=tuple(names),
        dt=robot.action.dt if dt is None else dt,
        horizon=values.shape[0],
        values=values.ravel(),
        stamp=stamp,
        sequence=sequence,
    )
    return Chunk(**{**base, **fields})


def _aloha_chunk(values, **kwargs) -> Chunk:
    robot = _robot("aloha")
    return _chunk(robot, values, names=robot.action.dimension_names, space="joint_position", **kwargs)


def _by_topic(commands: list[TrajectoryCommand]) -> dict[str, TrajectoryCommand]:
    topics = [c.topic for c in commands]
    assert len(set(topics)) == len(topics), topics
    return {c.topic: c for c in commands}


def _yaml_variant(tmp_path: Path, name: str, **safety) -> RobotConfig:
    """The robot's config with some safety fields changed, as a file of its own."""
    raw = yaml.safe_load(_robot(name).source.read_text())
    raw["safety"].update(safety)
    path = tmp_path / f"{name}.yaml"
    path.write_text(yaml.safe_dump(raw))
    return load_robot_config(path)


class PlayedTrajectory:
    """What a JointTrajectoryController plays: from its state when a command arrives, a cubic through the
    command's points and velocities; it holds the last point afterwards."""

    def __init__(self, now: float, q: np.ndarray) -> None:
        self.t, self.q, self.qd = np.array([now]), np.asarray(q, float)[None, :], np.zeros((1, len(q)))

    def receive(self, now: float, c: TrajectoryCommand) -> None:
        q, qd = self.sample(now)
        self.t = np.concatenate([[now], now + c.times_from_start])
        self.q = np.vstack([q, c.positions])
        self.qd = None if c.velocities is None else np.vstack([qd, c.velocities])  # None: linear

    def sample(self, t: float) -> tuple[np.ndarray, np.ndarray]:
        if t <= self.t[0]:
            return self.q[0].copy(), np.zeros(self.q.shape[1]) if self.qd is None else self.qd[0].copy()
        if t >= self.t[-1]:
            return self.q[-1].copy(), np.zeros(self.q.shape[1])
        i = int(np.searchsorted(self.t, t, side="right")) - 1
        h, u = self.t[i + 1] - self.t[i], (t - self.t[i]) / (self.t[i + 1] - self.t[i])
        if self.qd is None:
            return self.q[i] + u * (self.q[i + 1] - self.q[i]), (self.q[i + 1] - self.q[i]) / h
        p0, v0, p1, v1 = self.q[i], self.qd[i] * h, self.q[i + 1], self.qd[i + 1] * h
        pos = (
            (2 * u**3 - 3 * u**2 + 1) * p0
            + (u**3 - 2 * u**2 + u) * v0
            + (-2 * u**3 + 3 * u**2) * p1
            + (u**3 - u**2) * v1
        )
        vel = (
            (6 * u**2 - 6 * u) * p0 + (3 * u**2 - 4 * u + 1) * v0 + (-6 * u**2 + 6 * u) * p1 + (3 * u**2 - 2 * u) * v1
        ) / h
        return pos, vel


def _controllers(robot: RobotConfig) -> dict[str, PlayedTrajectory]:
    """One played trajectory per command topic, at the config's home (grippers open)."""
    out = {}
    for arm in robot.arms:
        g = arm.gripper
        if g is not None and g.mode == "in_trajectory":
            out[arm.trajectory_topic] = PlayedTrajectory(0.0, np.r_[arm.chain.home, g.open_position])
        else:
            out[arm.trajectory_topic] = PlayedTrajectory(0.0, np.array(arm.chain.home))
            if g is not None:
                out[g.topic] = PlayedTrajectory(0.0, np.array([g.open_position]))
    return out


def _followed(robot: RobotConfig, played: dict[str, PlayedTrajectory], t: float) -> tuple[list[str], list[float]]:
    """The joint state of a perfect follower: each arm is where its controller plays it at t."""
    return _joint_state(
        robot, {a.name: played[a.trajectory_topic].sample(t)[0][: len(a.chain.home)] for a in robot.arms}
    )


def _check_command(bridge: Bridge, c: TrajectoryCommand, played: dict[str, PlayedTrajectory], now: float) -> None:
    """Every limit, from the state the controller is in when the command arrives."""
    q_now, qd_now = played[c.topic].sample(now)
    for arm in bridge.robot.arms:
        n = len(arm.chain.joint_names)
        if c.topic == arm.trajectory_topic:
            assert c.joint_names[:n] == arm.chain.joint_names
            check_arm_points(arm, c.times_from_start, c.positions[:, :n], c.velocities[:, :n], q_now[:n], qd_now[:n])
            if len(c.joint_names) > n:
                # A gripper inside the arm trajectory is played as a cubic, not the bridge's piecewise-linear
                # gripper path: its points are checked from the bridge's commanded gripper position.
                assert c.joint_names[n:] == (arm.gripper.joint,)
                check_gripper_points(
                    arm, c.times_from_start, c.positions[:, n], bridge.grippers[arm.name].sample(now)[0][0]
                )
        elif arm.gripper is not None and c.topic == arm.gripper.topic:
            assert c.joint_names == (arm.gripper.joint,) and c.velocities is None  # played linearly
            check_gripper_points(arm, c.times_from_start, c.positions[:, 0], q_now[0])


def _inside_box(robot: RobotConfig, c: TrajectoryCommand) -> None:
    arm = robot.arms[0]
    if c.topic != arm.trajectory_topic:
        return
    lo = np.array(robot.safety.workspace_min) - IK.position_tolerance
    hi = np.array(robot.safety.workspace_max) + IK.position_tolerance
    for q in c.positions:
        p = fk(arm.chain, q)[:3, 3]
        assert np.all(p >= lo) and np.all(p <= hi), f"TCP {p} leaves the workspace box"


# --- commands reach the commanded targets --------------------------------------------------------------------


@pytest.mark.parametrize("name", ["franka", "widowx"])
def test_points_reach_the_integrated_delta_targets(name):
    robot = _robot(name)
    arm = robot.arms[0]
    deltas = np.array(
        [
            [0.01, -0.004, 0.006, 0.03, -0.02, 0.05, 1.0],
            [0.008, 0.0, -0.01, -0.02, 0.01, 0.04, 0.0],
            [-0.005, 0.01, 0.0, 0.0, 0.03, -0.06, 0.0],
            [0.0, 0.006, 0.012, 0.01, 0.0, 0.02, 1.0],
        ]
    )
    bridge = _armed(robot)
    state = bridge.on_chunk(_chunk(robot, deltas), 0.0)
    assert state.code == BridgeCode.OK, state.message
    commands = _by_topic(bridge.tick(0.0))
    c = commands[arm.trajectory_topic]
    assert c.joint_names == arm.chain.joint_names and len(c.positions) == len(deltas)
    check_arm_points(
        arm, c.times_from_start, c.positions, c.velocities, np.array(arm.chain.home), np.zeros(len(c.joint_names))
    )
    targets = expected_targets(fk(arm.chain, arm.chain.home), deltas)
    for q, T in zip(c.positions, targets):
        dp, dr = pose_errors(fk(arm.chain, q), T)
        assert dp < POSE_TOL and dr < ROT_TOL, (dp, dr)
    assert np.all(np.diff(c.times_from_start) >= robot.action.dt - 1e-9)  # never faster than the policy's pace
    g = commands[arm.gripper.topic]  # binarized 1 = open, 0 = closed, rate-limited on the way
    assert g.positions[0, 0] == arm.gripper.open_position
    assert g.positions[-1, 0] == arm.gripper.open_position
    assert g.positions[1:-1, 0].min() < arm.gripper.open_position


def test_aloha_points_are_the_commanded_joints_with_grippers_in_the_trajectory():
    robot = _robot("aloha")
    home = np.concatenate([np.r_[a.chain.home, 0.5] for a in robot.arms])  # gripper dims are openness
    offsets = np.linspace(0.0, 0.06, 4)[:, None] * np.sin(np.arange(14))[None, :]
    values = home[None, :] + offsets
    values[:, 6], values[:, 13] = [0.95, 0.8, 0.65, 0.5], [0.9, 0.95, 1.0, 0.85]  # within the gripper speed
    bridge = _armed(robot)
    assert bridge.on_chunk(_aloha_chunk(values), 0.0).code == BridgeCode.OK
    commands = _by_topic(bridge.tick(0.0))
    assert set(commands) == {a.trajectory_topic for a in robot.arms}
    for i, arm in enumerate(robot.arms):
        c = commands[arm.trajectory_topic]
        assert c.joint_names == arm.chain.joint_names + (arm.gripper.joint,)
        cols = slice(7 * i, 7 * i + 6)
        np.testing.assert_allclose(c.positions[:, :6], values[:, cols], atol=1e-6)  # float32 on the wire
        g = arm.gripper
        np.testing.assert_allclose(
            c.positions[:, 6],
            g.closed_position + values[:, 7 * i + 6] * (g.open_position - g.closed_position),
            atol=1e-6,
        )
        check_arm_points(
            arm, c.times_from_start, c.positions[:, :6], c.velocities[:, :6], np.array(arm.chain.home), np.zeros(6)
        )


def test_aloha_targets_beyond_the_limits_are_clipped_and_reported():
    robot = _robot("aloha")
    home = np.concatenate([np.r_[a.chain.home, 0.5] for a in robot.arms])
    values = np.tile(home, (2, 1))
    values[:, 2] = [1.4, 9.0]  # left elbow: upper limit 1.6057
    values[:, 8] = -7.0  # right shoulder: lower limit -1.85005
    values[:, 6] = 3.0  # left gripper openness past fully open
    bridge = _armed(robot)
    state = bridge.on_chunk(_aloha_chunk(values), 0.0)
    assert state.code == BridgeCode.JOINT_LIMIT, state.message
    commands = _by_topic(bridge.tick(0.0))
    left, right = (commands[a.trajectory_topic] for a in robot.arms)
    lower = {j.name: j.lower for a in robot.arms for j in a.chain.joints}
    upper = {j.name: j.upper for a in robot.arms for j in a.chain.joints}
    np.testing.assert_allclose(left.positions[:, 2], [1.4, upper["left_elbow"]], atol=1e-6)
    np.testing.assert_allclose(right.positions[:, 1], [lower["right_shoulder"]] * 2, atol=1e-6)
    assert np.all(left.positions[:, 6] == robot.arms[0].gripper.open_position)
    for arm, c in zip(robot.arms, (left, right)):
        check_arm_points(
            arm, c.times_from_start, c.positions[:, :6], c.velocities[:, :6], np.array(arm.chain.home), np.zeros(6)
        )


# --- the safety bounds ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "name, deltas",
    [
        # one step far past both per-step limits, then straight down into the floor of the box
        ("franka", [[0.2, 0.0, 0.0, 0.0, 0.0, 1.0]] + [[0.0, 0.0, -1.0, 0.0, 0.0, 0.0]] * 10),
        ("widowx", [[0.0, 0.0, -1.0, 0.0, 0.0, 0.5]] * 6),
    ],
)
def test_clamped_and_clipped_targets_are_reached(name, deltas):
    robot = _robot(name)
    arm = robot.arms[0]
    deltas = np.array(deltas)
    bridge = _armed(robot)
    state = bridge.on_chunk(_chunk(robot, deltas, names=EE[:6]), 0.0)
    assert state.code == BridgeCode.WORKSPACE_LIMIT, state.message
    c = _by_topic(bridge.tick(0.0))[arm.trajectory_topic]
    targets = expected_targets(fk(arm.chain, arm.chain.home), deltas, robot.safety)
    assert len(c.positions) == len(deltas)
    assert targets[-1][2, 3] == robot.safety.workspace_min[2]  # the box really cut the last steps
    for q, T in zip(c.positions, targets):
        dp, dr = pose_errors(fk(arm.chain, q), T)
        assert dp < POSE_TOL and dr < ROT_TOL, (dp, dr)
    _inside_box(robot, c)


# --- limit enforcement, property-based ----------------------------------------------------------------------

_value = st.one_of(st.floats(-0.03, 0.03), st.floats(-1.0, 1.0), st.floats(-1e4, 1e4))


@st.composite
def _episodes(draw, dims: int, horizon: int = 5):
    """1-3 chunks: values (H, dims), stamp lag [s] before arrival (< 0: stamped in the future), and the
    time [s] until the next one arrives."""
    out = []
    for _ in range(draw(st.integers(1, 3))):
        h = draw(st.integers(1, horizon))
        values = draw(arrays(np.float64, (h, dims), elements=_value))
        out.append((values, draw(st.floats(-0.1, 0.2)), draw(st.floats(0.0, 0.8))))
    return out


def _play(robot: RobotConfig, episode, make_chunk, mode: str, box: bool) -> None:
    bridge = _armed(robot, blend=BlendConfig(mode=mode))
    played = _controllers(robot)
    period = 1.0 / robot.control_rate_hz
    now = 0.0
    for k, (values, lag, gap) in enumerate(episode):
        bridge.update_joint_state(*_followed(robot, played, now), now)
        bridge.on_chunk(make_chunk(values, stamp=now - lag, sequence=k), now)
        for t in np.arange(now, now + gap + period, period):
            bridge.update_joint_state(*_followed(robot, played, float(t)), t)
            for c in bridge.tick(float(t)):
                _check_command(bridge, c, played, float(t))
                if box:
                    _inside_box(robot, c)
                played[c.topic].receive(float(t), c)
        now = float(t) + period / 3.0  # chunks arrive between control ticks


@pytest.mark.parametrize("name", ["franka", "widowx"])
@pytest.mark.parametrize("mode", BLEND_MODES)
@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(episode=_episodes(dims=7))
def test_ee_commands_keep_joint_velocity_acceleration_and_workspace_limits(name, mode, episode):
    robot = _robot(name)
    _play(robot, episode, lambda v, **kw: _chunk(robot, v, **kw), mode, box=True)


@pytest.mark.parametrize("mode", BLEND_MODES)
@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(episode=_episodes(dims=14))
def test_aloha_commands_keep_joint_and_gripper_limits(mode, episode):
    _play(_robot("aloha"), episode, _aloha_chunk, mode, box=False)


# --- bad input: its status, no trajectory -------------------------------------------------------------------

_GOOD = np.tile([0.01, 0.0, 0.0, 0.0, 0.0, 0.0, 1.0], (3, 1))


@pytest.mark.parametrize(
    "change, needle",
    [
        (dict(values=np.r_[_GOOD.ravel()[:-1], np.nan]), "NaN"),
        (dict(values=np.r_[np.inf, _GOOD.ravel()[1:]]), "infinite"),
        (dict(values=_GOOD.ravel()[:-2]), "expected horizon*D"),
        (dict(values=_GOOD.ravel(), horizon=4), "expected horizon*D"),
        (dict(low=np.zeros(3), high=np.ones(3), normalized=np.ones(3, bool)), "lengths"),
        (dict(embodiment="ur5"), "embodiment 'ur5'"),
        (dict(dimension_names=("x", "y", "z", "roll", "pitch", "yaw", "grip")), "unknown dimensions ['grip']"),
        (dict(action_space="ee_velocity"), "unknown action_space"),
        (dict(values=np.zeros(0), horizon=0), "horizon must be >= 1"),
        (dict(dt=0.0), "dt"),
        (dict(dt=-0.1), "dt"),
        (dict(dt=float("nan")), "dt"),
        (dict(values=np.zeros(0), tokens=np.full(21, 300, np.uint16), num_bins=256), "num_bins"),
    ],
)
def test_bad_chunk_is_rejected_with_no_trajectory(change, needle):
    robot = _robot("franka")
    bridge = _armed(robot)
    state = bridge.on_chunk(replace(_chunk(robot, _GOOD), **change), 0.0)
    assert state.code == BridgeCode.CHUNK_REJECTED and needle in state.message, state.message
    assert bridge.tick(0.0) == [] and bridge.tick(0.5) == []
    assert bridge.state(0.0).code == BridgeCode.CHUNK_REJECTED


def test_bad_chunk_leaves_the_executing_plan_alone():
    robot = _robot("franka")
    bridge = _armed(robot)
    bridge.on_chunk(_chunk(robot, _GOOD), 0.0)
    before = _by_topic(bridge.tick(0.05))[robot.arms[0].trajectory_topic]
    bridge.update_joint_state(*_joint_state(robot), 0.05)
    plan = bridge.blenders["arm"].plan
    assert bridge.on_chunk(_chunk(robot, _GOOD, embodiment="aloha"), 0.05).code == BridgeCode.CHUNK_REJECTED
    assert bridge.tick(0.05) == []  # nothing new to send: the controller goes on with `before`
    assert bridge.blenders["arm"].plan is plan
    assert before.positions.shape[0] > 1


def test_a_plan_is_sent_once_not_every_tick():
    """A JointTrajectoryController restarts each trajectory from the measured state: re-sent every tick, the
    plan would start from behind its reference each time and have to catch up, faster than planned."""
    robot = _robot("franka")
    bridge = _armed(robot)
    bridge.on_chunk(_chunk(robot, _GOOD), 0.0)
    assert len(bridge.tick(0.01)) == 2  # arm and gripper, once
    for k in range(2, 20):
        bridge.update_joint_state(*_joint_state(robot), k * 0.01)
        assert bridge.tick(k * 0.01) == []
    bridge.on_chunk(_chunk(robot, _GOOD, stamp=0.2, sequence=2), 0.2)
    assert len(bridge.tick(0.21)) == 2  # a new chunk: the new plan goes out


def test_disarmed_bridge_sends_nothing():
    robot = _robot("franka")
    bridge = Bridge(robot)
    bridge.update_joint_state(*_joint_state(robot), 0.0)
    state = bridge.on_chunk(_chunk(robot, _GOOD, sequence=7), 0.0)
    assert state.code == BridgeCode.DISARMED and state.chunk_sequence == 7
    assert bridge.tick(0.0) == [] and bridge.tick(1.0) == []
    assert bridge.state(0.0).code == BridgeCode.DISARMED and not bridge.state(0.0).enabled


def _check_stop(robot: RobotConfig, stop: TrajectoryCommand, now: float, q0: np.ndarray, v0: np.ndarray) -> None:
    """`stop` brings the commanded state (q0, v0) at `now` to rest, stamped `now`, every joint slowing at one
    constant rate within its acceleration limit, all together; points a control period apart at most."""
    arm = robot.arms[0]
    n = len(arm.chain.joint_names)
    amax = np.array([j.acceleration for j in arm.chain.joints])
    period = 1.0 / robot.control_rate_hz
    t = stop.times_from_start
    assert stop.start == now and np.all(np.diff(np.r_[0.0, t]) <= period + 1e-9)
    duration = t[-1]
    slowing = v0 / duration
    assert np.all(np.abs(slowing) <= amax + 1e-9)
    assert duration <= period + 1e-9 or np.isclose(np.max(np.abs(slowing) / amax), 1.0)  # no slower than needed
    np.testing.assert_allclose(stop.positions[:, :n], q0 + np.outer(t, v0) - 0.5 * np.outer(t**2, slowing))
    np.testing.assert_allclose(stop.velocities[:, :n], v0 - np.outer(t, slowing), atol=1e-12)
    np.testing.assert_array_equal(stop.velocities[-1, :n], 0.0)


def test_disarming_while_moving_stops_the_commanded_motion_once():
    robot = _robot("franka")
    arm = robot.arms[0]
    bridge = _armed(robot)
    bridge.on_chunk(_chunk(robot, _GOOD), 0.0)
    bridge.update_joint_state(*_joint_state(robot), 0.15)
    q0, v0 = bridge.blenders[arm.name].sample(0.15)
    assert np.abs(v0).max() > 0.05, "moving when disarmed"
    ok, _, commands = bridge.set_enabled(False, 0.15)
    stop = _by_topic(commands)
    assert ok and set(stop) == {arm.trajectory_topic, arm.gripper.topic}
    _check_stop(robot, stop[arm.trajectory_topic], 0.15, q0, v0)
    assert len(stop[arm.trajectory_topic].times_from_start) > 1, "from speed, over more than one period"
    assert bridge.tick(0.16) == [] and bridge.on_chunk(_chunk(robot, _GOOD), 0.16).code == BridgeCode.DISARMED


def test_stale_joint_states_stop_the_commanded_motion_once_and_refuse_chunks():
    robot = _robot("franka")
    arm = robot.arms[0]
    bridge = _armed(robot)
    bridge.on_chunk(_chunk(robot, _GOOD), 0.0)
    late = robot.safety.joint_state_timeout + 0.01
    q0, v0 = bridge.blenders[arm.name].sample(late)
    assert np.abs(q0 - np.array(arm.chain.home)).max() > 0.01, "commanded away from the last measured position"
    commands = _by_topic(bridge.tick(late))
    # From the command the controller follows, not from the last measurement: the arm has moved on since.
    _check_stop(robot, commands[arm.trajectory_topic], late, q0, v0)
    assert bridge.state(late).code == BridgeCode.STALE_INPUT
    assert bridge.tick(late + 0.01) == []
    state = bridge.on_chunk(_chunk(robot, _GOOD, stamp=late), late + 0.02)
    assert state.code == BridgeCode.STALE_INPUT and "old" in state.message
    assert bridge.tick(late + 0.03) == []


def test_a_stop_from_rest_is_one_point_a_period_ahead():
    robot = _robot("franka")
    arm = robot.arms[0]
    bridge = _armed(robot)
    late = robot.safety.joint_state_timeout + 0.01
    stop = _by_topic(bridge.tick(late))[arm.trajectory_topic]
    np.testing.assert_allclose(stop.times_from_start, [1.0 / robot.control_rate_hz])
    np.testing.assert_allclose(stop.positions[0, :7], arm.chain.home)


def test_fresh_joint_states_resume_and_the_next_chunk_runs():
    robot = _robot("franka")
    bridge = _armed(robot)
    late = robot.safety.joint_state_timeout + 0.01
    bridge.tick(late)  # stale: the hold
    bridge.update_joint_state(*_joint_state(robot), late + 0.1)
    # The chunk arrives before the control timer has seen the fresh state.
    state = bridge.on_chunk(_chunk(robot, _GOOD, stamp=late + 0.1), late + 0.1)
    assert state.code == BridgeCode.OK, state.message
    assert len(_by_topic(bridge.tick(late + 0.1))[robot.arms[0].trajectory_topic].positions) == 3


def test_a_tracking_error_holds_where_the_arm_really_is_and_replans_from_there():
    robot = _robot("franka")
    arm = robot.arms[0]
    bridge = _armed(robot)
    bridge.on_chunk(_chunk(robot, _GOOD), 0.0)
    assert bridge.tick(0.01), "the plan streams while the arm follows"
    # The arm is somewhere else (a collision, a sim reset): measured far from commanded.
    elsewhere = (
        np.array(arm.chain.home) + np.r_[robot.safety.max_tracking_error + 0.05, np.zeros(len(arm.chain.home) - 1)]
    )
    bridge.update_joint_state(*_joint_state(robot, {arm.name: elsewhere}), 0.02)
    hold = _by_topic(bridge.tick(0.02))[arm.trajectory_topic]
    np.testing.assert_allclose(hold.positions, [elsewhere])
    assert bridge.state(0.02).code == BridgeCode.TRACKING_ERROR
    assert bridge.tick(0.03) == [], "one hold, then nothing until a new chunk"
    state = bridge.on_chunk(_chunk(robot, _GOOD, stamp=0.03, sequence=2), 0.03)
    assert state.code == BridgeCode.OK, state.message
    first = _by_topic(bridge.tick(0.03))[arm.trajectory_topic].positions[0]
    assert np.abs(first - elsewhere).max() < robot.safety.max_tracking_error, "the new plan starts from the measurement"


def test_following_within_the_tracking_bound_keeps_streaming():
    robot = _robot("franka")
    arm = robot.arms[0]
    bridge = _armed(robot)
    bridge.on_chunk(_chunk(robot, _GOOD), 0.0)
    near = np.array(arm.chain.home) + 0.5 * robot.safety.max_tracking_error
    bridge.update_joint_state(*_joint_state(robot, {arm.name: near}), 0.02)
    assert bridge.tick(0.02) and bridge.state(0.02).code != BridgeCode.TRACKING_ERROR


def test_a_late_tick_compares_the_measurement_with_the_command_of_its_own_time():
    """A busy CPU delays a control tick (or a joint state) by a fraction of a second: the arm that followed
    the command exactly must not read as drifting because the command has moved on since it was measured."""
    robot = _robot("franka")
    arm = robot.arms[0]
    bridge = _armed(robot)
    fast = [[0.0, 0.0, -0.05, 0.0, 0.0, 0.0, 1.0]] * 6  # down at the step limit: joints move fast
    assert bridge.on_chunk(_chunk(robot, fast), 0.0).code == BridgeCode.OK
    blender = bridge.blenders[arm.name]
    measured_at, late = 0.3, 0.3 + 0.9 * robot.safety.joint_state_timeout
    moved = np.abs(blender.sample(late)[0] - blender.sample(measured_at)[0]).max()
    assert moved > robot.safety.max_tracking_error, (
        "the plan must move past the bound in the delay for this test to mean anything"
    )
    bridge.update_joint_state(*_joint_state(robot, {arm.name: blender.sample(measured_at)[0]}), measured_at)
    assert bridge.tick(late) and bridge.state(late).code != BridgeCode.TRACKING_ERROR, bridge.state(late).message
    # The same measurement taken as fresh at `late` is a real drift.
    bridge.update_joint_state(*_joint_state(robot, {arm.name: blender.sample(measured_at)[0]}), late)
    bridge.tick(late)
    assert bridge.state(late).code == BridgeCode.TRACKING_ERROR


@pytest.mark.parametrize("problem", ["missing joint", "nan"])
def test_joint_states_lacking_a_joint_are_not_fresh(problem):
    robot = _robot("franka")
    names, positions = _joint_state(robot)
    if problem == "missing joint":
        names, positions = names[1:], positions[1:]
    else:
        positions[2] = float("nan")
    refused = Bridge(robot)
    refused.update_joint_state(names, positions, 0.0)
    ok, message, _ = refused.set_enabled(True, 0.0)
    assert not ok and "no complete joint state" in message
    bridge = _armed(robot)
    late = robot.safety.joint_state_timeout + 0.01
    bridge.update_joint_state(names, positions, late)  # keeps arriving, but unusable
    assert bridge.on_chunk(_chunk(robot, _GOOD, stamp=late), late).code == BridgeCode.STALE_INPUT


def test_joint_state_of_another_robot_is_ignored():
    robot = _robot("franka")
    bridge = Bridge(robot)
    bridge.update_joint_state(*_joint_state(_robot("widowx")), 0.0)
    assert not bridge.set_enabled(True, 0.0)[0]


def test_unreachable_target_fails_ik_with_no_trajectory(tmp_path):
    # A box and a step limit larger than the arm's reach: nothing stops the target before IK does.
    robot = _yaml_variant(
        tmp_path,
        "franka",
        workspace_min=[-5.0, -5.0, -5.0],
        workspace_max=[5.0, 5.0, 5.0],
        max_translation_per_step=10.0,
    )
    bridge = _armed(robot)
    state = bridge.on_chunk(_chunk(robot, [[3.0, 0.0, 0.0, 0.0, 0.0, 0.0]], names=EE[:6]), 0.0)
    assert state.code == BridgeCode.IK_FAILED and "step 0" in state.message, state.message
    assert state.ik_position_residual > 1.0
    assert bridge.tick(0.0) == []


def test_ik_failure_mid_chunk_stops_at_the_last_reachable_step(tmp_path):
    robot = _yaml_variant(tmp_path, "franka", workspace_min=[-5.0, -5.0, -5.0], workspace_max=[5.0, 5.0, 5.0])
    arm = robot.arms[0]
    deltas = np.tile([0.05, 0.0, 0.0, 0.0, 0.0, 0.0], (20, 1))  # 1 m straight out: past the reach
    bridge = _armed(robot)
    state = bridge.on_chunk(_chunk(robot, deltas, names=EE[:6]), 0.0)
    assert state.code == BridgeCode.IK_FAILED, state.message
    c = _by_topic(bridge.tick(0.0))[arm.trajectory_topic]
    K = len(c.positions)
    assert 0 < K < 20 and f"step {K}" in state.message
    targets = expected_targets(fk(arm.chain, arm.chain.home), deltas)
    for q, T in zip(c.positions, targets):
        assert pose_errors(fk(arm.chain, q), T)[0] < POSE_TOL


def _toward_wrist_singularity(robot: RobotConfig, wrist_angles) -> tuple[np.ndarray, np.ndarray]:
    """WidowX start posture and ee deltas that straighten the wrist (wrist_angle -> 0: forearm_roll and
    wrist_rotate line up), the singular pose, step by step through `wrist_angles`."""
    chain = robot.arms[0].chain
    q = np.array(chain.home)
    q[4] = 0.1
    T = fk(chain, q)
    deltas = []
    for angle in wrist_angles:
        q_next = q.copy()
        q_next[4] = angle
        T_next = fk(chain, q_next)
        R_delta = T_next[:3, :3] @ T[:3, :3].T
        pitch = np.arctan2(-R_delta[2, 0], np.hypot(R_delta[0, 0], R_delta[1, 0]))  # a pure pitch here
        deltas.append(np.r_[T_next[:3, 3] - T[:3, 3], 0.0, pitch, 0.0])
        T = T_next
    return q, np.array(deltas)


def test_singular_target_halts_with_no_trajectory():
    robot = _robot("widowx")
    q0, deltas = _toward_wrist_singularity(robot, [0.0])
    bridge = _armed(robot, q={"arm": q0})
    state = bridge.on_chunk(_chunk(robot, deltas, names=EE[:6]), 0.0)
    assert state.code == BridgeCode.HALT_FOR_SINGULARITY, state.message
    assert bridge.tick(0.0) == []


def test_approaching_a_singularity_slows_then_halts():
    robot = _robot("widowx")
    q0, deltas = _toward_wrist_singularity(robot, [0.05, 0.0])
    bridge = _armed(robot, q={"arm": q0})
    state = bridge.on_chunk(_chunk(robot, deltas, names=EE[:6]), 0.0)
    assert state.code == BridgeCode.HALT_FOR_SINGULARITY and "step 1" in state.message, state.message
    assert 0.0 < state.speed_scale < 1.0  # step 0 was kept, slowed down
    c = _by_topic(bridge.tick(0.0))[robot.arms[0].trajectory_topic]
    assert len(c.positions) == 1
    assert c.times_from_start[0] >= robot.action.dt / state.speed_scale - 1e-9


# --- a new chunk takes over without a jump --------------------------------------------------------------------


def test_the_switch_jump_says_how_far_a_chunk_moved_the_command_one_step_ahead():
    robot = _robot("franka")
    arm = robot.arms[0].name
    up = np.tile([0.0, 0.0, 0.01, 0.0, 0.0, 0.0, 1.0], (10, 1))  # 1 cm per step
    jumps = {}
    for name, second in (("same way", up), ("reversed", up * [1, 1, -1, 1, 1, 1, 1])):
        bridge = _armed(robot)
        assert bridge.on_chunk(_chunk(robot, up, stamp=0.0, sequence=1), 0.0).switch_jump == 0.0  # from rest
        bridge.update_joint_state(*_joint_state(robot, {arm: bridge.blenders[arm].sample(0.3)[0]}), 0.3)
        jumps[name] = bridge.on_chunk(_chunk(robot, second, stamp=0.28, sequence=2), 0.3).switch_jump
    assert jumps["same way"] < 0.01 < jumps["reversed"]


@pytest.mark.parametrize("name", ["franka", "aloha"])
@pytest.mark.parametrize("mode", BLEND_MODES)
def test_a_new_chunk_replaces_the_rest_without_a_jump(name, mode):
    robot = _robot(name)
    bridge = _armed(robot, blend=BlendConfig(mode=mode))
    played = _controllers(robot)
    period = 1.0 / robot.control_rate_hz
    rng = np.random.default_rng(3)

    def chunk(t: float, k: int) -> Chunk:
        if name == "aloha":
            q = {a.name: bridge.blenders[a.name].sample(t)[0] for a in robot.arms}
            base = np.concatenate([np.r_[q[a.name], 0.5] for a in robot.arms])
            return _aloha_chunk(base + np.cumsum(rng.normal(0, 0.03, (8, 14)), axis=0), stamp=t - 0.01, sequence=k)
        direction = np.r_[rng.normal(0.0, 0.02, 3), rng.normal(0.0, 0.05, 3), 1.0]
        return _chunk(robot, np.tile((-1) ** k * direction, (5, 1)), stamp=t - 0.03, sequence=k)

    arrivals = [0.0, 0.2337, 0.4561, 0.6905]  # off the control grid, mid-plan each time
    samples = {topic: [] for topic in played}
    switches = []
    for t in np.arange(0.0, 1.6, period):
        t = float(t)
        while arrivals and arrivals[0] <= t:
            now = arrivals.pop(0)
            if switches:
                assert all(bridge.blenders[a.name].plan.end_time > now for a in robot.arms), (
                    "the old chunk already ended"
                )
            before = {a.name: bridge.blenders[a.name].sample(now) for a in robot.arms}
            bridge.update_joint_state(*_followed(robot, played, now), now)
            assert bridge.on_chunk(chunk(now, len(switches)), now).code in (BridgeCode.OK, BridgeCode.JOINT_LIMIT)
            for a in robot.arms:  # the bridge's own plan goes on from its commanded state
                q_after, qd_after = bridge.blenders[a.name].sample(now)
                np.testing.assert_allclose(q_after, before[a.name][0], atol=1e-12)
                np.testing.assert_allclose(qd_after, before[a.name][1], atol=1e-12)
            for c in bridge.tick(now):
                _check_command(bridge, c, played, now)
                played[c.topic].receive(now, c)
            switches.append(now)
        bridge.update_joint_state(*_followed(robot, played, t), t)
        for c in bridge.tick(t):
            _check_command(bridge, c, played, t)
            played[c.topic].receive(t, c)
        for topic, p in played.items():
            samples[topic].append(p.sample(t))
        for a in robot.arms:  # what the controller plays is the bridge's own plan
            n = len(a.chain.joint_names)
            np.testing.assert_allclose(
                played[a.trajectory_topic].sample(t)[0][:n], bridge.blenders[a.name].sample(t)[0], atol=1e-9
            )
    assert len(switches) == 4
    for arm in robot.arms:
        vmax = np.array([j.velocity for j in arm.chain.joints])
        amax = np.array([j.acceleration for j in arm.chain.joints])
        q = np.array([s[0][: len(vmax)] for s in samples[arm.trajectory_topic]])
        qd = np.array([s[1][: len(vmax)] for s in samples[arm.trajectory_topic]])
        # Finite differences at the control rate across every switch: no position or velocity jump.
        assert np.all(np.abs(np.diff(q, axis=0)) <= vmax * period * (1 + 1e-6))
        assert np.all(np.abs(np.diff(qd, axis=0)) <= amax * period * (1 + 1e-6))
        assert np.abs(np.diff(q, axis=0)).sum(axis=0).max() > 0.05  # it really moved


# --- the IK solver is injectable -----------------------------------------------------------------------------


def test_an_injected_ik_solver_is_used_with_the_same_seed_and_targets():
    robot = _robot("franka")
    calls = []

    def recording(model, T, q_seed, params) -> IkResult:
        calls.append((T.copy(), np.array(q_seed)))
        return solve_ik(model, T, q_seed, params)

    chunk = _chunk(robot, _GOOD)
    reference, injected = _armed(robot), _armed(robot, ik_solver=recording)
    reference.on_chunk(chunk, 0.0)
    injected.on_chunk(chunk, 0.0)
    topic = robot.arms[0].trajectory_topic
    # The reference plans with the compiled loop, the injected solver with the Python one: equal to rounding.
    np.testing.assert_allclose(
        _by_topic(injected.tick(0.0))[topic].positions, _by_topic(reference.tick(0.0))[topic].positions, atol=1e-9
    )
    assert len(calls) == 3
    np.testing.assert_allclose(calls[0][1], robot.arms[0].chain.home)
    np.testing.assert_allclose(
        calls[0][0], expected_targets(fk(robot.arms[0].chain, robot.arms[0].chain.home), _GOOD)[0], atol=1e-9
    )


def test_a_failing_injected_solver_gives_ik_failed():
    robot = _robot("franka")

    def never(model, T, q_seed, params) -> IkResult:
        return IkResult(np.asarray(q_seed), 1.0, 1.0, 0, 10.0, False)

    bridge = _armed(robot, ik_solver=never)
    assert bridge.on_chunk(_chunk(robot, _GOOD), 0.0).code == BridgeCode.IK_FAILED
    assert bridge.tick(0.0) == []


def test_start_pose_is_the_commanded_state_not_the_measurement():
    # A second chunk integrates from where the first one left the arm, even if /joint_states lags.
    robot = _robot("franka")
    arm = robot.arms[0]
    bridge = _armed(robot)
    bridge.on_chunk(_chunk(robot, _GOOD), 0.0)
    end = bridge.blenders[arm.name].plan.end_time + 0.1
    bridge.update_joint_state(*_joint_state(robot), end)  # still reports home
    q_end = bridge.blenders[arm.name].sample(end)[0]
    second = np.tile([0.0, 0.01, 0.0, 0.0, 0.0, 0.0, 1.0], (2, 1))
    bridge.on_chunk(_chunk(robot, second, stamp=end), end)
    c = _by_topic(bridge.tick(end))[arm.trajectory_topic]
    target = expected_targets(fk(arm.chain, q_end), second)[-1]
    assert pose_errors(fk(arm.chain, c.positions[-1]), target)[0] < POSE_TOL
    assert pose_errors(fk(arm.chain, q_end), fk(arm.chain, arm.chain.home))[0] > 0.02  # the two starts differ


@pytest.mark.parametrize("mode", BLEND_MODES)
def test_a_chunk_whose_steps_are_all_past_plays_from_now_and_says_how_late(mode):
    robot = _robot("franka")
    arm = robot.arms[0]
    bridge = _armed(robot, now=10.0, blend=BlendConfig(mode=mode))
    state = bridge.on_chunk(_chunk(robot, _GOOD, stamp=5.0), 10.0)  # 3 steps of 0.1 s, observed 5 s ago
    assert state.code == BridgeCode.OK and state.chunk_lateness == pytest.approx(4.9), state
    assert "4.90 s late: played from now" in state.message
    c = _by_topic(bridge.tick(10.0))[arm.trajectory_topic]
    assert len(c.positions) == 3 and c.times_from_start[0] >= robot.action.dt - 1e-9
    target = expected_targets(fk(arm.chain, np.array(arm.chain.home)), _GOOD)[-1]
    assert pose_errors(fk(arm.chain, c.positions[-1]), target)[0] < POSE_TOL


def test_a_one_step_openvla_chunk_0_4_s_late_reaches_its_target_within_the_limits():
    """OpenVLA predicts one step; a model slower than the 0.1 s step delivers it after its time."""
    robot = _robot("franka")
    arm = robot.arms[0]
    step = np.array([[0.01, -0.01, 0.005, 0.0, 0.0, 0.05, 1.0]])
    bridge = _armed(robot, now=0.0)
    state = bridge.on_chunk(_chunk(robot, step, stamp=0.0, dt=0.1), 0.4)
    assert state.code == BridgeCode.OK and state.chunk_lateness == pytest.approx(0.3)
    c = _by_topic(bridge.tick(0.4))[arm.trajectory_topic]
    home = np.array(arm.chain.home)
    check_arm_points(arm, c.times_from_start, c.positions, c.velocities, home, np.zeros(7))
    target = expected_targets(fk(arm.chain, home), step)[-1]
    assert pose_errors(fk(arm.chain, c.positions[-1]), target)[0] < POSE_TOL


@pytest.mark.parametrize("mode", BLEND_MODES)
def test_an_older_chunk_after_a_newer_one_never_rewinds_the_plan(mode):
    robot = _robot("franka")
    arm = robot.arms[0]
    bridge = _armed(robot, blend=BlendConfig(mode=mode))
    newer = np.tile([0.01, 0.0, 0.0, 0.0, 0.0, 0.0, 1.0], (3, 1))
    older = np.tile([-0.01, 0.0, 0.0, 0.0, 0.0, 0.0, 1.0], (3, 1))
    assert bridge.on_chunk(_chunk(robot, newer, stamp=0.2, sequence=2), 0.25).code == BridgeCode.OK
    plan = bridge.blenders[arm.name].plan
    state = bridge.on_chunk(_chunk(robot, older, stamp=0.1, sequence=1), 0.3)
    assert state.code == BridgeCode.CHUNK_REJECTED and "out of order" in state.message
    assert bridge.blenders[arm.name].plan is plan
    # a clock that went back (a sim reset) starts the order afresh instead of refusing every chunk
    assert bridge.on_chunk(_chunk(robot, newer, stamp=0.01, sequence=3), 0.05).code != BridgeCode.CHUNK_REJECTED


@pytest.mark.parametrize("mode", BLEND_MODES)
def test_a_late_chunk_starts_from_the_pose_its_observation_saw(mode):
    # The arm moved on while the policy thought: the deltas are played from the commanded pose at the
    # chunk's stamp, so the motion made meanwhile is not added twice ("replace" plays from now).
    robot = _robot("franka")
    arm = robot.arms[0]
    bridge = _armed(robot, blend=BlendConfig(mode=mode, blend_steps=0))
    bridge.on_chunk(_chunk(robot, np.tile([0.0, 0.02, 0.0, 0.0, 0.0, 0.0, 1.0], (5, 1))), 0.0)  # to 0.5 s
    stamp, arrival = 0.3, 0.42  # observed at 0.3, here 120 ms later; its last step (0.8 s) is its own
    q_stamp, q_arrival = (bridge.blenders[arm.name].sample(t)[0] for t in (stamp, arrival))
    second = np.tile([0.01, 0.0, 0.0, 0.0, 0.0, 0.0, 1.0], (5, 1))
    bridge.update_joint_state(*_joint_state(robot, {arm.name: q_arrival}), arrival)
    assert bridge.on_chunk(_chunk(robot, second, stamp=stamp, sequence=2), arrival).code == BridgeCode.OK
    last = _by_topic(bridge.tick(arrival))[arm.trajectory_topic].positions[-1]
    start = q_arrival if mode == "replace" else q_stamp
    expected = expected_targets(fk(arm.chain, start), second)[-1]
    assert pose_errors(fk(arm.chain, last), expected)[0] < POSE_TOL
    assert pose_errors(fk(arm.chain, q_stamp), fk(arm.chain, q_arrival))[0] > 0.015  # the two anchors differ


def test_franka_joint_velocities_integrate_from_the_commanded_pose_and_keep_the_limits():
    """DROID-style chunks: 7 joint velocities [rad/s] and an absolute gripper, each held for dt."""
    robot = _robot("franka")
    arm = robot.arms[0]
    names = (*arm.chain.joint_names, "gripper")
    velocity = np.zeros((8, 8))
    velocity[:, 0] = 0.3  # joint 1 turns at 0.3 rad/s for 8 steps of 1/15 s: 0.16 rad in all
    velocity[:, 7] = 1.0  # gripper open
    bridge = _armed(robot)
    status = bridge.on_chunk(_chunk(robot, velocity, names=names, space="joint_velocity", dt=1 / 15), 0.0)
    assert status.code == BridgeCode.OK, status.message
    c = _by_topic(bridge.tick(0.0))[arm.trajectory_topic]
    home = np.asarray(arm.chain.home)
    assert c.positions[-1, 0] == pytest.approx(home[0] + 0.3 * 8 / 15)
    assert np.allclose(c.positions[-1, 1:], home[1:])
    check_arm_points(arm, c.times_from_start, c.positions, c.velocities, home, np.zeros(7))
    # a velocity that would leave the joint range is clipped to it, and the status says so
    fast = np.zeros((8, 8))
    fast[:, 3] = 20.0  # joint 4 near its upper limit (-0.15 rad) from home (-2.36)
    home = np.asarray(arm.chain.home)
    bridge = _armed(robot)
    status = bridge.on_chunk(_chunk(robot, fast, names=names, space="joint_velocity", dt=1 / 15), 0.0)
    assert status.code == BridgeCode.JOINT_LIMIT
    c = _by_topic(bridge.tick(0.0))[arm.trajectory_topic]
    assert c.positions[:, 3].max() <= arm.chain.joints[3].upper + 1e-9
    check_arm_points(arm, c.times_from_start, c.positions, c.velocities, home, np.zeros(7))


def test_a_clock_jumping_back_stops_the_motion_commanded_before_it_and_waits_for_joint_states():
    robot = _robot("franka")
    arm = robot.arms[0]
    bridge = _armed(robot, now=10.0)
    bridge.on_chunk(_chunk(robot, _GOOD, stamp=10.0), 10.0)
    assert bridge.tick(10.0), "the plan goes out"
    bridge.update_joint_state(*_joint_state(robot), 10.1)
    assert bridge.tick(10.15) == []
    q0, v0 = bridge.blenders[arm.name].sample(10.15)
    assert np.abs(v0).max() > 0.05, "moving at the jump"
    # The clock steps back 5 s: the plan is timed on the old clock. Sampled at 5.16, it would command the
    # arm back to where it was before the chunk; the motion of the old clock's last instant is stopped.
    stop = _by_topic(bridge.tick(5.16))[arm.trajectory_topic]
    _check_stop(robot, stop, 5.16, q0, v0)
    note = "the clock jumped back 4.99 s: stopping the commanded motion, holding until joint states arrive"
    assert bridge.clock_jumps == [note]
    assert bridge.state(5.16).code == BridgeCode.STALE_INPUT and "jumped back 4.99 s" in bridge.state(5.16).message
    # A chunk before joint states on the new clock is refused; once they come, the bridge holds, then plans.
    state = bridge.on_chunk(_chunk(robot, _GOOD, stamp=5.17, sequence=2), 5.17)
    assert state.code == BridgeCode.STALE_INPUT and "jumped back" in state.message
    bridge.update_joint_state(*_joint_state(robot), 5.18)
    assert bridge.tick(5.18) == []
    assert "after the clock jumped back" in bridge.state(5.18).message
    state = bridge.on_chunk(_chunk(robot, _GOOD, stamp=5.19, sequence=3), 5.19)
    assert state.code == BridgeCode.OK, state.message
    assert len(bridge.clock_jumps) == 1


def test_callbacks_a_few_ms_out_of_order_are_no_clock_jump():
    robot = _robot("franka")
    bridge = _armed(robot, now=1.0)
    bridge.on_chunk(_chunk(robot, _GOOD, stamp=1.0), 1.0)
    bridge.update_joint_state(*_joint_state(robot), 1.02)
    bridge.tick(1.015)
    assert bridge.clock_jumps == [] and bridge.state(1.02).code == BridgeCode.OK


def test_joint_states_late_but_within_the_timeout_are_measured_against_the_plan_of_their_time(tmp_path):
    robot = _yaml_variant(tmp_path, "franka", max_tracking_error=0.1)
    bridge = _armed(robot)
    big = [[0.0, 0.0, -0.03, 0, 0, 0, 1]] * 10  # 3 cm a step down
    for k in range(5):  # a chunk every 0.1 s; the last joint state is from t = 0 (home)
        t = 0.1 * k
        assert bridge.on_chunk(_chunk(robot, big, stamp=t, sequence=k + 1), t).code == BridgeCode.OK
        bridge.tick(t + 0.05)
        assert bridge.state(t + 0.05).code == BridgeCode.OK, bridge.state(t + 0.05).message
    # The arm has been commanded away from home since: measured against the plan of now it would look far off.
    q_home = np.array(robot.arms[0].chain.home)
    assert np.abs(bridge.blenders[robot.arms[0].name].sample(0.0)[0] - q_home).max() > robot.safety.max_tracking_error
