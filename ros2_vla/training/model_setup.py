"""The model a run starts from: a preset fitted to the dataset's robot, or a checkpoint to fine-tune.

A preset takes cameras, state size and action layout from `config/<robot>.yaml` and its chunk step
from the dataset (dt = 1 / fps: one chunk step is one recorded frame). A checkpoint (`--init`) keeps
its own shapes; the dataset must fit them, since weights cannot change shape.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch

from ros2_vla.config import RobotConfig
from ros2_vla.data.frames import FrameDataset
from ros2_vla.errors import PolicyError
from ros2_vla.policies.flow.backend import check_robot
from ros2_vla.policies.flow.checkpoint import load_checkpoint, read_config
from ros2_vla.policies.flow.config import FlowConfig, config_for_robot
from ros2_vla.policies.flow.model import FlowModel
from ros2_vla.training.compat import check_dataset


def preset_config(
    dataset: FrameDataset,
    robot: RobotConfig,
    preset: str,
    overrides: Mapping[str, Any],
    image_size: tuple[int, int] | None = None,
) -> FlowConfig:
    """Preset `preset` for `robot`, stepping at the dataset's frame rate, with `overrides` on top."""
    fields: dict[str, Any] = {"dt": 1.0 / dataset.fps} if dataset.fps > 0 else {}
    if image_size is not None:
        fields["image_size"] = tuple(image_size)
    fields.update(overrides)
    return config_for_robot(preset, robot, **fields)


def new_model(
    dataset: FrameDataset,
    robot: RobotConfig,
    preset: str,
    overrides: Mapping[str, Any],
    image_size: tuple[int, int] | None,
    seed: int,
) -> FlowModel:
    """A freshly initialized model (weights from `seed`, global RNG untouched) that fits the dataset."""
    config = preset_config(dataset, robot, preset, overrides, image_size)
    check_dataset(dataset, config, f"preset {preset!r}")
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return FlowModel(config)


def init_model(
    dataset: FrameDataset,
    robot: RobotConfig,
    init: str | Path,
    overrides: Mapping[str, Any],
    image_size: tuple[int, int] | None,
) -> FlowModel:
    """The checkpoint `init`, to fine-tune; PolicyError when it cannot take this dataset as it is."""
    config = read_config(init)
    if overrides:
        raise PolicyError(
            f"--override {sorted(overrides)} cannot change checkpoint {init}: its weights fix its "
            "shapes; drop --override, or train a new model from --preset"
        )
    if image_size is not None and tuple(image_size) != config.image_size:
        raise PolicyError(
            f"--image-size {list(image_size)} differs from checkpoint {init}'s "
            f"{list(config.image_size)}; drop --image-size to fine-tune it"
        )
    check_robot(config, robot, init)
    check_dataset(dataset, config, f"checkpoint {init}")
    model, _, _ = load_checkpoint(init, "cpu")
    return model
