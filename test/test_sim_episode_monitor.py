"""run_episode's hooks for evaluation: an instruction override, a policy that declines, the monitor,
and wrong picks (a cube other than the task's lifted and held)."""

from __future__ import annotations

import numpy as np
import pytest

from ros2_vla.config import load_robot_config
from ros2_vla.sim.episode import ExpertPolicy, Observation, episode_task, run_episode, wrong_picks
from ros2_vla.sim.scene import cube_name
from ros2_vla.sim.tasks import Task
from ros2_vla.sim.world import Simulation


@pytest.fixture(scope="module")
def franka():
    robot = load_robot_config("franka")
    sim = Simulation(robot)
    yield robot, sim
    sim.close()


class WrongColorExpert:
    """The scripted expert, told to fetch `color` instead of the task's cube."""

    def __init__(self, robot, color: str) -> None:
        self.expert, self.color = ExpertPolicy(robot), color

    def reset(self) -> None:
        self.expert.reset()

    def __call__(self, obs: Observation) -> np.ndarray:
        return self.expert(obs._replace(task=Task(obs.task.kind, (self.color,))))


def test_the_policy_is_told_the_instruction_given_and_the_result_keeps_it(franka):
    robot, sim = franka
    seen = []

    def policy(obs: Observation):
        seen.append(obs.instruction)
        return None  # declines every observation: no chunk reaches the bridge

    result = run_episode(robot, 0, "pick", policy, sim=sim, time_limit=0.6, instruction="grab the red block")
    assert seen == ["grab the red block"] * 3  # at 0, 0.25, 0.5 s
    assert result.instruction == "grab the red block" and result.chunks == 0 and result.bridge_codes == {}
    assert not result.success and result.wrong_objects == ()
    assert run_episode(robot, 0, "pick", policy, sim=sim, time_limit=0.1).instruction == result.task.instruction


def test_monitor_runs_at_every_success_check_with_the_bridge(franka):
    robot, sim = franka
    calls = []
    run_episode(robot, 0, "pick", ExpertPolicy(robot), sim=sim, time_limit=1.0,
                monitor=lambda s, bridge, now: calls.append((s is sim, bridge.enabled, now)))
    assert [round(c[2], 3) for c in calls] == pytest.approx([0.1 * i for i in range(11)])
    assert all(c[0] for c in calls) and calls[-1][1]


def test_picking_another_cube_is_a_wrong_pick_not_a_success(franka):
    robot, sim = franka
    task = episode_task(sim, 1, "pick")
    other = next(c for c in sim.scene.cube_colors if c != task.colors[0])
    result = run_episode(robot, 1, "pick", WrongColorExpert(robot, other), sim=sim, time_limit=12.0)
    assert not result.success
    assert result.wrong_objects == (cube_name(other),)
    assert wrong_picks(sim, task) == (cube_name(other),)  # still held at the end
    right = run_episode(robot, 1, "pick", ExpertPolicy(robot), sim=sim, time_limit=12.0)
    assert right.success and right.wrong_objects == ()
