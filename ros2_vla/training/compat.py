"""Does a dataset fit a flow model? Checked before any training step, with messages naming the fix.

A dataset trains a model only when the model's cameras are among the dataset's, the state and action
sizes agree, the action space and dimension names are the same (a chunk's meaning), and one dataset
frame is one chunk step (dt = 1 / fps): otherwise the bridge would play the chunks at the wrong speed.
"""

from __future__ import annotations

import numpy as np

from ros2_vla.data.frames import FrameDataset, episode_bounds
from ros2_vla.errors import DatasetError
from ros2_vla.policies.flow.config import FlowConfig

DT_TOLERANCE = 1e-6  # [s]


def check_frames(dataset: FrameDataset) -> None:
    """DatasetError unless the dataset's arrays agree in length and its episodes are contiguous."""
    n, where = len(dataset), dataset.root or "the dataset"
    if n == 0:
        raise DatasetError(f"{where} has no frames; convert some episodes first")
    for name, array in (
        ("action", dataset.action),
        ("episode_index", dataset.episode_index),
        ("frame_index", dataset.frame_index),
        ("task_index", dataset.task_index),
        *((f"images[{c!r}]", a) for c, a in dataset.images.items()),
    ):
        if array.shape[0] != n:
            raise DatasetError(f"{where}: {name} has {array.shape[0]} rows, state has {n}")
    runs = np.asarray(dataset.episode_index)[episode_bounds(dataset.episode_index)[0]]  # one per run of frames
    if np.unique(runs).size != runs.size:
        raise DatasetError(f"{where}: the frames of an episode are not contiguous; sort by episode and frame")
    if dataset.task_index.size and (dataset.task_index.min() < 0 or dataset.task_index.max() >= len(dataset.tasks)):
        raise DatasetError(f"{where}: task_index points past the {len(dataset.tasks)} tasks in meta/tasks")
    if not (np.all(np.isfinite(dataset.action)) and np.all(np.isfinite(dataset.state))):
        raise DatasetError(f"{where}: action or observation.state holds NaN or infinite values")


def check_dataset(dataset: FrameDataset, config: FlowConfig, model: str = "the model") -> None:
    """DatasetError naming `dataset.root` and `model` when the dataset cannot train that config."""
    check_frames(dataset)
    where = dataset.root or "the dataset"
    problems = []
    missing = [c for c in config.cameras if c not in dataset.cameras or c not in dataset.images]
    if missing:
        problems.append(f"{model} reads cameras {missing} the dataset lacks (it has {list(dataset.cameras)})")
    if dataset.action_space != config.action_space:
        problems.append(f"the dataset's actions are {dataset.action_space!r}, {model} emits {config.action_space!r}")
    if tuple(dataset.action_names) != tuple(config.dimension_names):
        problems.append(
            f"action dimensions {list(dataset.action_names)} differ from {model}'s {list(config.dimension_names)}"
        )
    if dataset.state.ndim != 2 or dataset.state.shape[1] != config.state_dim:
        problems.append(f"state has {dataset.state.shape[1:]} values per frame, {model} takes {config.state_dim}")
    if config.tcp_state and dataset.robot != config.robot:
        problems.append(f"{model} reads the TCP pose of a {config.robot!r} (forward kinematics of the state)")
    if dataset.fps <= 0 or abs(1.0 / dataset.fps - config.dt) > DT_TOLERANCE:
        problems.append(
            f"the dataset runs at {dataset.fps} fps, {model} steps its chunks every {config.dt} s "
            "(one chunk step is one frame)"
        )
    if problems:
        raise DatasetError(f"dataset {where} (robot {dataset.robot!r}) does not fit {model}: " + "; ".join(problems))
