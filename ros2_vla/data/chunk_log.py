"""The action chunks an episode's robot was sent (/vla/action_chunk), and the command stream they make.

Labelling a frame with what the robot was told to do (ACT's and DROID's commanded actions), rather
than with the motion it made, keeps the controller's lag and the demonstrator's waits for it out of
the labels: the policy learns the demonstrator's decisions, and the same bridge plays them back.

The stream follows the bridge's rule: a new chunk replaces the rest of the one before it, and step
k of a chunk is under way from its stamp + k dt to stamp + (k+1) dt. Past its last step, with no
newer chunk, the robot holds: no motion, the gripper as last commanded.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ros2_vla.actions.chunk import Chunk, chunk_to_array, resolve_delta_frame, validate_chunk
from ros2_vla.actions.spaces import EE_DELTA
from ros2_vla.config import RobotConfig
from ros2_vla.errors import ChunkError, DatasetError

_TIME_EPS = 1e-9  # [s]


@dataclass(frozen=True)
class ChunkLog:
    """The chunks the bridge would have accepted, in arrival order, as physical actions."""

    receipt: np.ndarray  # (M,) [s] log time each chunk arrived, non-decreasing
    start: np.ndarray  # (M,) [s] its step 0's start: the header stamp (capture time), or the arrival
    actions: tuple[np.ndarray, ...]  # M arrays (H, D) in the robot's action.dimension_names order
    dt: float  # [s] between steps (the robot's action.dt: others are refused)
    hold_motion: np.ndarray  # bool (D,): dimensions set to 0 when the robot holds (~actions.spaces.hold_dims)

    def at(self, times: np.ndarray) -> np.ndarray:
        """(K, D) the commanded step under way at each of `times` (K,) [s]. Before the first chunk
        arrives, its step 0: the demonstrator's first decision, not a pause to imitate."""
        times = np.asarray(times, dtype=np.float64)
        active = np.maximum(np.searchsorted(self.receipt, times + _TIME_EPS, side="right") - 1, 0)
        out = np.empty((times.size, self.actions[0].shape[1]))
        for k, (t, m) in enumerate(zip(times, active)):
            rows = self.actions[m]
            step = max(int(np.floor((t - self.start[m]) / self.dt + _TIME_EPS)), 0)
            if step < len(rows):
                out[k] = rows[step]
            else:
                out[k] = np.where(self.hold_motion, 0.0, rows[-1])
        return out


def chunk_actions(chunk: Chunk, robot: RobotConfig) -> np.ndarray | None:
    """(H, D) physical actions in the robot's dimension order, or None for a chunk the bridge would
    refuse (it commanded nothing). DatasetError for a valid chunk in another space, frame or rate
    than the robot's actions: its steps would not mean the same thing as a label."""
    try:
        validate_chunk(chunk, robot)
        actions = chunk_to_array(chunk)
        frame = resolve_delta_frame(chunk.frame_id, robot) if chunk.action_space == EE_DELTA else robot.action.frame
    except ChunkError:
        return None
    a = robot.action
    if chunk.action_space != a.space or frame != a.frame or abs(chunk.dt - a.dt) > 1e-9:
        raise DatasetError(
            f"a chunk in {chunk.action_space} (frame {frame!r}, dt {chunk.dt} s) cannot label a "
            f"{a.space} dataset (frame {a.frame!r}, dt {a.dt} s); convert with --labels measured"
        )
    index = {n: i for i, n in enumerate(chunk.dimension_names)}
    missing = [n for n in a.dimension_names if n not in index]
    if missing:
        raise DatasetError(
            f"chunks name {list(chunk.dimension_names)}, without {missing} of config/{robot.name}.yaml's "
            f"action dimensions; convert with --labels measured"
        )
    return actions[:, [index[n] for n in a.dimension_names]]
