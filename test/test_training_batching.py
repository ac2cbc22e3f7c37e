"""Training batches: chunk boundaries, padding past an episode's end, and normalization equal to FlowPolicy's."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch
from flow_helpers import one_torch_thread, random_model, tiny_config  # noqa: F401
from training_helpers import tiny_dataset

from ros2_vla.actions.chunk import Chunk, chunk_to_array
from ros2_vla.policies.base import Observation
from ros2_vla.policies.flow import FlowPolicy
from ros2_vla.sim.phrasings import phrasings
from ros2_vla.training.augment import random_shift
from ros2_vla.training.batching import (
    Augment,
    ChunkBatcher,
    chunk_indices,
    hold_dims,
    norm_stats_from_dataset,
    padded_chunks,
)


def test_chunks_stay_inside_their_episode():
    index, is_pad = chunk_indices(np.array([0, 0, 0, 1, 1, 2]), horizon=3)
    np.testing.assert_array_equal(index, [[0, 1, 2], [1, 2, 2], [2, 2, 2], [3, 4, 4], [4, 4, 4], [5, 5, 5]])
    np.testing.assert_array_equal(is_pad, [[0, 0, 0], [0, 0, 1], [0, 1, 1], [0, 0, 1], [0, 1, 1], [0, 1, 1]])


def test_ee_delta_pads_with_zero_motion_and_the_last_gripper_value():
    names = ("x", "y", "z", "roll", "pitch", "yaw", "gripper")
    action = np.arange(3 * 7, dtype=np.float32).reshape(3, 7) + 1
    chunks, is_pad = padded_chunks(action, np.array([0, 0, 0]), 4, hold_dims("ee_delta", names))
    np.testing.assert_array_equal(chunks[1, :2], action[1:3])  # real steps untouched
    np.testing.assert_array_equal(chunks[1, 2:, :6], 0.0)  # the arm stands still after the demo ends
    np.testing.assert_array_equal(chunks[1, 2:, 6], action[2, 6])  # and the gripper stays as it was
    assert is_pad[1].tolist() == [False, False, True, True]


def test_joint_position_pads_by_holding_the_last_target():
    names = tuple(f"j{i}" for i in range(6)) + ("left_gripper",)
    action = np.random.default_rng(0).normal(size=(5, 7)).astype(np.float32)
    chunks, _ = padded_chunks(action, np.array([0, 0, 1, 1, 1]), 3, hold_dims("joint_position", names))
    np.testing.assert_array_equal(chunks[1], action[[1, 1, 1]])
    np.testing.assert_array_equal(chunks[3], action[[3, 4, 4]])


def _observation(dataset, i: int) -> Observation:
    return Observation(
        stamp=0.0,
        images={c: dataset.images[c][i] for c in dataset.cameras},
        state=dataset.state[i],
        instruction=dataset.tasks[dataset.task_index[i]],
    )


@pytest.mark.parametrize("tcp_state", [False, True])
def test_batches_normalize_exactly_as_flow_policy_infers(tcp_state):
    dataset = tiny_dataset(size=(40, 48))  # not the model's 32x32: both sides must resize the same way
    config = tiny_config(dimension_names=dataset.action_names, tcp_state=tcp_state, robot="franka")
    stats = norm_stats_from_dataset(dataset, config.dimension_names)
    batcher = ChunkBatcher(dataset, config, stats)
    policy = FlowPolicy.from_model(random_model(config), stats, num_threads=1)
    frames = [0, 5, 13]
    batch = batcher.batch(frames, train=False)
    for row, i in enumerate(frames):
        obs = _observation(dataset, i)
        images = policy.images(obs.images)[0]  # (C, 3, h, w), what infer feeds the model
        for c, camera in enumerate(config.cameras):
            torch.testing.assert_close(batch["images"][camera][row], images[c], rtol=0, atol=0)
        torch.testing.assert_close(batch["state"][row], policy.state(obs.state)[0], rtol=0, atol=0)
        assert batch["state"].shape[1] == config.state_dim + 9 * tcp_state
        assert batch["instruction"][row] == obs.instruction


def test_normalized_targets_decode_to_the_recorded_actions_through_the_chunk_bounds():
    dataset = tiny_dataset()
    config = tiny_config(dimension_names=dataset.action_names)
    stats = norm_stats_from_dataset(dataset, config.dimension_names)
    batch = ChunkBatcher(dataset, config, stats).batch([2], train=False)
    policy = FlowPolicy.from_model(random_model(config), stats, num_threads=1)
    out = policy.output(batch["actions"][0])  # what infer does with the model's (H, D) sample
    chunk = Chunk(
        stamp=0.0,
        embodiment="franka",
        action_space=config.action_space,
        dimension_names=config.dimension_names,
        dt=config.dt,
        horizon=config.horizon,
        values=out.values,
        low=out.low,
        high=out.high,
        normalized=out.normalized,
    )
    physical = chunk_to_array(chunk)
    inside = (dataset.action[2:6] >= stats.action.q01) & (dataset.action[2:6] <= stats.action.q99)
    np.testing.assert_allclose(physical[inside], dataset.action[2:6][inside], atol=1e-5)
    np.testing.assert_array_equal(physical[:, 6], dataset.action[2:6, 6])  # the gripper travels raw


def test_only_the_named_cameras_are_shifted_and_only_when_training():
    dataset = tiny_dataset()
    config = tiny_config(dimension_names=dataset.action_names)
    stats = norm_stats_from_dataset(dataset, config.dimension_names)
    batcher = ChunkBatcher(dataset, config, stats, Augment(shift_px=3, cameras=("scene",)))
    plain = batcher.batch(range(8), train=False)
    shifted = batcher.batch(range(8), torch.Generator().manual_seed(0), train=True)
    assert not torch.equal(shifted["images"]["scene"], plain["images"]["scene"])
    assert torch.equal(shifted["images"]["wrist"], plain["images"]["wrist"])


def test_random_shift_moves_by_at_most_the_pad_and_keeps_the_shape():
    image = torch.zeros(1, 3, 16, 16)
    image[..., 8, 8] = 1.0
    for seed in range(20):
        out = random_shift(image, 2, torch.Generator().manual_seed(seed))
        assert out.shape == image.shape
        y, x = (int(v) for v in torch.nonzero(out[0, 0])[0])
        assert abs(y - 8) <= 2 and abs(x - 8) <= 2


@pytest.mark.parametrize("robot", ["franka", "aloha"])
def test_stats_come_from_the_dataset_with_the_gripper_left_raw(robot):
    dataset = tiny_dataset(robot)
    stats = norm_stats_from_dataset(dataset, dataset.action_names)
    np.testing.assert_allclose(stats.action.q01, dataset.stats["action"]["q01"], rtol=1e-6)
    np.testing.assert_allclose(stats.state.std, dataset.stats["observation.state"]["std"], rtol=1e-6)
    assert stats.action_mask.tolist() == ["gripper" not in n for n in dataset.action_names]


def test_rephrasing_rewords_sim_instructions_within_their_task_and_only_when_training():
    dataset = tiny_dataset()
    dataset = dataclasses.replace(dataset, tasks=("pick up the red cube", "my own words for the blue one"))
    config = tiny_config(dimension_names=dataset.action_names)
    stats = norm_stats_from_dataset(dataset, config.dimension_names)
    batcher = ChunkBatcher(dataset, config, stats, Augment(rephrase=1.0))
    frames = range(len(dataset))
    recorded = batcher.batch(frames, train=False)["instruction"]
    assert recorded == [dataset.tasks[int(t)] for t in dataset.task_index]
    said = batcher.batch(frames, torch.Generator().manual_seed(0), train=True)["instruction"]
    red_pick = {p.format("red") for p in phrasings("pick", "train")}
    for before, after in zip(recorded, said):
        if before == "my own words for the blue one":
            assert after == before  # not a sim wording: kept as recorded
        else:
            assert after in red_pick
    assert len({s for s in said if s in red_pick}) > 3  # varied, not one fixed rewording
    half = ChunkBatcher(dataset, config, stats, Augment(rephrase=0.5))
    mixed = half.batch(range(len(dataset)), torch.Generator().manual_seed(1), train=True)["instruction"]
    kept = sum(a == b for a, b in zip(mixed, recorded) if b == "pick up the red cube")
    assert 0 < kept < sum(b == "pick up the red cube" for b in recorded)
