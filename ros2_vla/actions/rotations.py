"""Rotation helpers over plain numpy: roll/pitch/yaw and the axis-angle (rotation vector) maps.

Roll/pitch/yaw are fixed-axis (extrinsic) X, then Y, then Z, as in URDF and BridgeData:
`R = Rz(yaw) @ Ry(pitch) @ Rx(roll)`.
"""

from __future__ import annotations

import math

import numpy as np

SMALL_ANGLE = 1e-7  # [rad] below this the rotation vector comes from the first-order term
NEAR_PI = 1e-3  # [rad] within this of pi the skew part is too small: the axis comes from R + R^T


def rpy_to_matrix(rpy: np.ndarray) -> np.ndarray:
    """Roll, pitch, yaw [rad], shape (..., 3), to rotation matrices, shape (..., 3, 3)."""
    rpy = np.asarray(rpy, dtype=np.float64)
    cr, cp, cy = np.cos(rpy[..., 0]), np.cos(rpy[..., 1]), np.cos(rpy[..., 2])
    sr, sp, sy = np.sin(rpy[..., 0]), np.sin(rpy[..., 1]), np.sin(rpy[..., 2])
    R = np.empty(rpy.shape[:-1] + (3, 3))
    R[..., 0, 0] = cy * cp
    R[..., 0, 1] = cy * sp * sr - sy * cr
    R[..., 0, 2] = cy * sp * cr + sy * sr
    R[..., 1, 0] = sy * cp
    R[..., 1, 1] = sy * sp * sr + cy * cr
    R[..., 1, 2] = sy * sp * cr - cy * sr
    R[..., 2, 0] = -sp
    R[..., 2, 1] = cp * sr
    R[..., 2, 2] = cp * cr
    return R


def matrix_to_rpy(R: np.ndarray) -> np.ndarray:
    """Rotation (..., 3, 3) or transform (..., 4, 4) to roll, pitch, yaw [rad], shape (..., 3).

    Pitch lies in [-pi/2, pi/2]. At gimbal lock (pitch = +-pi/2) only roll -+ yaw is defined: yaw is set to 0.
    """
    R = np.asarray(R, dtype=np.float64)[..., :3, :3]
    cos_pitch = np.hypot(R[..., 0, 0], R[..., 1, 0])
    pitch = np.arctan2(-R[..., 2, 0], cos_pitch)
    locked = cos_pitch < 1e-9
    sign = np.where(R[..., 2, 0] <= 0.0, 1.0, -1.0)  # sin(pitch) at the lock
    roll = np.where(locked, np.arctan2(sign * R[..., 0, 1], R[..., 1, 1]), np.arctan2(R[..., 2, 1], R[..., 2, 2]))
    yaw = np.where(locked, 0.0, np.arctan2(R[..., 1, 0], R[..., 0, 0]))
    return np.stack([roll, pitch, yaw], axis=-1)


def _sin_cos(R: np.ndarray) -> tuple[float, float]:
    """sin and cos of the rotation angle, from the skew and trace parts of R (3, 3)."""
    s = 0.5 * math.sqrt((R[2, 1] - R[1, 2]) ** 2 + (R[0, 2] - R[2, 0]) ** 2 + (R[1, 0] - R[0, 1]) ** 2)
    c = 0.5 * (R[0, 0] + R[1, 1] + R[2, 2] - 1.0)
    return s, c


def rotation_angle(R: np.ndarray) -> float:
    """Angle [rad] in [0, pi] of one rotation (3, 3); accurate near 0 and pi (atan2, not arccos)."""
    return math.atan2(*_sin_cos(R))


def matrix_to_rotvec(R: np.ndarray) -> np.ndarray:
    """One rotation (3, 3) to its rotation vector (axis * angle) [rad], shape (3,), angle in [0, pi]."""
    R = np.asarray(R, dtype=np.float64)
    skew = np.array([R[2, 1] - R[1, 2], R[0, 2] - R[2, 0], R[1, 0] - R[0, 1]])  # 2 sin(angle) axis
    s, c = _sin_cos(R)
    angle = math.atan2(s, c)
    if angle < SMALL_ANGLE:
        return 0.5 * skew
    if angle < math.pi - NEAR_PI:
        return skew * (angle / (2.0 * s))
    # Near pi the skew part vanishes; the symmetric part is cos I + (1 - cos) a a^T, so its largest
    # column, less cos on the diagonal, lies along the axis; the skew part still gives the sign.
    A = 0.5 * (R + R.T) - c * np.eye(3)
    col = A[:, int(np.argmax(np.diag(A)))]
    axis = col / np.linalg.norm(col)
    if axis @ skew < 0.0:
        axis = -axis
    return axis * angle


def rotvec_to_matrix(rotvec: np.ndarray) -> np.ndarray:
    """Rotation vector (axis * angle) [rad], shape (3,), to a rotation matrix (3, 3) (Rodrigues)."""
    v = np.asarray(rotvec, dtype=np.float64)
    angle = math.sqrt(float(v @ v))
    K = np.array([[0.0, -v[2], v[1]], [v[2], 0.0, -v[0]], [-v[1], v[0], 0.0]])
    if angle < SMALL_ANGLE:
        return np.eye(3) + K + 0.5 * (K @ K)
    return np.eye(3) + (math.sin(angle) / angle) * K + ((1.0 - math.cos(angle)) / angle**2) * (K @ K)
