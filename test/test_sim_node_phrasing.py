"""sim_node `phrasing:=train` over real DDS: /sim/task and /sim/reset carry a training paraphrase of the
seed's task (the same task as with the template), so recorded demos get varied language."""

from __future__ import annotations

import numpy as np
import pytest
from helpers import launched, wait_for

pytest.importorskip("rclpy")
from std_msgs.msg import String  # noqa: E402
from std_srvs.srv import Trigger  # noqa: E402

from ros2_vla.bringup import NAMES, parse_reset_answer  # noqa: E402
from ros2_vla.config import load_robot_config  # noqa: E402
from ros2_vla.ros.qos import LATCHED  # noqa: E402
from ros2_vla.sim.phrasings import TRAINING, instruction_for  # noqa: E402
from ros2_vla.sim.tasks import sample_task  # noqa: E402
from ros2_vla.sim.world import Simulation  # noqa: E402


def test_sim_task_carries_a_training_paraphrase(ros_node):
    robot = load_robot_config("franka")
    sim = Simulation(robot)
    tasks = {}
    for seed in range(60):  # sim_node draws the task from default_rng(seed), whatever the phrasing
        sim.reset(seed)
        tasks[seed] = sample_task(robot, np.random.default_rng(seed), sim=sim)
    sim.close()
    said = {s: instruction_for(t, "train", s) for s, t in tasks.items()}
    # a seed whose wording and the next seed's both differ from the template
    seed = next(s for s in range(59) if said[s] != tasks[s].instruction and said[s + 1] != tasks[s + 1].instruction)
    heard: list[str] = []
    ros_node.create_subscription(String, NAMES.sim_task, lambda m: heard.append(m.data), LATCHED)
    reset = ros_node.create_client(Trigger, NAMES.sim_reset)
    with launched("franka", "--sim", "--seed", str(seed), "--phrasing", "train"):
        wait_for(lambda: heard, 20, "the task on /sim/task")
        assert heard[-1] == said[seed]
        assert heard[-1] in {p.format(*tasks[seed].colors) for p in TRAINING[tasks[seed].kind]}
        wait_for(reset.service_is_ready, 10, "/sim/reset")
        future = reset.call_async(Trigger.Request())
        response = wait_for(future.result, 10, "the /sim/reset response")
        assert parse_reset_answer(response.message) == (seed + 1, said[seed + 1])
        wait_for(lambda: heard[-1] == said[seed + 1], 5, "the next paraphrase on /sim/task")
