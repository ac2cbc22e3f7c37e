"""Damped-least-squares IK to one TCP pose, and to a chunk of poses seeded step by step.

Each iteration: pose error (log map, base-aligned) -> DLS step -> plus the null-space pull toward home
-> step scaled to `max_step` -> clipped into the joint limits. The best iterate is kept, so an
unreachable target (a 6-DoF WidowX cannot reach every 6-D pose) returns the nearest pose found with
converged=False instead of raising: the caller decides whether to hold.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from ros2_vla.errors import KinematicsError
from ros2_vla.ik.limits import clip_to_limits, limit_step
from ros2_vla.ik.params import ChunkIk, IkParams, IkResult
from ros2_vla.ik.singularity import condition_number
from ros2_vla.ik.tasks import dls_step, nullspace_step, pose_residual

NULLSPACE_FADE = 100.0  # error (in tolerances) below which the null-space pull fades linearly to zero

if TYPE_CHECKING:
    from ros2_vla.kinematics.model import ArmModel


def solve_ik(model: ArmModel, T_base_target: np.ndarray, q_seed: np.ndarray, params: IkParams = IkParams()) -> IkResult:
    """Joint positions [rad] (n,) that put the TCP at `T_base_target` (4, 4, arm base frame), from q_seed (n,)."""
    T_target = _check_pose(T_base_target)
    q = clip_to_limits(_check_seed(model, q_seed), model.lower, model.upper)
    best: IkResult | None = None
    best_cost = np.inf
    for iteration in range(params.max_iterations + 1):
        T_ee, J = model.fk_and_jacobian(q)
        error = pose_residual(T_ee, T_target)
        pos_err, rot_err = float(np.linalg.norm(error[:3])), float(np.linalg.norm(error[3:]))
        converged = pos_err <= params.position_tolerance and rot_err <= params.rotation_tolerance
        # Errors in units of their tolerances, so metres and radians weigh alike in "best".
        cost = pos_err / params.position_tolerance + rot_err / params.rotation_tolerance
        if cost < best_cost:
            best_cost = cost
            best = IkResult(q.copy(), pos_err, rot_err, iteration, condition_number(J), converged)
        if converged or iteration == params.max_iterations:
            break
        dq = dls_step(J, error, params.damping)
        if params.nullspace_gain > 0.0:
            # The pull is exact only to first order: fade it as the pose error nears tolerance, or its
            # second-order TCP motion would hold the error above the tolerance for ever.
            fade = min(1.0, cost / NULLSPACE_FADE)
            dq = dq + nullspace_step(J, q, model.home, params.nullspace_gain * fade)
        q = clip_to_limits(q + limit_step(dq, params.max_step), model.lower, model.upper)
    assert best is not None  # the loop body runs at least once
    return best


def solve_chunk(
    model: ArmModel, T_base_targets: np.ndarray, q_measured: np.ndarray, params: IkParams = IkParams()
) -> ChunkIk:
    """IK of H successive targets (H, 4, 4): step 0 seeded from the measured joint state [rad] (n,),
    each later step from the solution before it (continuity: the arm stays in one IK branch)."""
    targets = np.asarray(T_base_targets, dtype=np.float64)
    if targets.ndim != 3 or targets.shape[1:] != (4, 4):
        raise KinematicsError(f"chunk targets must be (H, 4, 4) poses T_base_target; got shape {targets.shape}")
    results = []
    seed = q_measured
    for T in targets:
        results.append(solve_ik(model, T, seed, params))
        seed = results[-1].q
    n = model.nq
    return ChunkIk(
        positions=np.array([r.q for r in results]).reshape(-1, n),
        position_errors=np.array([r.position_error for r in results]),
        rotation_errors=np.array([r.rotation_error for r in results]),
        condition_numbers=np.array([r.condition_number for r in results]),
        converged=np.array([r.converged for r in results], dtype=bool),
        iterations=np.array([r.iterations for r in results], dtype=int),
    )


def _check_pose(T: np.ndarray) -> np.ndarray:
    T = np.asarray(T, dtype=np.float64)
    if T.shape != (4, 4) or not np.all(np.isfinite(T)):
        raise KinematicsError(f"IK target must be a finite 4x4 transform T_base_target; got shape {T.shape}")
    return T


def _check_seed(model: ArmModel, q_seed: np.ndarray) -> np.ndarray:
    q = np.asarray(q_seed, dtype=np.float64)
    if q.shape != (model.nq,) or not np.all(np.isfinite(q)):
        raise KinematicsError(
            f"IK seed must be {model.nq} finite joint positions [rad] in the order {model.joint_names}; got {q_seed!r}"
        )
    return q
