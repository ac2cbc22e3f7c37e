"""The scripted expert: action shapes and bounds, and closed-loop success in the simulation.

The closed loop here is a stand-in for the bridge, test-local and over plain Python: each
end-effector delta chunk is integrated from the measured TCP (`actions.targets`), solved with the
package's IK and sent to the simulated controller as a joint trajectory; joint-position chunks go
to the controllers as they are. The loop over ROS 2 topics is the bringup's test.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from ros2_vla.actions.gripper import gripper_command
from ros2_vla.actions.rotations import matrix_to_rotvec, rpy_to_matrix
from ros2_vla.actions.targets import integrate_ee_deltas
from ros2_vla.config import load_robot_config
from ros2_vla.errors import ConfigError
from ros2_vla.ik.solve import solve_chunk
from ros2_vla.kinematics.model import ArmModel
from ros2_vla.sim.controller import SimTrajectory, TrajectoryPoint
from ros2_vla.sim.expert import ExpertObservation, ScriptedExpert
from ros2_vla.sim.scene import cube_name
from ros2_vla.sim.tasks import Task, check_success, sample_task
from ros2_vla.sim.world import Simulation


def _trajectory(names, rows, dt) -> SimTrajectory:
    points = tuple(TrajectoryPoint(tuple(float(v) for v in row), (k + 1) * dt) for k, row in enumerate(rows))
    return SimTrajectory(tuple(names), points)


def _send(sim: Simulation, chunk: np.ndarray, models: dict[str, ArmModel]) -> None:
    """Play one chunk as the bridge would, without ROS."""
    robot = sim.robot
    dims, dt = robot.action.dimension_names, robot.action.dt
    if robot.action.space == "joint_position":
        for arm in robot.arms:
            cols = [dims.index(n) for n in (*arm.chain.joint_names, arm.gripper.joint)]
            rows = chunk[:, cols].copy()
            rows[:, -1] = [gripper_command(v, arm.gripper) for v in rows[:, -1]]  # openness -> joint units
            sim.command(arm.trajectory_topic, _trajectory([dims[c] for c in cols], rows, dt))
        return
    arm = robot.arms[0]
    xyz = chunk[:, [dims.index(n) for n in ("x", "y", "z")]]
    rpy = chunk[:, [dims.index(n) for n in ("roll", "pitch", "yaw")]]
    targets = integrate_ee_deltas(sim.tcp_pose(arm.name), xyz, rpy, robot.action.frame)
    state = sim.joint_state()
    q_now = state.positions[[state.names.index(n) for n in arm.chain.joint_names]]
    q = solve_chunk(models[arm.name], targets, q_now).positions
    sim.command(arm.trajectory_topic, _trajectory(arm.chain.joint_names, q, dt))
    grip = [[gripper_command(v, arm.gripper)] for v in chunk[:, dims.index("gripper")]]
    sim.command(arm.gripper.topic, _trajectory([arm.gripper.joint], grip, dt))


def run_episode(sim: Simulation, expert: ScriptedExpert, timeout: float, on_chunk=None) -> bool:
    """Chunks from the expert until the task succeeds or `timeout` [s] of sim time passes."""
    models = {a.name: ArmModel.from_arm(a) for a in sim.robot.arms}
    while sim.time < timeout:
        chunk = expert.act(ExpertObservation.from_sim(sim))
        _send(sim, chunk, models)
        sim.step_until(sim.time + len(chunk) * sim.robot.action.dt)
        if on_chunk is not None:
            on_chunk(sim, expert)
        if check_success(sim, expert.task):
            return True
    return False


def test_delta_chunks_respect_the_safety_step_limits():
    sim = Simulation("franka", seed=0)
    robot = sim.robot
    expert = ScriptedExpert(robot, Task("pick", ("red",)), horizon=6, scene=sim.scene)
    chunk = expert.act(ExpertObservation.from_sim(sim))
    assert chunk.shape == (6, len(robot.action.dimension_names))
    dims = robot.action.dimension_names
    step = np.linalg.norm(chunk[:, [dims.index(n) for n in "xyz"]], axis=1)
    rpy = chunk[:, [dims.index(n) for n in ("roll", "pitch", "yaw")]]
    turn = [np.linalg.norm(matrix_to_rotvec(rpy_to_matrix(r))) for r in rpy]
    assert np.all(step <= robot.safety.max_translation_per_step + 1e-12) and step.max() > 0.005
    assert np.all(np.array(turn) <= robot.safety.max_rotation_per_step + 1e-9)
    np.testing.assert_array_equal(chunk[:, dims.index("gripper")], 1.0)  # open on the way to the cube


def test_inverted_gripper_convention_flips_the_gripper_dimension():
    robot = load_robot_config("franka")
    arm = robot.arms[0]
    gripper = dataclasses.replace(arm.gripper, invert=True)
    inverted = dataclasses.replace(robot, arms=(dataclasses.replace(arm, gripper=gripper),))
    sim = Simulation(robot, seed=0)
    chunk = ScriptedExpert(inverted, Task("pick", ("red",))).act(ExpertObservation.from_sim(sim))
    np.testing.assert_array_equal(chunk[:, robot.action.dimension_names.index("gripper")], 0.0)


def test_joint_position_chunks_stay_within_limits_and_name_every_dimension():
    sim = Simulation("aloha", seed=0)
    robot = sim.robot
    expert = ScriptedExpert(robot, sample_task(robot, np.random.default_rng(0), sim=sim), scene=sim.scene)
    chunk = expert.act(ExpertObservation.from_sim(sim))
    assert chunk.shape == (expert.horizon, 14)
    for arm in robot.arms:
        for j in arm.chain.joints:
            col = chunk[:, robot.action.dimension_names.index(j.name)]
            assert np.all((col >= j.lower) & (col <= j.upper))
        grip = chunk[:, robot.action.dimension_names.index(arm.gripper.joint)]
        np.testing.assert_array_equal(grip, 0.0 if arm.gripper.invert else 1.0)  # openness, open


def test_tasks_the_robot_cannot_do_are_refused():
    with pytest.raises(ConfigError):
        ScriptedExpert(load_robot_config("franka"), Task("bimanual_pick", ("red", "blue")))
    with pytest.raises(ConfigError):
        ScriptedExpert(load_robot_config("aloha"), Task("pick", ("red",)))


@pytest.mark.slow
@pytest.mark.parametrize(
    ("robot", "kind"),
    [("franka", "pick"), ("franka", "place"), ("widowx", "pick"), ("widowx", "place"), ("aloha", "bimanual_pick")],
)
def test_expert_solves_the_task_in_closed_loop(robot, kind):
    sim = Simulation(robot, seed=0)
    for seed in range(3):
        sim.reset(seed)
        task = sample_task(sim.robot, np.random.default_rng(seed), sim=sim)
        task = Task(kind, task.colors) if kind != "bimanual_pick" else task
        expert = ScriptedExpert(sim.robot, task, scene=sim.scene)
        ok = run_episode(sim, expert, timeout=15.0)
        assert ok, f"{robot} seed {seed}: {task.instruction} failed in phase {expert.phases()}"


@pytest.mark.slow
def test_expert_works_with_deltas_in_the_tcp_frame():
    robot = load_robot_config("franka")
    robot = dataclasses.replace(robot, action=dataclasses.replace(robot.action, frame="ee"))
    sim = Simulation(robot, seed=4)
    assert run_episode(sim, ScriptedExpert(robot, Task("pick", ("blue",)), scene=sim.scene), timeout=15.0)


@pytest.mark.slow
def test_expert_tries_again_after_losing_the_cube():
    sim = Simulation("franka", seed=2)
    task = Task("pick", ("red",))
    expert = ScriptedExpert(sim.robot, task, scene=sim.scene)
    phases = []

    def snatch(sim, expert):
        phases.append(expert.phases()["arm"])
        if phases.count("lift") == 1 and phases[-1] == "lift":  # first time in the air: take the cube away
            sim.set_object_pose(cube_name("red"), [0.45, 0.2, sim.scene.table_height + sim.scene.cube_size / 2])

    assert run_episode(sim, expert, timeout=20.0, on_chunk=snatch)
    assert "approach" in phases[phases.index("lift") :]
