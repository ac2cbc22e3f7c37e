"""Goal-loss targets: the next gripper change or the episode end, what is still to go, and the loss itself."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from flow_helpers import one_torch_thread, random_model, tensor_batch, tiny_config  # noqa: F401

from ros2_vla.errors import PolicyError
from ros2_vla.policies.flow.loss import training_losses
from ros2_vla.training.batching import hold_dims
from ros2_vla.training.goals import goal_frames, goal_targets, normalize_goals

NAMES = ("x", "y", "z", "roll", "pitch", "yaw", "gripper")


def test_goal_frame_is_the_next_gripper_change_then_the_episode_end():
    #                  episode 0: open open close close open | episode 1: open open
    gripper = np.array([1, 1, 0, 0, 1, 1, 1], float)
    episode = np.array([0, 0, 0, 0, 0, 1, 1])
    np.testing.assert_array_equal(goal_frames(gripper, episode), [2, 2, 4, 4, 5, 7, 7])
    np.testing.assert_array_equal(goal_frames(None, episode), [5, 5, 5, 5, 5, 7, 7])


def test_delta_goals_sum_the_motion_still_to_go_and_take_the_gripper_at_the_goal():
    action = np.zeros((5, 7), np.float32)
    action[:, 0] = [0.1, 0.2, 0.0, 0.3, 0.0]  # x per step
    action[:, 6] = [1, 1, 0, 0, 0]  # close at frame 2
    goals = goal_targets(action, np.zeros(5, int), NAMES, hold_dims("ee_delta", NAMES))
    np.testing.assert_allclose(goals[:, 0], [0.3, 0.2, 0.3, 0.3, 0.0], atol=1e-6)  # to frame 2, then to the end
    np.testing.assert_allclose(goals[:, 6], [0, 0, 0, 0, 0])


def test_absolute_goals_are_the_target_at_the_goal_frame():
    names = ("j1", "gripper")
    action = np.array([[0.0, 1], [0.5, 1], [0.7, 0], [0.9, 0]], np.float32)
    goals = goal_targets(action, np.zeros(4, int), names, hold_dims("joint_position", names))
    np.testing.assert_allclose(goals, [[0.7, 0], [0.7, 0], [0.9, 0], [0.9, 0]])


def test_normalized_goals_are_z_scores_and_constant_dims_stay_finite():
    goals = np.array([[1.0, 5.0], [3.0, 5.0]], np.float32)
    z = normalize_goals(goals)
    np.testing.assert_allclose(z[:, 0], [-1, 1], atol=1e-6)
    np.testing.assert_allclose(z[:, 1], [0, 0])


def test_goal_loss_trains_the_goal_head_and_needs_targets():
    config = tiny_config(goal_head=True)
    model = random_model(config)
    batch = tensor_batch(config, ["pick up the red cube", "pick up the blue cube"], seed=1)
    batch["goals"] = torch.randn(2, config.action_dim)
    losses = training_losses(model, batch, torch.Generator().manual_seed(0), goal_weight=0.5)
    torch.testing.assert_close(losses["total"], losses["flow"] + 0.5 * losses["goal"])
    losses["goal"].backward()
    assert model.goal.weight.grad.abs().sum() > 0
    assert model.prefix.vision.stem[0].weight.grad.abs().sum() > 0  # the prefix learns from it too
    with pytest.raises(PolicyError, match="needs batch"):
        training_losses(model, {k: v for k, v in batch.items() if k != "goals"}, goal_weight=1.0)
    with pytest.raises(PolicyError, match="no goal head"):
        plain = random_model(tiny_config())
        training_losses(plain, batch, goal_weight=1.0)
