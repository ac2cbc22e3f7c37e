"""Independent expectations for bridge tests: forward kinematics, delta integration with the safety
bounds, and limit checks on a sent joint trajectory. Plain numpy from the robot config only, so a bug
in the package's kinematics or target code cannot hide itself in its own test."""

from __future__ import annotations

import numpy as np

from ros2_vla.config import ArmSpec, ChainSpec, SafetySpec

LIMIT_SLACK = 1e-6  # relative: timing keeps limits to floating-point roots (timing._REL_TOL and a little)


def rot_axis(axis, angle: float) -> np.ndarray:
    """Rodrigues: rotation by `angle` [rad] about unit `axis` (3,)."""
    a = np.asarray(axis, dtype=float)
    a = a / np.linalg.norm(a)
    K = np.array([[0.0, -a[2], a[1]], [a[2], 0.0, -a[0]], [-a[1], a[0], 0.0]])
    return np.eye(3) + np.sin(angle) * K + (1.0 - np.cos(angle)) * K @ K


def rpy_matrix(rpy) -> np.ndarray:
    """URDF / BridgeData fixed-axis roll, pitch, yaw: Rz(yaw) Ry(pitch) Rx(roll)."""
    r, p, y = (float(v) for v in rpy)
    return rot_axis([0, 0, 1], y) @ rot_axis([0, 1, 0], p) @ rot_axis([1, 0, 0], r)


def transform(R: np.ndarray, p) -> np.ndarray:
    T = np.eye(4)
    T[:3, :3], T[:3, 3] = R, p
    return T


def fk(chain: ChainSpec, q) -> np.ndarray:
    """T_base_tcp (4, 4) by multiplying the config's joint origins and axis rotations."""
    T = np.eye(4)
    for joint, angle in zip(chain.joints, q):
        T = T @ transform(rpy_matrix(joint.rpy), joint.xyz) @ transform(rot_axis(joint.axis, angle), np.zeros(3))
    return T @ transform(rpy_matrix(chain.ee_rpy), chain.ee_xyz)


def rotation_angle(R: np.ndarray) -> float:
    return float(np.arccos(np.clip((np.trace(R) - 1.0) / 2.0, -1.0, 1.0)))


def _log(R: np.ndarray) -> np.ndarray:
    """Rotation vector of R for angles well below pi (the per-step rotations used in tests)."""
    angle = rotation_angle(R)
    if angle < 1e-12:
        return np.zeros(3)
    w = np.array([R[2, 1] - R[1, 2], R[0, 2] - R[2, 0], R[1, 0] - R[0, 1]])
    return w * angle / (2.0 * np.sin(angle))


def expected_targets(T_start: np.ndarray, deltas: np.ndarray, safety: SafetySpec | None = None) -> np.ndarray:
    """BridgeData ee_delta targets (H, 4, 4): translation added in base axes, R_new = R_delta @ R_cur.
    deltas (H, >= 6) [m, rad]. With `safety`: each step cut to the per-step limits (translation and
    rotation each along its own direction), then its position clipped into the workspace box."""
    T = np.array(T_start, dtype=float)
    out = []
    for d in np.asarray(deltas, dtype=float):
        step, R_delta = d[:3].copy(), rpy_matrix(d[3:6])
        if safety is not None:
            dist = np.linalg.norm(step)
            if dist > safety.max_translation_per_step:
                step *= safety.max_translation_per_step / dist
            angle = rotation_angle(R_delta)
            if angle > safety.max_rotation_per_step:
                w = _log(R_delta)
                R_delta = rot_axis(w, safety.max_rotation_per_step)
        p = T[:3, 3] + step
        if safety is not None:
            p = np.clip(p, safety.workspace_min, safety.workspace_max)
        T = transform(R_delta @ T[:3, :3], p)
        out.append(T)
    return np.array(out)


def pose_errors(T_a: np.ndarray, T_b: np.ndarray) -> tuple[float, float]:
    """Position [m] and rotation [rad] distance between two poses."""
    return float(np.linalg.norm(T_a[:3, 3] - T_b[:3, 3])), rotation_angle(T_a[:3, :3].T @ T_b[:3, :3])


def hermite_end_accelerations(p0, v0, p1, v1, h: float) -> tuple[np.ndarray, np.ndarray]:
    """Acceleration at both ends of the cubic from (p0, v0) to (p1, v1) over h [s]; it is linear in
    between, so these bound it on the whole segment."""
    s = (np.asarray(p1) - np.asarray(p0)) / h
    return (6 * s - 4 * np.asarray(v0) - 2 * np.asarray(v1)) / h, (-6 * s + 2 * np.asarray(v0) + 4 * np.asarray(v1)) / h


def check_arm_points(arm: ArmSpec, t, q, qd, q_now=None, qd_now=None) -> None:
    """Assert a trajectory of the arm's joints keeps every limit of the config.

    t [s] (N,) time from the command, q (N, n), qd (N, n); q_now/qd_now: the commanded state when it was
    sent (default: none known), checked as the segment into the first point."""
    lower = np.array([j.lower for j in arm.chain.joints])
    upper = np.array([j.upper for j in arm.chain.joints])
    vmax = np.array([j.velocity for j in arm.chain.joints])
    amax = np.array([j.acceleration for j in arm.chain.joints])
    t, q, qd = np.asarray(t, float), np.asarray(q, float), np.asarray(qd, float)
    assert t.size >= 1 and t[0] > 0.0 and np.all(np.diff(t) > 0.0), f"times not strictly increasing from > 0: {t}"
    assert np.all(q >= lower) and np.all(q <= upper), f"a point leaves the joint limits: {q}"
    assert np.all(np.abs(qd) <= vmax * (1 + LIMIT_SLACK)), f"a point velocity exceeds the limit: {qd}"
    if q_now is not None:
        t = np.concatenate([[0.0], t])
        q, qd = np.vstack([q_now, q]), np.vstack([qd_now, qd])
    if t.size < 2:
        return
    h = np.diff(t)[:, None]
    speed = np.abs(np.diff(q, axis=0)) / h
    assert np.all(speed <= vmax * (1 + LIMIT_SLACK)), f"mean velocity between points {speed.max(axis=0)} > {vmax}"
    a0, a1 = hermite_end_accelerations(q[:-1], qd[:-1], q[1:], qd[1:], h)
    worst = np.maximum(np.abs(a0), np.abs(a1)).max(axis=0)
    assert np.all(worst <= amax * (1 + LIMIT_SLACK)), f"acceleration {worst} > {amax}"


def check_gripper_points(arm: ArmSpec, t, g, g_now=None) -> None:
    """Gripper positions (N,) stay in [closed, open] and move no faster than the gripper's velocity."""
    spec = arm.gripper
    lo, hi = sorted((spec.closed_position, spec.open_position))
    t, g = np.asarray(t, float), np.asarray(g, float)
    assert np.all(g >= lo) and np.all(g <= hi), f"gripper leaves [{lo}, {hi}]: {g}"
    if g_now is not None:
        t, g = np.concatenate([[0.0], t]), np.concatenate([[g_now], g])
    assert np.all(np.abs(np.diff(g)) <= spec.velocity * np.diff(t) * (1 + LIMIT_SLACK) + 1e-12)
