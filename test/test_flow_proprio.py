"""TCP features of tcp_state flow models: FK of the shipped robot description, the same in training and at run time."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from flow_helpers import one_torch_thread, tiny_config  # noqa: F401

from ros2_vla.config import load_robot_config
from ros2_vla.errors import PolicyError
from ros2_vla.kinematics.model import ArmModel
from ros2_vla.policies.flow import FlowModel
from ros2_vla.policies.flow.backend import check_robot
from ros2_vla.policies.flow.config import config_for_robot
from ros2_vla.policies.flow.norm import identity_norm_stats
from ros2_vla.policies.flow.proprio import TcpFeatures, model_state, proprio_dim, tcp_features_for
from ros2_vla.policies.observation import state_names


def _states(robot, n: int, seed: int = 0) -> np.ndarray:
    """(n, S) joint states within each arm's limits, grippers half open."""
    rng = np.random.default_rng(seed)
    index = {name: i for i, name in enumerate(state_names(robot))}
    out = np.full((n, len(index)), 0.02)
    for arm in robot.arms:
        model = ArmModel.from_arm(arm)
        cols = [index[j] for j in arm.chain.joint_names]
        out[:, cols] = rng.uniform(model.lower, model.upper, (n, model.nq))
    return out


@pytest.mark.parametrize("name", ["franka", "aloha"])
def test_features_are_each_arms_tcp_position_and_two_rotation_columns(name):
    robot = load_robot_config(name)
    states = _states(robot, 5)
    features = TcpFeatures(robot)(states)
    assert features.shape == (5, 9 * len(robot.arms)) and features.dtype == np.float32
    index = {n: i for i, n in enumerate(state_names(robot))}
    for k, arm in enumerate(robot.arms):
        model = ArmModel.from_arm(arm)
        for i, s in enumerate(states):
            T = model.fk(s[[index[j] for j in arm.chain.joint_names]])
            expected = np.concatenate([T[:3, 3], T[:3, 0], T[:3, 1]])
            np.testing.assert_allclose(features[i, 9 * k : 9 * (k + 1)], expected, atol=1e-6)
    np.testing.assert_array_equal(TcpFeatures(robot)(states[0]), features[0])  # one state or a batch


def test_a_state_of_the_wrong_size_is_refused():
    with pytest.raises(PolicyError, match="TCP features need 8"):
        TcpFeatures(load_robot_config("franka"))(np.zeros(7))


def test_model_state_is_the_z_scores_then_the_features():
    robot = load_robot_config("franka")
    states = _states(robot, 3)
    stats = identity_norm_stats(7, 8)
    tcp = TcpFeatures(robot)
    out = model_state(states, stats, tcp)
    np.testing.assert_allclose(out[:, :8], stats.normalize_state(states))
    np.testing.assert_array_equal(out[:, 8:], tcp(states))
    np.testing.assert_array_equal(model_state(states, stats, None), stats.normalize_state(states))


def test_compact_for_a_robot_reads_its_tcp():
    config = config_for_robot("compact", load_robot_config("franka"))
    assert config.tcp_state and config.robot == "franka"
    assert proprio_dim(config) == 8 + 9
    model = FlowModel(config)
    assert model.prefix.state.in_features == 17


def test_a_tcp_model_without_a_robot_says_how_to_get_one():
    with pytest.raises(PolicyError, match="config_for_robot"):
        FlowModel(tiny_config(tcp_state=True))


def test_a_tcp_model_refuses_another_robot():
    config = tiny_config(tcp_state=True, robot="franka")
    widowx = load_robot_config("widowx")
    with pytest.raises(PolicyError, match="TCP pose of a franka"):
        tcp_features_for(config, widowx)
    # A robot of the same cameras and state size is still refused where vla_node loads a model.
    other = dataclasses.replace(load_robot_config("franka"), name="other")
    with pytest.raises(PolicyError, match="TCP pose of a 'franka'"):
        check_robot(config, other, "model")
