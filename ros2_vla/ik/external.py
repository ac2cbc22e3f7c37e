"""Judging an IK answer from another solver (MoveIt's /compute_ik) as the package's own solver is judged.

The bridge's planner takes any callable with `solve_ik`'s signature. An external backend returns joint
positions and a success flag; `external_ik_result` turns them into the same `IkResult`, with the pose
errors and the Jacobian condition number measured on this package's model, so tolerances and the
singularity scale mean the same thing whichever backend answered.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from ros2_vla.errors import KinematicsError
from ros2_vla.ik.limits import clip_to_limits
from ros2_vla.ik.params import IkParams, IkResult
from ros2_vla.ik.singularity import condition_number
from ros2_vla.ik.tasks import pose_residual

if TYPE_CHECKING:
    from ros2_vla.kinematics.model import ArmModel


def external_ik_result(
    model: ArmModel, T_base_target: np.ndarray, q: np.ndarray, solved: bool, params: IkParams
) -> IkResult:
    """IkResult for joint positions q [rad] (n,) another solver found for `T_base_target` (4, 4, base frame).

    q is clipped into the configured joint limits first (another description may allow a little more);
    converged needs the solver's own success and both errors within `params`' tolerances at that q.
    """
    q = np.asarray(q, dtype=np.float64)
    if q.shape != (model.nq,) or not np.all(np.isfinite(q)):
        raise KinematicsError(
            f"IK answer must be {model.nq} finite joint positions [rad] in the order {model.joint_names}; got {q!r}"
        )
    q = clip_to_limits(q, model.lower, model.upper)
    T_ee, J = model.fk_and_jacobian(q)
    error = pose_residual(T_ee, np.asarray(T_base_target, dtype=np.float64))
    pos_err, rot_err = float(np.linalg.norm(error[:3])), float(np.linalg.norm(error[3:]))
    converged = bool(solved) and pos_err <= params.position_tolerance and rot_err <= params.rotation_tolerance
    return IkResult(q, pos_err, rot_err, 0, condition_number(J), converged)  # iterations: not reported


def matrix_to_quaternion(R: np.ndarray) -> np.ndarray:
    """Rotation (3, 3) to a unit quaternion (x, y, z, w), w >= 0 (geometry_msgs order)."""
    R = np.asarray(R, dtype=np.float64)
    trace = R[0, 0] + R[1, 1] + R[2, 2]
    # Shepperd: divide by the largest of the four candidates, never by a number near zero.
    if trace > max(R[0, 0], R[1, 1], R[2, 2]):
        w = 0.5 * np.sqrt(1.0 + trace)
        q = np.array([(R[2, 1] - R[1, 2]) / (4 * w), (R[0, 2] - R[2, 0]) / (4 * w), (R[1, 0] - R[0, 1]) / (4 * w), w])
    else:
        i = int(np.argmax([R[0, 0], R[1, 1], R[2, 2]]))
        j, k = (i + 1) % 3, (i + 2) % 3
        s = 0.5 * np.sqrt(1.0 + R[i, i] - R[j, j] - R[k, k])
        q = np.empty(4)
        q[i] = s
        q[j] = (R[j, i] + R[i, j]) / (4 * s)
        q[k] = (R[k, i] + R[i, k]) / (4 * s)
        q[3] = (R[k, j] - R[j, k]) / (4 * s)
    q /= np.linalg.norm(q)
    return -q if q[3] < 0.0 else q
