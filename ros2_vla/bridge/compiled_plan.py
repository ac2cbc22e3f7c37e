"""The end-effector step loop of `ChunkPlanner` as compiled code: kinematics, targets, bounds and IK per step.

Step k, exactly as the planner's Python loop with `ros2_vla.actions.targets` and `ros2_vla.ik.solve_ik`:
target from the previous target (delta) or the action (absolute) -> step clamp -> workspace box -> IK
seeded from the previous step -> singularity scale; an IK failure or a singularity halt ends the chunk
there. The planner turns the per-step arrays into its `ChunkPlan` (codes, messages, worst residuals).

Why compiled: the loop is about 40 small matrix operations per step, and from Python their call overhead
made a 50-step Franka chunk cost about 80 times its kinematics. pinocchio (`kinematics.model`) stays the
arm model everywhere else; the chain here is read from the same `ChainSpec` and tested equal to it.
Why one module: numba caches compiled code per source file and does not notice a change in another
file that a cached function calls; kept together, any edit here recompiles all of it.

Sections: the chain's FK and Jacobian; the IK (one 6x6 eigensolve per iteration); the targets and
bounds; the step loop.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from numba import njit

from ros2_vla.actions.rotations import NEAR_PI, SMALL_ANGLE, rpy_to_matrix
from ros2_vla.config import ChainSpec
from ros2_vla.ik.solve import NULLSPACE_FADE
from ros2_vla.ik.tasks import PINV_RCOND

RAN_THROUGH, IK_FAILED, HALTED = 0, 1, 2  # how the loop ended
_JACOBI_SWEEPS = 30  # a 6x6 converges in 5-8; the cap only bounds a pathological input
_JACOBI_EPS = 1e-15  # off-diagonal mass, relative to the largest diagonal entry, counted as zero


# --- the chain: forward kinematics and the TCP Jacobian -----------------------------------------


@dataclass(frozen=True)
class ChainArrays:
    """A chain of revolute joints as arrays: joint i turns about axes[i] (its own frame) after origins[i]."""

    origins: np.ndarray  # (n, 4, 4) T_parent_joint at q = 0 (the URDF joint origin)
    axes: np.ndarray  # (n, 3) unit rotation axis in the joint frame
    tcp: np.ndarray  # (4, 4) T_last_tcp: the TCP in the last joint's frame

    @classmethod
    def from_chain(cls, chain: ChainSpec) -> ChainArrays:
        origins = np.array([_transform(j.xyz, j.rpy) for j in chain.joints])
        axes = np.array([np.asarray(j.axis, float) / np.linalg.norm(j.axis) for j in chain.joints])
        return cls(np.ascontiguousarray(origins), np.ascontiguousarray(axes), _transform(chain.ee_xyz, chain.ee_rpy))


def _transform(xyz, rpy) -> np.ndarray:
    T = np.eye(4)
    T[:3, :3] = rpy_to_matrix(np.asarray(rpy, float))
    T[:3, 3] = xyz
    return T


@njit(cache=True)
def _mul(A, B, out):  # 4x4 homogeneous product, no temporaries
    for i in range(3):
        for j in range(4):
            s = A[i, 0] * B[0, j] + A[i, 1] * B[1, j] + A[i, 2] * B[2, j]
            out[i, j] = s + A[i, 3] if j == 3 else s
    out[3, 0], out[3, 1], out[3, 2], out[3, 3] = 0.0, 0.0, 0.0, 1.0


@njit(cache=True)
def _axis_rotation(axis, angle, out):  # Rodrigues, as a 4x4 with no translation
    x, y, z = axis[0], axis[1], axis[2]
    c, s = np.cos(angle), np.sin(angle)
    t = 1.0 - c
    out[0, 0], out[0, 1], out[0, 2] = c + t * x * x, t * x * y - s * z, t * x * z + s * y
    out[1, 0], out[1, 1], out[1, 2] = t * x * y + s * z, c + t * y * y, t * y * z - s * x
    out[2, 0], out[2, 1], out[2, 2] = t * x * z - s * y, t * y * z + s * x, c + t * z * z
    out[0, 3], out[1, 3], out[2, 3] = 0.0, 0.0, 0.0
    out[3, 0], out[3, 1], out[3, 2], out[3, 3] = 0.0, 0.0, 0.0, 1.0


@njit(cache=True)
def fk_jacobian(origins, axes, tcp, q, T_out, J_out):
    """T_base_tcp (4, 4) into T_out and the TCP Jacobian (6, n), rows [v; w] in base-aligned axes, into J_out."""
    n = q.shape[0]
    T = np.eye(4)
    at_joint = np.empty((4, 4))
    turn = np.empty((4, 4))
    points = np.empty((n, 3))
    for i in range(n):
        _mul(T, origins[i], at_joint)
        for r in range(3):  # the joint's axis and origin in the base frame (turning about it moves neither)
            J_out[3 + r, i] = at_joint[r, 0] * axes[i, 0] + at_joint[r, 1] * axes[i, 1] + at_joint[r, 2] * axes[i, 2]
            points[i, r] = at_joint[r, 3]
        _axis_rotation(axes[i], q[i], turn)
        _mul(at_joint, turn, T)
    _mul(T, tcp, T_out)
    for i in range(n):  # v = w x (p_tcp - p_joint)
        dx, dy, dz = T_out[0, 3] - points[i, 0], T_out[1, 3] - points[i, 1], T_out[2, 3] - points[i, 2]
        wx, wy, wz = J_out[3, i], J_out[4, i], J_out[5, i]
        J_out[0, i] = wy * dz - wz * dy
        J_out[1, i] = wz * dx - wx * dz
        J_out[2, i] = wx * dy - wy * dx


# --- IK: the damped-least-squares iteration of `ik.solve.solve_ik` ----------------------------
# One eigensolve of J J^T = U diag(s^2) U^T per iteration gives all three things the Python solver
# computes separately: the DLS step J^T (J J^T + l^2 I)^-1 e = J^T U diag(1 / (s^2 + l^2)) U^T e, the
# null-space projector I - J^+ J = I - sum v v^T over the singular values pinv keeps (v = J^T u / s) and
# the condition number s_max / s_min. Results match `solve_ik` to rounding (tested). Arms of 6 or more
# joints only: below 6, J J^T is singular and the planner runs the Python loop.


@njit(cache=True)
def rotation_sin_cos(R):
    """sin and cos of the rotation angle of R (3, 3 or the top-left of a 4x4)."""
    s = 0.5 * math.sqrt((R[2, 1] - R[1, 2]) ** 2 + (R[0, 2] - R[2, 0]) ** 2 + (R[1, 0] - R[0, 1]) ** 2)
    c = 0.5 * (R[0, 0] + R[1, 1] + R[2, 2] - 1.0)
    return s, c


@njit(cache=True)
def matrix_to_rotvec(R, out):
    """Rotation vector [rad] (3,) of R (3, 3) into out, as `rotations.matrix_to_rotvec`."""
    k0, k1, k2 = R[2, 1] - R[1, 2], R[0, 2] - R[2, 0], R[1, 0] - R[0, 1]
    s, c = rotation_sin_cos(R)
    angle = math.atan2(s, c)
    if angle < SMALL_ANGLE:
        out[0], out[1], out[2] = 0.5 * k0, 0.5 * k1, 0.5 * k2
        return
    if angle < math.pi - NEAR_PI:
        f = angle / (2.0 * s)
        out[0], out[1], out[2] = k0 * f, k1 * f, k2 * f
        return
    best, col = -np.inf, 0
    for i in range(3):
        if R[i, i] - c > best:
            best, col = R[i, i] - c, i
    a = np.empty(3)
    for i in range(3):
        a[i] = 0.5 * (R[i, col] + R[col, i]) - (c if i == col else 0.0)
    norm = math.sqrt(a[0] ** 2 + a[1] ** 2 + a[2] ** 2)
    sign = 1.0 if a[0] * k0 + a[1] * k1 + a[2] * k2 >= 0.0 else -1.0
    for i in range(3):
        out[i] = sign * a[i] / norm * angle


@njit(cache=True)
def pose_residual(T_ee, T_target, e):
    """6-D error [m; rad] from the TCP to the target into e (6,), as `tasks.pose_residual`."""
    for i in range(3):
        e[i] = T_target[i, 3] - T_ee[i, 3]
    R = np.empty((3, 3))
    for i in range(3):
        for j in range(3):
            R[i, j] = T_target[i, 0] * T_ee[j, 0] + T_target[i, 1] * T_ee[j, 1] + T_target[i, 2] * T_ee[j, 2]
    w = np.empty(3)
    matrix_to_rotvec(R, w)
    e[3], e[4], e[5] = w[0], w[1], w[2]


@njit(cache=True)
def symmetric_eigen(A, values, vectors):
    """Eigenvalues (m,) and eigenvectors (columns of (m, m)) of a symmetric A (m, m), by cyclic Jacobi
    rotations: for the 6x6 J J^T a few microseconds, where a LAPACK SVD call from compiled code costs ~6."""
    m = A.shape[0]
    a = A.copy()
    vectors[:, :] = 0.0
    for i in range(m):
        vectors[i, i] = 1.0
    scale = 0.0
    for i in range(m):
        scale = max(scale, abs(a[i, i]))
    for _sweep in range(_JACOBI_SWEEPS):
        off = 0.0
        for i in range(m):
            for j in range(i + 1, m):
                off += a[i, j] * a[i, j]
        if off <= (_JACOBI_EPS * scale) ** 2:
            break
        for p in range(m - 1):
            for r in range(p + 1, m):
                if a[p, r] == 0.0:
                    continue
                theta = (a[r, r] - a[p, p]) / (2.0 * a[p, r])
                t = (1.0 if theta >= 0.0 else -1.0) / (abs(theta) + math.sqrt(theta * theta + 1.0))
                c = 1.0 / math.sqrt(t * t + 1.0)
                sn = t * c
                for k in range(m):  # columns p, r
                    akp, akr = a[k, p], a[k, r]
                    a[k, p], a[k, r] = c * akp - sn * akr, sn * akp + c * akr
                for k in range(m):  # rows p, r
                    apk, ark = a[p, k], a[r, k]
                    a[p, k], a[r, k] = c * apk - sn * ark, sn * apk + c * ark
                for k in range(m):
                    vkp, vkr = vectors[k, p], vectors[k, r]
                    vectors[k, p], vectors[k, r] = c * vkp - sn * vkr, sn * vkp + c * vkr
    for i in range(m):
        values[i] = a[i, i]


@njit(cache=True)
def _gram(J, out):
    """out = J J^T (6, 6), written out: numba's `@` would call SciPy's BLAS, for a 6x7 product."""
    for i in range(6):
        for k in range(i, 6):
            acc = 0.0
            for j in range(J.shape[1]):
                acc += J[i, j] * J[k, j]
            out[i, k] = out[k, i] = acc


@njit(cache=True)
def solve_ik(
    origins,
    axes,
    tcp,
    lower,
    upper,
    home,
    T_target,
    q_seed,
    damping,
    max_iterations,
    position_tolerance,
    rotation_tolerance,
    nullspace_gain,
    max_step,
    q_out,
):
    """The best joint positions into q_out (n,); returns (position error, rotation error, iterations,
    condition number, converged) as `IkResult`. Arguments as `solve_ik` and `IkParams`, unpacked."""
    n = q_seed.shape[0]
    q = np.minimum(np.maximum(q_seed, lower), upper)
    T = np.empty((4, 4))
    J = np.empty((6, n))
    e = np.empty(6)
    s2 = np.empty(6)
    U = np.empty((6, 6))
    JJt = np.empty((6, 6))
    JtU = np.empty((n, 6))
    dq = np.empty(n)
    best_cost = np.inf
    best = (np.inf, np.inf, 0, np.inf, False)
    for iteration in range(max_iterations + 1):
        fk_jacobian(origins, axes, tcp, q, T, J)
        pose_residual(T, T_target, e)
        pos_err = math.sqrt(e[0] ** 2 + e[1] ** 2 + e[2] ** 2)
        rot_err = math.sqrt(e[3] ** 2 + e[4] ** 2 + e[5] ** 2)
        converged = pos_err <= position_tolerance and rot_err <= rotation_tolerance
        cost = pos_err / position_tolerance + rot_err / rotation_tolerance
        # J J^T = U diag(s^2) U^T: the singular values s and left vectors U of J from one 6x6 eigensolve.
        _gram(J, JJt)
        symmetric_eigen(JJt, s2, U)
        s_max = math.sqrt(max(s2.max(), 0.0))
        s_min = math.sqrt(max(s2.min(), 0.0))
        if cost < best_cost:
            best_cost = cost
            condition = s_max / s_min if s_min > 0.0 else np.inf
            best = (pos_err, rot_err, iteration, condition, converged)
            q_out[:] = q
        if converged or iteration == max_iterations:
            break
        # DLS step J^T (J J^T + l^2 I)^-1 e = J^T U diag(1 / (s^2 + l^2)) U^T e.
        JtU[:, :] = 0.0
        dq[:] = 0.0
        for i in range(6):
            weight = 0.0  # (U^T e)_i / (s_i^2 + l^2)
            for r in range(6):
                weight += U[r, i] * e[r]
                for j in range(n):
                    JtU[j, i] += J[r, j] * U[r, i]
            weight /= s2[i] + damping * damping
            for j in range(n):
                dq[j] += JtU[j, i] * weight
        if nullspace_gain > 0.0:
            # I - J^+ J = I - sum over kept singular values of v v^T, with v = J^T u / s (pinv's cutoff).
            fade = min(1.0, cost / NULLSPACE_FADE)
            pull = nullspace_gain * fade * (home - q)
            dq += pull
            for i in range(6):
                if s2[i] > 0.0 and math.sqrt(s2[i]) > PINV_RCOND * s_max:
                    along = 0.0
                    for j in range(n):
                        along += JtU[j, i] * pull[j]
                    for j in range(n):
                        dq[j] -= JtU[j, i] * along / s2[i]
        largest = np.max(np.abs(dq))
        if largest > max_step:
            dq *= max_step / largest
        q = np.minimum(np.maximum(q + dq, lower), upper)
    return best


# --- targets and safety bounds (as ros2_vla.actions.targets) and the step loop -----------------


@njit(cache=True)
def _rpy_to_matrix(r, p, y, out):
    cr, cp, cy, sr, sp, sy = math.cos(r), math.cos(p), math.cos(y), math.sin(r), math.sin(p), math.sin(y)
    out[0, 0], out[0, 1], out[0, 2] = cy * cp, cy * sp * sr - sy * cr, cy * sp * cr + sy * sr
    out[1, 0], out[1, 1], out[1, 2] = sy * cp, sy * sp * sr + cy * cr, sy * sp * cr - cy * sr
    out[2, 0], out[2, 1], out[2, 2] = -sp, cp * sr, cp * cr


@njit(cache=True)
def _rotvec_to_matrix(v, out):
    angle = math.sqrt(v[0] ** 2 + v[1] ** 2 + v[2] ** 2)
    K = np.array([[0.0, -v[2], v[1]], [v[2], 0.0, -v[0]], [-v[1], v[0], 0.0]])
    KK = np.empty((3, 3))
    _rot_mul(K, K, KK)
    if angle < SMALL_ANGLE:  # second order, as rotations.rotvec_to_matrix
        a, b = 1.0, 0.5
    else:
        a, b = math.sin(angle) / angle, (1.0 - math.cos(angle)) / angle**2
    for i in range(3):
        for j in range(3):
            out[i, j] = (1.0 if i == j else 0.0) + a * K[i, j] + b * KK[i, j]


@njit(cache=True)
def _rot_mul(A, B, out, transpose_b=False):
    """out[:3, :3] = A[:3, :3] @ B[:3, :3] (or @ B^T); out must not alias A or B."""
    for i in range(3):
        for j in range(3):
            if transpose_b:
                out[i, j] = A[i, 0] * B[j, 0] + A[i, 1] * B[j, 1] + A[i, 2] * B[j, 2]
            else:
                out[i, j] = A[i, 0] * B[0, j] + A[i, 1] * B[1, j] + A[i, 2] * B[2, j]


@njit(cache=True)
def _target(T_prev, xyz, rpy, absolute, ee_frame, out):
    """The step's target pose into out (4, 4): `ee_absolute_target` or `apply_ee_delta`."""
    R = np.empty((3, 3))
    _rpy_to_matrix(rpy[0], rpy[1], rpy[2], R)
    out[3, 0], out[3, 1], out[3, 2], out[3, 3] = 0.0, 0.0, 0.0, 1.0
    if absolute:
        for i in range(3):
            out[i, 0], out[i, 1], out[i, 2], out[i, 3] = R[i, 0], R[i, 1], R[i, 2], xyz[i]
    elif ee_frame:  # T_prev @ T_delta
        _rot_mul(T_prev, R, out)
        for i in range(3):
            out[i, 3] = T_prev[i, 3] + T_prev[i, 0] * xyz[0] + T_prev[i, 1] * xyz[1] + T_prev[i, 2] * xyz[2]
    else:  # rotate about the TCP point in base axes, translate along base axes
        _rot_mul(R, T_prev, out)
        for i in range(3):
            out[i, 3] = T_prev[i, 3] + xyz[i]


@njit(cache=True)
def _clamp_step(T_from, T, max_translation, max_rotation):
    """`targets.clamp_step` in place on T."""
    step = np.empty(3)
    for i in range(3):
        step[i] = T[i, 3] - T_from[i, 3]
    distance = math.sqrt(step[0] ** 2 + step[1] ** 2 + step[2] ** 2)
    R_rel = np.empty((3, 3))
    _rot_mul(T, T_from, R_rel, True)
    s, c = rotation_sin_cos(R_rel)
    angle = math.atan2(s, c)
    if distance <= max_translation and angle <= max_rotation:
        return
    if distance > max_translation:
        for i in range(3):
            T[i, 3] = T_from[i, 3] + step[i] * (max_translation / distance)
    if angle > max_rotation:
        rotvec = np.empty(3)
        matrix_to_rotvec(R_rel, rotvec)
        R = np.empty((3, 3))
        _rotvec_to_matrix(rotvec * (max_rotation / angle), R)
        _rot_mul(R, T_from, T)


@njit(cache=True)
def _clip_to_workspace(T, box_min, box_max):
    """`targets.clip_to_workspace` in place on T; True when the position moved."""
    clipped = False
    for i in range(3):
        p = min(max(T[i, 3], box_min[i]), box_max[i])
        if p != T[i, 3]:
            T[i, 3], clipped = p, True
    return clipped


@njit(cache=True)
def _singularity_scale(condition, decelerate, halt):
    """`singularity.singularity_scale` for a motion approaching the singularity (thresholds checked by the caller)."""
    if np.isnan(condition) or condition >= halt:
        return 0.0
    if condition <= decelerate:
        return 1.0
    return (halt - condition) / (halt - decelerate)


@njit(cache=True)
def plan_ee_steps(
    origins,
    axes,
    tcp,
    lower,
    upper,
    home,
    q0,
    xyz,
    rpy,
    absolute,
    ee_frame,
    max_translation,
    max_rotation,
    box_min,
    box_max,
    damping,
    max_iterations,
    position_tolerance,
    rotation_tolerance,
    nullspace_gain,
    max_step,
    decelerate,
    halt,
    qs,
    targets,
    position_errors,
    rotation_errors,
    conditions,
    scales,
    clipped,
):
    """Plan steps 0..H-1 from q0 [rad] (n,); xyz [m] and rpy [rad] (H, 3) are the decoded actions.

    Fills, per step k: qs (H, n), targets (H, 4, 4) (after the bounds), the IK residuals and condition
    number, the singularity scale and whether the workspace box moved the target. Returns (K, how):
    K steps are usable; how is RAN_THROUGH, or IK_FAILED / HALTED at step K (its residuals are filled).
    """
    n = q0.shape[0]
    T_prev = np.empty((4, 4))
    J = np.empty((6, n))
    fk_jacobian(origins, axes, tcp, q0, T_prev, J)
    q = q0.copy()
    q_new = np.empty(n)
    for k in range(xyz.shape[0]):
        T = targets[k]
        _target(T_prev, xyz[k], rpy[k], absolute, ee_frame, T)
        _clamp_step(T_prev, T, max_translation, max_rotation)
        clipped[k] = _clip_to_workspace(T, box_min, box_max)
        pos_err, rot_err, _, condition, converged = solve_ik(
            origins,
            axes,
            tcp,
            lower,
            upper,
            home,
            T,
            q,
            damping,
            max_iterations,
            position_tolerance,
            rotation_tolerance,
            nullspace_gain,
            max_step,
            q_new,
        )
        position_errors[k], rotation_errors[k], conditions[k] = pos_err, rot_err, condition
        if not converged:
            return k, IK_FAILED
        scales[k] = _singularity_scale(condition, decelerate, halt)
        if scales[k] <= 0.0:
            return k, HALTED
        q[:] = q_new
        qs[k] = q
        T_prev[:, :] = T
    return xyz.shape[0], RAN_THROUGH
