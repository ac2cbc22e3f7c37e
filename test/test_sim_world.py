"""The Simulation: reset, joint states, trajectory control and tracking, cameras."""

from __future__ import annotations

import math

import numpy as np
import pytest

from ros2_vla.config import load_robot_config
from ros2_vla.errors import ConfigError, TrajectoryError
from ros2_vla.sim.controller import SimTrajectory, TrajectoryPoint
from ros2_vla.sim.scene import BOWL, arm_spawn_box
from ros2_vla.sim.slip import DROP_HEIGHT, MISS_DISTANCE, NO_SLIP, draw_slip
from ros2_vla.sim.world import START_CLEARANCE, Simulation

ROBOTS = ("franka", "widowx", "aloha")


@pytest.fixture(scope="module", params=ROBOTS)
def sim(request):
    s = Simulation(request.param, seed=0)
    yield s
    s.close()


def _step_traj(names, positions, t=0.0) -> SimTrajectory:
    return SimTrajectory(tuple(names), (TrajectoryPoint(tuple(float(v) for v in positions), t),))


def test_reset_puts_arms_at_home_and_grippers_open(sim):
    sim.reset(3)
    state = sim.joint_state()
    expected = []
    for arm in sim.robot.arms:
        expected += list(arm.chain.home) + [arm.gripper.open_position]
    assert state.names == tuple(n for a in sim.robot.arms for n in (*a.chain.joint_names, a.gripper.joint))
    np.testing.assert_allclose(state.positions, expected, atol=1e-9)
    np.testing.assert_allclose(state.velocities, 0.0, atol=1e-9)
    assert sim.time == 0.0


def test_arm_holds_home_without_commands(sim):
    sim.reset(1)
    before = sim.joint_state().positions
    sim.step_until(1.0)
    assert sim.time == pytest.approx(1.0, abs=sim.model.opt.timestep)
    np.testing.assert_allclose(sim.joint_state().positions, before, atol=1e-3)


def test_reset_is_repeatable_per_seed_and_varies_across_seeds(sim):
    def layout(seed):
        sim.reset(seed)
        return np.array([sim.object_pose(o)[:3, 3] for o in sim.object_names()])

    np.testing.assert_array_equal(layout(5), layout(5))
    assert np.abs(layout(5) - layout(6)).max() > 0.01


def test_start_jitter_varies_the_start_pose_but_not_the_objects(sim):
    def start(seed, jitter):
        sim.reset(seed, start_jitter=jitter)
        arms = {
            a.name: sim.joint_state().positions[[sim.joint_state().names.index(n) for n in a.chain.joint_names]]
            for a in sim.robot.arms
        }
        return arms, np.array([sim.object_pose(o)[:3, 3] for o in sim.object_names()])

    _, objects = start(7, 0.0)
    moved, same_objects = start(7, 0.3)
    np.testing.assert_array_equal(objects, same_objects)  # the layout is the seed's either way
    for arm in sim.robot.arms:
        offset = moved[arm.name] - np.array(arm.chain.home)
        assert 0.05 < np.abs(offset).max() <= 0.3 + 1e-9
        assert all(j.lower <= q <= j.upper for j, q in zip(arm.chain.joints, moved[arm.name]))
        assert sim.tcp_pose(arm.name, frame="world")[2, 3] >= sim.scene.table_height + START_CLEARANCE
        np.testing.assert_allclose(sim.joint_state().velocities, 0.0, atol=1e-9)
    again, _ = start(7, 0.3)
    assert all(np.array_equal(again[a], moved[a]) for a in moved)  # repeatable per seed
    other, _ = start(8, 0.3)
    assert any(np.abs(other[a] - moved[a]).max() > 0.01 for a in moved)
    held, _ = start(7, 0.3)
    sim.step_until(0.5)  # the controllers hold the jittered start, not home
    for arm in sim.robot.arms:
        q = sim.joint_state().positions[[sim.joint_state().names.index(n) for n in arm.chain.joint_names]]
        np.testing.assert_allclose(q, held[arm.name], atol=2e-3)
    with pytest.raises(ConfigError, match="start_jitter must be >= 0"):
        sim.reset(7, start_jitter=-0.1)


def test_a_servo_disturbance_moves_a_held_arm_off_its_command_repeatably(sim):
    def arms_after(seed, disturbance, t=2.0):
        sim.reset(seed, disturbance=disturbance)
        sim.step_until(t)  # the controllers hold the start the whole time
        state = sim.joint_state()
        return {a.name: state.positions[[state.names.index(n) for n in a.chain.joint_names]] for a in sim.robot.arms}

    home = {a.name: np.array(a.chain.home) for a in sim.robot.arms}
    still = arms_after(7, 0.0)
    assert all(np.abs(still[a] - home[a]).max() < 2e-3 for a in home)
    pushed = arms_after(7, 0.02)
    offsets = np.concatenate([pushed[a] - home[a] for a in home])
    assert 0.003 < np.abs(offsets).max() < 0.1  # std 0.02 rad: off by a few hundredths, not by tenths
    again = arms_after(7, 0.02)
    assert all(np.allclose(again[a], pushed[a], atol=1e-9) for a in home)  # repeatable per seed
    other = arms_after(8, 0.02)
    assert any(np.abs(other[a] - pushed[a]).max() > 1e-3 for a in home)
    with pytest.raises(ConfigError, match="disturbance must be >= 0"):
        sim.reset(7, disturbance=-0.01)
    sim.reset(7)  # later tests start undisturbed


def test_objects_rest_on_the_table_apart_and_within_reach(sim):
    s = sim.scene
    for seed in range(5):
        sim.reset(seed)
        sim.step_until(0.5)
        xy = {}
        for name in sim.object_names():
            p = sim.object_pose(name)[:3, 3]
            rest = s.table_height if name == BOWL else s.table_height + s.cube_size / 2
            assert p[2] == pytest.approx(rest, abs=2e-3), name
            boxes = [arm_spawn_box(sim.robot, a, s) for a in sim.robot.arms]
            assert any(np.all(p[:2] >= b.lo - 1e-9) and np.all(p[:2] <= b.hi + 1e-9) for b in boxes), name
            xy[name] = p[:2]
        names = list(xy)
        for i, a in enumerate(names):
            for b in names[i + 1 :]:
                assert np.linalg.norm(xy[a] - xy[b]) > s.cube_size * 1.4


def test_step_command_settles_within_a_centimetre_at_the_tcp(sim):
    from ros2_vla.kinematics.model import ArmModel

    sim.reset(0)
    rng = np.random.default_rng(1)
    for arm in sim.robot.arms:
        model = ArmModel.from_arm(arm)
        span = model.upper - model.lower
        q_goal = np.clip(
            model.home + rng.uniform(-0.25, 0.25, model.nq), model.lower + 0.05 * span, model.upper - 0.05 * span
        )
        sim.command(arm.trajectory_topic, _step_traj(arm.chain.joint_names, q_goal))
        sim.step_until(sim.time + 1.5)
        error = np.linalg.norm(sim.tcp_pose(arm.name)[:3, 3] - model.fk(q_goal)[:3, 3])
        assert error < 0.01, (arm.name, error)


def test_trajectory_is_followed_in_time(sim):
    sim.reset(0)
    arm = sim.robot.arms[0]
    home = np.array(arm.chain.home)
    goal = home.copy()
    goal[0] += 0.3
    traj = SimTrajectory(arm.chain.joint_names, (TrajectoryPoint(tuple(goal), 1.0),))
    sim.command(arm.trajectory_topic, traj)
    sim.step_until(0.5)
    q = sim.joint_state().positions[0]
    assert home[0] + 0.1 < q < home[0] + 0.16  # halfway (0.15) less the servo's lag
    sim.step_until(2.0)
    assert sim.joint_state().positions[0] == pytest.approx(goal[0], abs=2e-3)


def test_rejected_trajectory_leaves_the_arm_holding(sim):
    sim.reset(0)
    arm = sim.robot.arms[0]
    bad = SimTrajectory((arm.chain.joint_names[0], "no_such_joint"), (TrajectoryPoint((0.1, 0.2), 1.0),))
    with pytest.raises(TrajectoryError, match="no_such_joint"):
        sim.command(arm.trajectory_topic, bad)
    nan = _step_traj(arm.chain.joint_names, [math.nan] * len(arm.chain.joints), 1.0)
    with pytest.raises(TrajectoryError):
        sim.command(arm.trajectory_topic, nan)
    sim.step_until(1.0)
    np.testing.assert_allclose(sim.joint_state().positions[: len(arm.chain.joints)], arm.chain.home, atol=1e-3)


def test_unknown_topic_names_the_known_ones(sim):
    with pytest.raises(ConfigError, match=sim.robot.arms[0].trajectory_topic):
        sim.command("/nope", _step_traj(["x"], [0.0]))


def test_gripper_closes_on_its_configured_topic_in_config_units(sim):
    sim.reset(0)
    for arm in sim.robot.arms:
        g = arm.gripper
        if g.mode == "separate":
            sim.command(g.topic, _step_traj([g.joint], [g.closed_position], 0.3))
        else:
            names = (*arm.chain.joint_names, g.joint)
            sim.command(arm.trajectory_topic, _step_traj(names, [*arm.chain.home, g.closed_position], 0.3))
    sim.step_until(1.0)
    state = dict(zip(sim.joint_state().names, sim.joint_state().positions))
    for arm in sim.robot.arms:
        assert state[arm.gripper.joint] == pytest.approx(arm.gripper.closed_position, abs=1e-3)
        assert sim.gripper_opening(arm.name) == pytest.approx(arm.gripper.closed_position, abs=1e-3)


def test_step_until_the_past_does_nothing(sim):
    sim.reset(0)
    sim.step_until(0.2)
    t = sim.time
    sim.step_until(0.1)
    assert sim.time == t


def test_tcp_pose_frames_agree(sim):
    for arm in sim.robot.arms:
        world = sim.tcp_pose(arm.name, frame="world")
        np.testing.assert_allclose(sim.base_pose(arm.name) @ sim.tcp_pose(arm.name), world, atol=1e-12)
    with pytest.raises(ConfigError):
        sim.tcp_pose(frame="camera")
    with pytest.raises(ConfigError, match="no arm"):
        sim.tcp_pose("third_arm")


def test_camera_intrinsics_follow_the_vertical_field_of_view(sim):
    for cam in sim.robot.cameras:
        k = sim.camera_intrinsics(cam.name)
        assert (k.width, k.height) == (cam.width, cam.height)
        assert k.fy == pytest.approx(cam.height / 2 / math.tan(math.radians(cam.fovy) / 2))
        assert k.fx == k.fy and k.cx == (cam.width - 1) / 2 and k.cy == (cam.height - 1) / 2
    with pytest.raises(ConfigError, match="no camera"):
        sim.camera_intrinsics("nope")


def test_robot_may_be_given_as_a_config():
    s = Simulation(load_robot_config("franka"), seed=2)
    assert s.robot.name == "franka"


def test_a_grasp_slip_is_planned_per_seed_with_the_chance_given():
    rng = lambda seed: np.random.default_rng([seed, 3])  # noqa: E731
    plans = [draw_slip(0.5, rng(s)) for s in range(200)]
    assert plans == [draw_slip(0.5, rng(s)) for s in range(200)]  # repeatable
    kinds = [p.kind for p in plans]
    assert 70 < sum(k != "" for k in kinds) < 130 and {"miss", "drop"} <= set(kinds)
    assert all(draw_slip(0.0, rng(s)) == NO_SLIP for s in range(50))
    for p in plans:
        if p.kind:
            assert MISS_DISTANCE[0] <= p.distance <= MISS_DISTANCE[1] and DROP_HEIGHT[0] <= p.height <= DROP_HEIGHT[1]
    with pytest.raises(ConfigError, match=r"slip must be a chance in \[0, 1\]"):
        draw_slip(1.5, rng(0))


def test_contacts_name_what_a_body_touches(sim):
    sim.reset(3)
    sim.step_until(0.2)
    below, above = [n for n in sim.object_names() if n != BOWL][:2]
    assert sim.contacts(below) == {"world"}  # resting on the table, nothing else
    xyz = sim.object_pose(below)[:3, 3] + [0.0, 0.0, sim.scene.cube_size - 0.001]  # set on it, a touch deep
    sim.set_object_pose(above, xyz)
    assert sim.contacts(below) == {"world", above} and sim.contacts(above) == {below}
    sim.reset(3)
