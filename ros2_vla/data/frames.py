"""A converted dataset held in memory as frame arrays: what trainers consume.

`ros2_vla.data.lerobot_reader.load_lerobot_dataset` fills it from a LeRobot v3.0 folder written by
`ros2-vla convert`; anything else that produces these arrays (a test, another format) trains the same.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class FrameDataset:
    """N frames of E episodes at `fps`, all in memory. Frame i belongs to episode `episode_index[i]`
    and is frame `frame_index[i]` of it; frames of one episode are contiguous and in time order."""

    root: str  # the dataset folder (for messages)
    robot: str  # robot config name (info.json "robot_type")
    fps: float  # [Hz] frames per second; the action dt is 1 / fps
    cameras: tuple[str, ...]  # camera names; LeRobot keys "observation.images.<name>"
    images: dict[str, np.ndarray]  # camera -> (N, h, w, 3) uint8 RGB
    state: np.ndarray  # (N, S) float32 "observation.state": arm joints, then grippers (config order)
    action: np.ndarray  # (N, D) float32 "action", in `action_space`
    action_names: tuple[str, ...]  # D names, e.g. x y z roll pitch yaw gripper
    action_space: str  # ee_delta | joint_position | ...
    episode_index: np.ndarray  # (N,) int64
    frame_index: np.ndarray  # (N,) int64
    task_index: np.ndarray  # (N,) int64 into `tasks`
    tasks: tuple[str, ...]  # task_index -> instruction text
    stats: dict[str, dict[str, np.ndarray]]  # feature ("action", "observation.state") -> mean/std/min/max/q01/q99

    def __len__(self) -> int:
        return int(self.state.shape[0])

    @property
    def num_episodes(self) -> int:
        return int(np.unique(self.episode_index).size)


def episode_bounds(episode_index: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(starts, ends): first and one-past-last frame of each run of equal episode indices, in order."""
    ep = np.asarray(episode_index)
    starts = np.flatnonzero(np.r_[True, ep[1:] != ep[:-1]])
    return starts, np.r_[starts[1:], ep.shape[0]]
