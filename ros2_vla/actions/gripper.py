"""The gripper action dimension to a gripper joint position.

Policies trained on Open X-Embodiment data (OpenVLA, Octo, BridgeData V2) emit the gripper as a number in
[0, 1] with 1 = open; the config's `GripperSpec` says whether to threshold it and whether this robot's
policy means the opposite.
"""

from __future__ import annotations

import numpy as np

from ros2_vla.config import GripperSpec
from ros2_vla.errors import ChunkError


def gripper_openness(action_values: np.ndarray, spec: GripperSpec) -> np.ndarray:
    """Action values (any shape) to openness in [0, 1] (0 = closed, 1 = open), float64, same shape.

    Binarized: values >= spec.threshold count as 1, others as 0 (before inversion). Then 1 - v if
    spec.invert, then clip to [0, 1].
    """
    v = np.asarray(action_values, dtype=np.float64)
    if not np.all(np.isfinite(v)):
        raise ChunkError(f"gripper action for {spec.joint} is NaN or infinite: {v}")
    if spec.binarize:
        v = (v >= spec.threshold).astype(np.float64)
    if spec.invert:
        v = 1.0 - v
    return np.clip(v, 0.0, 1.0)


def gripper_commands(action_values: np.ndarray, spec: GripperSpec) -> np.ndarray:
    """Action values (any shape) to gripper joint positions [m or rad], same shape: openness mapped linearly
    from spec.closed_position (0) to spec.open_position (1)."""
    o = gripper_openness(action_values, spec)
    # The convex form hits both ends exactly; the clip removes rounding beyond them.
    position = (1.0 - o) * spec.closed_position + o * spec.open_position
    lo, hi = sorted((spec.closed_position, spec.open_position))
    return np.clip(position, lo, hi)


def gripper_command(action_value: float, spec: GripperSpec) -> float:
    """One action value to one gripper joint position [m or rad], within [closed, open] of the spec."""
    return float(gripper_commands(np.float64(action_value), spec))
