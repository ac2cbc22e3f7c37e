"""Names of the action spaces and end-effector dimensions a chunk may use.

These are the vocabulary of the ActionChunk message (`action_space`, `dimension_names`), not
robot facts: which joints a robot has still comes only from its config.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

EE_DELTA = "ee_delta"  # per-step TCP motion: translation [m] and roll/pitch/yaw [rad]
EE_ABSOLUTE = "ee_absolute"  # TCP pose in the arm base frame: position [m], roll/pitch/yaw [rad]
JOINT_POSITION = "joint_position"  # absolute joint positions [rad or m]
JOINT_DELTA = "joint_delta"  # per-step joint motion [rad or m]
JOINT_VELOCITY = "joint_velocity"  # joint velocities [rad/s or m/s], each held for dt (DROID-style policies)

EE_SPACES = (EE_DELTA, EE_ABSOLUTE)
JOINT_SPACES = (JOINT_POSITION, JOINT_DELTA, JOINT_VELOCITY)
ACTION_SPACES = EE_SPACES + JOINT_SPACES
DELTA_SPACES = (EE_DELTA, JOINT_DELTA, JOINT_VELOCITY)  # non-gripper dims are motions (per step, or per second)

# Dimension names of end-effector actions; a chunk may use any subset, in any order.
EE_TRANSLATION = ("x", "y", "z")
EE_ROTATION = ("roll", "pitch", "yaw")
GRIPPER = "gripper"
EE_DIMENSIONS = EE_TRANSLATION + EE_ROTATION + (GRIPPER,)

# Frames the translation/rotation of an ee_delta action may be expressed in.
BASE_FRAME = "base"  # BridgeData convention: deltas in the arm base axes, rotation about the TCP point
EE_FRAME = "ee"  # deltas in the current TCP frame
DELTA_FRAMES = (BASE_FRAME, EE_FRAME)


def hold_dims(action_space: str, dimension_names: Sequence[str]) -> np.ndarray:
    """(D,) bool: True where holding still repeats the last value (absolute targets, grippers), False
    where it is 0 (per-step motions of a delta action space). Chunk padding and commanded labels use it."""
    if action_space not in DELTA_SPACES:
        return np.ones(len(dimension_names), bool)
    return np.array(["gripper" in name for name in dimension_names], bool)
