"""A dataset that does not fit the model is refused before any step, with a message naming what differs."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from flow_helpers import one_torch_thread  # noqa: F401
from training_helpers import fast_config, tiny_dataset

from ros2_vla.errors import DatasetError, PolicyError
from ros2_vla.training.trainer import train_flow


@pytest.fixture(scope="module")
def dataset():
    return tiny_dataset()


def test_other_action_dimensions_are_refused(tmp_path, dataset):
    names = ("x", "y", "z", "rx", "ry", "rz", "gripper")
    with pytest.raises(DatasetError, match=r"memory:franka.*action dimensions \['x', 'y', 'z', 'rx'"):
        train_flow(dataclasses.replace(dataset, action_names=names), tmp_path, fast_config())
    assert not (tmp_path / "train_config.json").exists()  # nothing written that looks like a run


def test_another_action_space_is_refused(tmp_path, dataset):
    with pytest.raises(DatasetError, match="actions are 'joint_position', the model|emits 'ee_delta'"):
        train_flow(dataclasses.replace(dataset, action_space="joint_position"), tmp_path, fast_config())


def test_a_missing_camera_is_refused(tmp_path, dataset):
    only_scene = dataclasses.replace(dataset, cameras=("scene",), images={"scene": dataset.images["scene"]})
    with pytest.raises(DatasetError, match=r"reads cameras \['wrist'\]"):
        train_flow(only_scene, tmp_path, fast_config())


def test_a_dataset_of_another_robot_does_not_fit_a_checkpoint(tmp_path, dataset):
    train_flow(dataset, tmp_path / "franka", fast_config(steps=2))
    with pytest.raises(PolicyError, match=r"reads cameras \['scene', 'wrist'\] that robot 'aloha'"):
        train_flow(tiny_dataset("aloha"), tmp_path / "ft", fast_config(init=str(tmp_path / "franka")))


def test_a_state_of_another_size_is_refused(tmp_path, dataset):
    wide = dataclasses.replace(dataset, state=np.zeros((len(dataset), 9), np.float32))
    with pytest.raises(DatasetError, match=r"state has \(9,\) values per frame, preset 'tiny' takes 8"):
        train_flow(wide, tmp_path, fast_config())


def test_a_frame_rate_other_than_the_checkpoints_chunk_step_is_refused(tmp_path, dataset):
    train_flow(dataset, tmp_path / "base", fast_config(steps=2))
    with pytest.raises(DatasetError, match="runs at 5.0 fps"):
        train_flow(dataclasses.replace(dataset, fps=5.0), tmp_path / "ft", fast_config(init=str(tmp_path / "base")))


def test_shape_overrides_are_refused_when_fine_tuning(tmp_path, dataset):
    train_flow(dataset, tmp_path / "base", fast_config(steps=2))
    with pytest.raises(PolicyError, match="cannot change checkpoint"):
        train_flow(dataset, tmp_path / "ft", fast_config(init=str(tmp_path / "base"), overrides={"horizon": 8}))


def test_holding_out_every_episode_is_refused(tmp_path, dataset):
    with pytest.raises(DatasetError, match="--val-episodes 3 leaves nothing to train on"):
        train_flow(dataset, tmp_path, fast_config(val_episodes=3))
