"""Task templates and their success checks, judged from true poses and contacts."""

from __future__ import annotations

import numpy as np
import pytest

from ros2_vla.actions.rotations import rpy_to_matrix
from ros2_vla.config import load_robot_config
from ros2_vla.errors import ConfigError
from ros2_vla.sim.controller import SimTrajectory, TrajectoryPoint
from ros2_vla.sim.scene import BOWL, cube_name
from ros2_vla.sim.tasks import Task, check_success, progress, sample_task, task_kinds
from ros2_vla.sim.world import Simulation


@pytest.fixture(scope="module")
def franka():
    s = Simulation("franka", seed=0)
    yield s
    s.close()


def test_instructions_fill_the_templates():
    assert Task("pick", ("red",)).instruction == "pick up the red cube"
    assert Task("place", ("blue",)).instruction == "put the blue cube in the bowl"
    assert Task("bimanual_pick", ("red", "green")).instruction == "pick up the red cube and the green cube"
    assert Task("pick", ("red",)).objects == ("red_cube",)


@pytest.mark.parametrize(
    ("kind", "colors"), [("fly", ("red",)), ("pick", ()), ("pick", ("red", "blue")), ("bimanual_pick", ("red", "red"))]
)
def test_malformed_tasks_are_refused(kind, colors):
    with pytest.raises(ConfigError):
        Task(kind, colors)


def test_single_arm_robots_get_pick_and_place_in_every_color():
    robot = load_robot_config("widowx")
    rng = np.random.default_rng(0)
    tasks = {sample_task(robot, rng) for _ in range(60)}
    assert {t.kind for t in tasks} == {"pick", "place"} == set(task_kinds(robot))
    assert {t.colors[0] for t in tasks} == {"red", "green", "blue"}


def test_bimanual_task_gives_each_arm_a_cube_on_its_own_side():
    sim = Simulation("aloha", seed=0)
    for seed in range(8):
        sim.reset(seed)
        task = sample_task(sim.robot, np.random.default_rng(seed), sim=sim)
        assert task.kind == "bimanual_pick"
        for arm, obj in zip(sim.robot.arms, task.objects):
            d = [np.linalg.norm(sim.object_pose(obj)[:2, 3] - np.array(a.base_xyz[:2])) for a in sim.robot.arms]
            assert d[sim.robot.arms.index(arm)] == min(d), (seed, arm.name, obj)


def _move_arm(sim, q, duration=1.0):
    arm = sim.robot.arms[0]
    sim.command(arm.trajectory_topic, SimTrajectory(arm.chain.joint_names, (TrajectoryPoint(tuple(q), duration),)))
    sim.step_until(sim.time + duration + 0.5)


def _gripper(sim, position):
    g = sim.robot.arms[0].gripper
    sim.command(g.topic, SimTrajectory((g.joint,), (TrajectoryPoint((position,), 0.3),)))
    sim.step_until(sim.time + 0.8)


def test_pick_succeeds_only_once_the_grasped_cube_is_lifted(franka):
    from ros2_vla.ik.solve import solve_ik
    from ros2_vla.kinematics.model import ArmModel

    sim = franka
    sim.reset(0)
    task = Task("pick", ("green",))
    cube = sim.object_pose(cube_name("green"))
    arm = sim.robot.arms[0]
    model = ArmModel.from_arm(arm)
    T_grasp = sim.tcp_pose().copy()  # home orientation, pointing down, turned about z onto the cube's faces
    turn = (np.arctan2(cube[1, 0], cube[0, 0]) - np.arctan2(T_grasp[1, 0], T_grasp[0, 0]) + np.pi / 4) % (
        np.pi / 2
    ) - np.pi / 4
    T_grasp[:3, :3] = rpy_to_matrix(np.array([0.0, 0.0, turn])) @ T_grasp[:3, :3]
    T_grasp[:3, 3] = (np.linalg.inv(sim.base_pose()) @ cube)[:3, 3]
    result = solve_ik(model, T_grasp, model.home)
    assert result.converged
    q_grasp = result.q
    assert progress(sim, task) == "not_reached"  # at home, well away from the cube
    _move_arm(sim, model.home * 0.5 + q_grasp * 0.5)
    _move_arm(sim, q_grasp)
    assert not check_success(sim, task) and progress(sim, task) == "reached"  # open gripper around the cube
    assert progress(sim, Task("pick", ("red",))) == "not_reached"
    _gripper(sim, arm.gripper.closed_position)
    assert sim.grasped(cube_name("green"))
    assert not check_success(sim, task) and progress(sim, task) == "grasped"  # held but still on the table
    _move_arm(sim, model.home)
    assert check_success(sim, task) and progress(sim, task) == "lifted"
    assert not check_success(sim, Task("pick", ("red",)))
    _gripper(sim, arm.gripper.open_position)  # dropped: no longer held
    assert not check_success(sim, task)


def test_a_cube_lifted_without_the_gripper_is_no_pick(franka):
    franka.reset(0)
    franka.set_object_pose(cube_name("red"), [0.5, 0.0, 0.3])
    assert not check_success(franka, Task("pick", ("red",)))


def test_place_succeeds_when_the_cube_rests_in_the_bowl(franka):
    sim = franka
    sim.reset(1)
    task = Task("place", ("blue",))
    assert not check_success(sim, task)
    bowl = sim.object_pose(BOWL)[:3, 3]
    sim.set_object_pose(cube_name("blue"), bowl + [0.02, -0.01, 0.03 + sim.scene.cube_size / 2])
    sim.step_until(sim.time + 0.5)
    assert check_success(sim, task)
    assert not check_success(sim, Task("place", ("red",)))
    sim.set_object_pose(cube_name("blue"), bowl + [sim.scene.bowl_radius + 0.06, 0.0, sim.scene.cube_size / 2])
    sim.step_until(sim.time + 0.3)
    assert not check_success(sim, task)  # right beside the bowl
