"""The two IK terms: reach a TCP pose (primary), stay near home (null space, secondary)."""

from __future__ import annotations

import numpy as np

from ros2_vla.actions.rotations import matrix_to_rotvec

PINV_RCOND = 1e-6  # singular values below this fraction of the largest count as zero in the projector


def pose_residual(T_base_ee: np.ndarray, T_base_target: np.ndarray) -> np.ndarray:
    """6-D error (6,) [m; rad] from the TCP to the target, base-aligned axes, rows [v; w] like the Jacobian.

    Translation: p_target - p_ee. Rotation: the log map of R_target R_ee^T, the rotation vector that
    turns the TCP onto the target about base axes.
    """
    e = np.empty(6)
    e[:3] = T_base_target[:3, 3] - T_base_ee[:3, 3]
    e[3:] = matrix_to_rotvec(T_base_target[:3, :3] @ T_base_ee[:3, :3].T)
    return e


def dls_step(J: np.ndarray, error: np.ndarray, damping: float) -> np.ndarray:
    """Damped least squares joint step [rad] (n,): J^T (J J^T + lambda^2 I)^-1 error. J (6, n), error (6,)."""
    JJt = J @ J.T
    return J.T @ np.linalg.solve(JJt + damping**2 * np.eye(JJt.shape[0]), error)


def nullspace_step(J: np.ndarray, q: np.ndarray, q_home: np.ndarray, gain: float) -> np.ndarray:
    """Pull toward home [rad] (n,) that leaves the TCP still to first order: (I - J^+ J) gain (home - q).

    A full-rank 6-DoF arm has no null space, so this is zero there.
    """
    n = J.shape[1]
    projector = np.eye(n) - np.linalg.pinv(J, rcond=PINV_RCOND) @ J
    return projector @ (gain * (q_home - q))
