"""End-effector targets from one action step, and the per-step safety bounds."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ros2_vla.actions.rotations import matrix_to_rotvec, rotation_angle, rotvec_to_matrix
from ros2_vla.actions.targets import (
    apply_ee_delta,
    clamp_step,
    clip_to_workspace,
    ee_absolute_target,
    integrate_ee_deltas,
    make_transform,
    matrix_to_rpy,
    pose_error,
    rpy_to_matrix,
)
from ros2_vla.errors import ChunkError, ConfigError


def rx(a):
    c, s = math.cos(a), math.sin(a)
    return np.array([[1, 0, 0], [0, c, -s], [0, s, c]])


def ry(a):
    c, s = math.cos(a), math.sin(a)
    return np.array([[c, 0, s], [0, 1, 0], [-s, 0, c]])


def rz(a):
    c, s = math.cos(a), math.sin(a)
    return np.array([[c, -s, 0], [s, c, 0], [0, 0, 1]])


# --- hand-computed -------------------------------------------------------------------------------------------


def test_rpy_is_extrinsic_xyz():
    r, p, y = 0.3, -0.5, 1.2
    assert np.allclose(rpy_to_matrix([r, p, y]), rz(y) @ ry(p) @ rx(r))


def test_roll_quarter_turn():
    # Rx(90 deg) sends y to z and z to -y
    assert np.allclose(rpy_to_matrix([math.pi / 2, 0, 0]), [[1, 0, 0], [0, 0, -1], [0, 1, 0]])


def test_rpy_batched_shape():
    rpy = np.zeros((5, 2, 3))
    assert rpy_to_matrix(rpy).shape == (5, 2, 3, 3)
    assert matrix_to_rpy(rpy_to_matrix(rpy)).shape == (5, 2, 3)


def test_matrix_to_rpy_gimbal_lock():
    # pitch +90 deg: only roll - yaw is defined; yaw is set to 0 and the matrix must be reproduced
    R = rpy_to_matrix([0.4, math.pi / 2, 0.1])
    rpy = matrix_to_rpy(R)
    assert rpy[2] == 0.0
    assert np.allclose(rpy_to_matrix(rpy), R, atol=1e-9)
    R = rpy_to_matrix([0.4, -math.pi / 2, 0.1])
    assert np.allclose(rpy_to_matrix(matrix_to_rpy(R)), R, atol=1e-9)


def test_matrix_to_rpy_accepts_transform():
    T = make_transform(rpy_to_matrix([0.1, 0.2, 0.3]), [1, 2, 3])
    assert matrix_to_rpy(T) == pytest.approx([0.1, 0.2, 0.3])


def test_base_vs_ee_frame_with_rotated_tcp():
    # TCP yawed 90 deg: +x in the TCP frame is +y in the base frame
    T = make_transform(rz(math.pi / 2), [0.5, 0.0, 0.3])
    base = apply_ee_delta(T, [0.1, 0, 0], [0, 0, 0], "base")
    ee = apply_ee_delta(T, [0.1, 0, 0], [0, 0, 0], "ee")
    assert base[:3, 3] == pytest.approx([0.6, 0.0, 0.3])
    assert ee[:3, 3] == pytest.approx([0.5, 0.1, 0.3])


def test_base_frame_rotation_premultiplies():
    # TCP rolled 90 deg, then a base-frame yaw of 90 deg: R_new = Rz(90) @ Rx(90), not Rx(90) @ Rz(90)
    T = make_transform(rx(math.pi / 2), [0.4, 0.1, 0.2])
    out = apply_ee_delta(T, [0, 0, 0], [0, 0, math.pi / 2], "base")
    assert np.allclose(out[:3, :3], rz(math.pi / 2) @ rx(math.pi / 2))
    out_ee = apply_ee_delta(T, [0, 0, 0], [0, 0, math.pi / 2], "ee")
    assert np.allclose(out_ee[:3, :3], rx(math.pi / 2) @ rz(math.pi / 2))


def test_ee_absolute_target():
    T = ee_absolute_target([0.5, -0.1, 0.3], [math.pi, 0, 0])
    assert T[:3, 3] == pytest.approx([0.5, -0.1, 0.3])
    assert np.allclose(T[:3, :3], np.diag([1, -1, -1]))
    assert T[3].tolist() == [0, 0, 0, 1]


def test_clamp_translation_hand():
    # a 0.5 m step along (3, 4, 0)/5 cut to 0.05 m -> (0.03, 0.04, 0)
    out, clamped = clamp_step(np.eye(4), make_transform(np.eye(3), [0.3, 0.4, 0.0]), 0.05, 0.3)
    assert clamped
    assert out[:3, 3] == pytest.approx([0.03, 0.04, 0.0])


def test_clamp_rotation_hand():
    # yaw 1.0 rad cut to 0.3 rad about the same axis; position untouched
    T_to = make_transform(rz(1.0), [0.01, 0, 0])
    out, clamped = clamp_step(np.eye(4), T_to, 0.05, 0.3)
    assert clamped
    assert np.allclose(out[:3, :3], rz(0.3))
    assert out[:3, 3] == pytest.approx([0.01, 0, 0])


def test_clamp_within_is_identity():
    T_to = make_transform(rz(0.1), [0.01, 0.02, 0])
    out, clamped = clamp_step(np.eye(4), T_to, 0.05, 0.3)
    assert not clamped
    assert np.array_equal(out, T_to)


def test_clamp_bad_limits_raise():
    with pytest.raises(ConfigError):
        clamp_step(np.eye(4), np.eye(4), -0.1, 0.3)
    with pytest.raises(ConfigError):
        clamp_step(np.eye(4), np.eye(4), 0.1, float("nan"))


def test_clamp_nan_pose_raises():
    T_to = np.eye(4)
    T_to[0, 3] = np.nan
    with pytest.raises(ChunkError):
        clamp_step(np.eye(4), T_to, 0.1, 0.3)


def test_workspace_clip_hand():
    T = make_transform(rz(0.2), [1.2, -0.1, -0.05])
    out, clipped = clip_to_workspace(T, [0.15, -0.6, 0.0], [0.85, 0.6, 0.9])
    assert clipped
    assert out[:3, 3].tolist() == [0.85, -0.1, 0.0]
    assert np.array_equal(out[:3, :3], T[:3, :3])
    assert clip_to_workspace(out, [0.15, -0.6, 0.0], [0.85, 0.6, 0.9]).clipped is False


def test_workspace_empty_box_raises():
    with pytest.raises(ConfigError, match="empty"):
        clip_to_workspace(np.eye(4), [0, 0, 1], [1, 1, 0])


def test_pose_error_hand():
    a = make_transform(np.eye(3), [0, 0, 0])
    b = make_transform(rz(0.2), [0.3, 0.4, 0])
    err = pose_error(a, b)
    assert err.position == pytest.approx(0.5)
    assert err.rotation == pytest.approx(0.2)


def test_pose_error_tiny_angle_is_accurate():
    # arccos would round 1e-8 rad to 0; atan2 keeps it
    assert pose_error(np.eye(4), make_transform(rz(1e-8), [0, 0, 0])).rotation == pytest.approx(1e-8, rel=1e-6)


def test_bad_frame_and_nan_delta_raise():
    with pytest.raises(ChunkError, match="frame"):
        apply_ee_delta(np.eye(4), [0, 0, 0], [0, 0, 0], "tool")
    with pytest.raises(ChunkError, match="delta_xyz"):
        apply_ee_delta(np.eye(4), [0, np.nan, 0], [0, 0, 0], "base")
    with pytest.raises(ChunkError, match="delta_rpy"):
        apply_ee_delta(np.eye(4), [0, 0, 0], [0, 0], "base")


def test_rotvec_near_pi():
    for angle in (math.pi, math.pi - 1e-6, math.pi - 1e-3):
        axis = np.array([1.0, 2.0, -2.0]) / 3.0
        R = rotvec_to_matrix(axis * angle)
        v = matrix_to_rotvec(R)
        assert np.allclose(rotvec_to_matrix(v), R, atol=1e-9)
        assert np.linalg.norm(v) == pytest.approx(angle, abs=1e-9)


# --- properties ----------------------------------------------------------------------------------------------

coord = st.floats(-1.0, 1.0, allow_nan=False)
angle = st.floats(-math.pi, math.pi, allow_nan=False)
vec3 = st.tuples(coord, coord, coord).map(np.array)
rpy3 = st.tuples(angle, st.floats(-1.5, 1.5), angle).map(np.array)
poses = st.tuples(vec3, rpy3).map(lambda pr: ee_absolute_target(*pr))


@given(T=poses, d=vec3)
def test_base_delta_without_rotation_is_pure_translation(T, d):
    out = apply_ee_delta(T, d, np.zeros(3), "base")
    assert np.allclose(out[:3, 3], T[:3, 3] + d)
    assert np.allclose(out[:3, :3], T[:3, :3])


@given(T=poses, r=rpy3)
def test_rotation_keeps_tcp_point(T, r):
    for frame in ("base", "ee"):
        out = apply_ee_delta(T, np.zeros(3), r, frame)
        assert np.allclose(out[:3, 3], T[:3, 3])


@given(p=vec3, d=vec3, r=rpy3)
def test_ee_equals_base_when_tcp_unrotated(p, d, r):
    T = make_transform(np.eye(3), p)
    assert np.allclose(apply_ee_delta(T, d, r, "base"), apply_ee_delta(T, d, r, "ee"))


@given(r=st.tuples(angle, st.floats(-1.55, 1.55), angle).map(np.array))
def test_rpy_round_trip_away_from_gimbal_lock(r):
    back = matrix_to_rpy(rpy_to_matrix(r))
    assert np.allclose(rpy_to_matrix(back), rpy_to_matrix(r), atol=1e-9)
    wrapped = (back - r + math.pi) % (2 * math.pi) - math.pi  # angles equal modulo 2 pi
    assert np.allclose(wrapped, 0.0, atol=1e-7)


limits = st.tuples(st.floats(0.0, 0.2), st.floats(0.0, 1.0))


@given(a=poses, b=poses, lim=limits)
def test_clamp_never_exceeds_bounds(a, b, lim):
    max_t, max_r = lim
    out, clamped = clamp_step(a, b, max_t, max_r)
    err = pose_error(a, out)
    assert err.position <= max_t + 1e-9
    assert err.rotation <= max_r + 1e-9
    assert np.allclose(out[:3, :3] @ out[:3, :3].T, np.eye(3), atol=1e-9)
    full = pose_error(a, b)
    # Beyond a limit: clamped; within both: not. Exactly at one (to 1e-12), pose_error and clamp_step
    # measure the angle in two ways that may round apart (1.9023363042466065e-107 against ...062e-107).
    excess = max(full.position - max_t, full.rotation - max_r)
    if abs(excess) > 1e-12:
        assert clamped == (excess > 0)
    if not clamped:
        assert np.array_equal(out, b)


@given(a=poses, b=poses, lim=limits)
def test_clamp_moves_along_the_way(a, b, lim):
    # what is left after a clamped step is the full step minus the limit, for each part
    max_t, max_r = lim
    full = pose_error(a, b)
    out, _ = clamp_step(a, b, max_t, max_r)
    rest = pose_error(out, b)
    assert rest.position == pytest.approx(max(full.position - max_t, 0.0), abs=1e-9)
    if full.rotation < math.pi - 1e-3:  # at pi the shorter way is not unique
        assert rest.rotation == pytest.approx(max(full.rotation - max_r, 0.0), abs=1e-7)


box = st.tuples(vec3, st.tuples(*(st.floats(0.0, 1.0),) * 3).map(np.array))


@given(T=poses, b=box)
def test_workspace_clip_lands_in_box(T, b):
    lo, width = b
    hi = lo + width
    T = T.copy()
    T[:3, 3] *= 2.0  # reach outside the box often
    out, clipped = clip_to_workspace(T, lo, hi)
    assert np.all(out[:3, 3] >= lo) and np.all(out[:3, 3] <= hi)
    inside = bool(np.all(T[:3, 3] >= lo) and np.all(T[:3, 3] <= hi))
    assert clipped == (not inside)
    assert np.array_equal(out[:3, :3], T[:3, :3])


@settings(max_examples=30)
@given(T=poses, steps=st.lists(st.tuples(vec3, rpy3), min_size=1, max_size=6), frame=st.sampled_from(["base", "ee"]))
def test_integrate_matches_repeated_apply(T, steps, frame):
    dx = np.array([s[0] for s in steps]) * 0.1
    dr = np.array([s[1] for s in steps]) * 0.1
    out = integrate_ee_deltas(T, dx, dr, frame)
    current = T
    for k in range(len(steps)):
        current = apply_ee_delta(current, dx[k], dr[k], frame)
        assert np.allclose(out[k], current, atol=1e-12)


@given(R=rpy3.map(rpy_to_matrix))
def test_rotvec_round_trip(R):
    v = matrix_to_rotvec(R)
    assert np.linalg.norm(v) == pytest.approx(rotation_angle(R), abs=1e-12)
    assert np.allclose(rotvec_to_matrix(v), R, atol=1e-9)
