"""One action step to an end-effector target pose, and the per-step safety bounds on that target.

Poses are 4x4 homogeneous transforms named `T_<frame>_<body>`: `T_base_ee` is the TCP in the arm base frame,
translation in [m]. Every function returns new arrays and leaves its inputs untouched.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np

from ros2_vla.actions.rotations import (
    matrix_to_rotvec,
    matrix_to_rpy,
    rotation_angle,
    rotvec_to_matrix,
    rpy_to_matrix,
)
from ros2_vla.actions.spaces import BASE_FRAME, DELTA_FRAMES, EE_FRAME
from ros2_vla.errors import ChunkError, ConfigError

__all__ = [
    "PoseError",
    "StepClamp",
    "WorkspaceClip",
    "apply_ee_delta",
    "check_workspace",
    "clamp_step",
    "clip_to_workspace",
    "ee_absolute_target",
    "integrate_ee_deltas",
    "make_transform",
    "matrix_to_rpy",
    "pose_error",
    "rpy_to_matrix",
]


class StepClamp(NamedTuple):
    """A step target after `clamp_step`, and whether it was limited."""

    T: np.ndarray  # (4, 4) the target, limited
    clamped: bool  # True when translation or rotation was cut


class WorkspaceClip(NamedTuple):
    """A target after `clip_to_workspace`, and whether its position was moved."""

    T: np.ndarray  # (4, 4) the target, its position inside the box
    clipped: bool  # True when the position was moved


class PoseError(NamedTuple):
    """Position distance and rotation angle between two poses."""

    position: float  # [m] distance between the two TCP points
    rotation: float  # [rad] angle of the relative rotation, in [0, pi]


def make_transform(R: np.ndarray, p: np.ndarray) -> np.ndarray:
    """Rotation (3, 3) and translation [m] (3,) to a homogeneous transform (4, 4)."""
    T = np.eye(4)
    T[:3, :3] = R
    T[:3, 3] = p
    return T


def _vector3(v: np.ndarray, what: str) -> np.ndarray:
    v = np.asarray(v, dtype=np.float64)
    if v.shape != (3,) or not np.all(np.isfinite(v)):
        raise ChunkError(f"{what} must be 3 finite numbers, got {v!r}")
    return v


def _check_frame(frame: str) -> None:
    if frame not in DELTA_FRAMES:
        raise ChunkError(f"delta frame must be one of {DELTA_FRAMES}, got {frame!r}")


def apply_ee_delta(T_base_ee: np.ndarray, delta_xyz: np.ndarray, delta_rpy: np.ndarray, frame: str) -> np.ndarray:
    """Move the TCP by one delta action; returns `T_base_target` (4, 4).

    delta_xyz [m] (3,), delta_rpy [rad] (3,) (R_delta = Rz(yaw) Ry(pitch) Rx(roll)).
    frame "base" (BridgeData): translation along the base axes, rotation about the TCP point in base axes,
    `R_new = R_delta @ R_cur`. frame "ee": both in the current TCP frame, `T_new = T_cur @ T_delta`.
    """
    _check_frame(frame)
    d = _vector3(delta_xyz, "delta_xyz")
    R_delta = rpy_to_matrix(_vector3(delta_rpy, "delta_rpy"))
    R_cur, p_cur = T_base_ee[:3, :3], T_base_ee[:3, 3]
    if frame == BASE_FRAME:
        return make_transform(R_delta @ R_cur, p_cur + d)
    return make_transform(R_cur @ R_delta, p_cur + R_cur @ d)


def integrate_ee_deltas(
    T_base_ee: np.ndarray, deltas_xyz: np.ndarray, deltas_rpy: np.ndarray, frame: str
) -> np.ndarray:
    """Chain H delta actions from `T_base_ee`; step k applies to the target of step k-1. Returns (H, 4, 4).

    deltas_xyz [m] (H, 3), deltas_rpy [rad] (H, 3), frame as in `apply_ee_delta`.
    """
    _check_frame(frame)
    dx = np.asarray(deltas_xyz, dtype=np.float64)
    dr = np.asarray(deltas_rpy, dtype=np.float64)
    if dx.ndim != 2 or dx.shape[1] != 3 or dr.shape != dx.shape:
        raise ChunkError(f"deltas must both be (H, 3), got {dx.shape} and {dr.shape}")
    if not (np.all(np.isfinite(dx)) and np.all(np.isfinite(dr))):
        raise ChunkError("deltas contain NaN or infinite values")
    R_deltas = rpy_to_matrix(dr)
    out = np.empty((dx.shape[0], 4, 4))
    R, p = np.array(T_base_ee[:3, :3], dtype=np.float64), np.array(T_base_ee[:3, 3], dtype=np.float64)
    for k in range(dx.shape[0]):
        if frame == EE_FRAME:
            p = p + R @ dx[k]
            R = R @ R_deltas[k]
        else:
            p = p + dx[k]
            R = R_deltas[k] @ R
        out[k] = make_transform(R, p)
    return out


def ee_absolute_target(xyz: np.ndarray, rpy: np.ndarray) -> np.ndarray:
    """TCP pose from position [m] (3,) and roll/pitch/yaw [rad] (3,) in the arm base frame: `T_base_target`."""
    return make_transform(rpy_to_matrix(_vector3(rpy, "rpy")), _vector3(xyz, "xyz"))


def clamp_step(T_from: np.ndarray, T_to: np.ndarray, max_translation: float, max_rotation: float) -> StepClamp:
    """Limit the step from `T_from` to `T_to`: translation norm <= max_translation [m] and rotation angle
    (axis-angle of `R_to @ R_from.T`) <= max_rotation [rad]. Each part is cut along its own direction."""
    if not (max_translation >= 0.0 and max_rotation >= 0.0):
        raise ConfigError(f"step limits must be >= 0, got translation {max_translation}, rotation {max_rotation}")
    if not (np.all(np.isfinite(T_from)) and np.all(np.isfinite(T_to))):
        raise ChunkError("clamp_step got a pose with NaN or infinite entries")
    p_from, R_from = T_from[:3, 3], T_from[:3, :3]
    step = T_to[:3, 3] - p_from
    distance = math.sqrt(float(step @ step))
    R_rel = T_to[:3, :3] @ R_from.T
    angle = rotation_angle(R_rel)
    if distance <= max_translation and angle <= max_rotation:
        return StepClamp(np.array(T_to, dtype=np.float64), False)
    p = p_from + step * (max_translation / distance) if distance > max_translation else T_to[:3, 3]
    if angle > max_rotation:
        rotvec = matrix_to_rotvec(R_rel)
        R = rotvec_to_matrix(rotvec * (max_rotation / angle)) @ R_from
    else:
        R = T_to[:3, :3]
    return StepClamp(make_transform(R, p), True)


def check_workspace(box_min, box_max) -> tuple[np.ndarray, np.ndarray]:
    """The box corners [m] (3,) as float arrays; ConfigError when the box is empty."""
    lo = np.asarray(box_min, dtype=np.float64)
    hi = np.asarray(box_max, dtype=np.float64)
    if not np.all(lo <= hi):
        raise ConfigError(f"workspace box is empty: min {lo} must be <= max {hi} on every axis (safety config)")
    return lo, hi


def clip_to_workspace(T: np.ndarray, box_min: np.ndarray, box_max: np.ndarray) -> WorkspaceClip:
    """Move the target's position [m] into the axis-aligned box [box_min, box_max] (base frame); the
    orientation is kept."""
    lo, hi = check_workspace(box_min, box_max)
    p = T[:3, 3]
    p_clipped = np.minimum(np.maximum(p, lo), hi)
    clipped = bool(np.any(p_clipped != p))
    out = np.array(T, dtype=np.float64)
    out[:3, 3] = p_clipped
    return WorkspaceClip(out, clipped)


def pose_error(T_a: np.ndarray, T_b: np.ndarray) -> PoseError:
    """Position distance [m] and rotation angle [rad] between two poses in the same frame."""
    diff = T_a[:3, 3] - T_b[:3, 3]
    return PoseError(math.sqrt(float(diff @ diff)), rotation_angle(T_a[:3, :3].T @ T_b[:3, :3]))
