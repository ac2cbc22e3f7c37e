"""Dataset frames from recorded series: sample instants at the policy's rate, and what each one sees.

Frame k is the instant t_k = t_0 + k / fps on the recording's clock, with t_0 the first instant
at which every camera and the joint state have spoken. Its image per camera is the latest frame at
or before t_k, its state the latest joint state at or before t_k (what vla_node would have had),
and its action takes the robot from t_k to t_{k+1}: an episode with instants t_0..t_N has N frames.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from ros2_vla.data.series import EpisodeSeries
from ros2_vla.errors import DatasetError

_TIME_EPS = 1e-9  # [s] an instant this close past the last joint state still counts


@dataclass(frozen=True)
class FramePlan:
    """An episode's sample instants and, per frame, its joint state, the image index per camera and its instruction."""

    times: np.ndarray  # (N+1,) [s] sample instants; frame k is times[k], its action ends at times[k+1]
    state: np.ndarray  # (N+1, S) latest joint state at or before each instant (vla_node's state vector)
    image_index: dict[str, np.ndarray]  # camera -> (N,) index (bag order) of the frame shown at times[k]
    tasks: tuple[str, ...]  # (N,) instruction in force at each frame

    @property
    def num_frames(self) -> int:
        return len(self.times) - 1


def plan_frames(series: EpisodeSeries, fps: float, fallback_instruction: str = "") -> FramePlan:
    """Sample `series` at `fps` [Hz]; DatasetError naming the bag when not even one frame fits."""
    starts = [series.state_times[0], *(c.times[0] for c in series.cameras.values())]
    t0, t_end = max(starts), float(series.state_times[-1])
    steps = math.floor((t_end - t0) * fps + _TIME_EPS) if t_end >= t0 else 0
    if steps < 1:
        raise DatasetError(
            f"{series.bag.path}: the episode has no frames: {max(t_end - t0, 0.0):.3f} s of joint states "
            f"after every camera started, less than one step of {1.0 / fps:.3f} s"
        )
    times = t0 + np.arange(steps + 1) / fps
    state_at = np.searchsorted(series.state_times, times + _TIME_EPS, side="right") - 1
    images = {
        c: np.searchsorted(cam.times, times[:-1] + _TIME_EPS, side="right") - 1 for c, cam in series.cameras.items()
    }
    return FramePlan(times, series.state[state_at], images, frame_tasks(series, times[:-1], fallback_instruction))


def frame_tasks(series: EpisodeSeries, times: np.ndarray, fallback: str) -> tuple[str, ...]:
    """The instruction at each time: the latest on /vla/instruction, else the latest /sim/task, else
    `fallback` (the episode metadata's); before the first one arrives, the first one to come."""
    source = series.instructions or series.sim_tasks
    if not source:
        return tuple(fallback for _ in times)
    stamps = np.array([t for t, _ in source])
    index = np.maximum(np.searchsorted(stamps, times + _TIME_EPS, side="right") - 1, 0)
    return tuple(source[i][1] for i in index)
