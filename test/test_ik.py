"""Damped-least-squares IK, its terms, and the singularity speed scale."""

from __future__ import annotations

import numpy as np
import pytest

from ros2_vla.actions.rotations import rotvec_to_matrix
from ros2_vla.actions.targets import make_transform, pose_error
from ros2_vla.config import load_robot_config
from ros2_vla.errors import ConfigError, KinematicsError
from ros2_vla.ik.limits import limit_step
from ros2_vla.ik.params import IkParams
from ros2_vla.ik.singularity import condition_number, singularity_scale
from ros2_vla.ik.solve import solve_chunk, solve_ik
from ros2_vla.ik.tasks import nullspace_step, pose_residual
from ros2_vla.kinematics.model import ArmModel


@pytest.fixture(scope="module")
def franka() -> ArmModel:
    return ArmModel.from_arm(load_robot_config("franka").arms[0])


@pytest.fixture(scope="module")
def widowx() -> ArmModel:
    return ArmModel.from_arm(load_robot_config("widowx").arms[0])


def _random_near_home(model: ArmModel, rng: np.random.Generator, spread: float = 0.4) -> np.ndarray:
    return np.clip(model.home + rng.uniform(-spread, spread, model.nq), model.lower, model.upper)


@pytest.mark.parametrize("arm", ["franka", "widowx"])
def test_reaches_reachable_targets_within_tolerance(arm, request):
    model = request.getfixturevalue(arm)
    rng = np.random.default_rng(3)
    params = IkParams()
    for _ in range(10):
        q_true = _random_near_home(model, rng)
        seed = np.clip(q_true + rng.normal(0.0, 0.1, model.nq), model.lower, model.upper)
        result = solve_ik(model, model.fk(q_true), seed, params)
        assert result.converged
        err = pose_error(model.fk(result.q), model.fk(q_true))
        assert err.position <= params.position_tolerance and err.rotation <= params.rotation_tolerance
        assert result.position_error == pytest.approx(err.position, abs=1e-12)


def test_unreachable_target_returns_best_effort_not_converged(widowx):
    T_far = widowx.fk(widowx.home)
    T_far[:3, 3] += np.array([1.5, 0.0, 0.0])  # the wx250s reaches about 0.65 m
    start_error = pose_error(widowx.fk(widowx.home), T_far).position
    result = solve_ik(widowx, T_far, widowx.home, IkParams(max_iterations=50))
    assert not result.converged
    assert result.position_error < start_error
    assert widowx.within_limits(result.q)


def test_solution_stays_within_joint_limits(franka):
    rng = np.random.default_rng(5)
    for _ in range(10):
        target = franka.fk(rng.uniform(franka.lower, franka.upper))
        result = solve_ik(franka, target, franka.home, IkParams(max_iterations=30))
        assert franka.within_limits(result.q)


def test_seed_outside_limits_is_clipped_first(widowx):
    seed = widowx.upper + 0.5
    result = solve_ik(widowx, widowx.fk(widowx.home), seed, IkParams(max_iterations=1))
    assert widowx.within_limits(result.q)


def test_one_iteration_moves_no_joint_more_than_max_step(franka):
    target = franka.fk(franka.home)
    target[:3, 3] += np.array([0.3, 0.2, -0.2])
    params = IkParams(max_iterations=1, max_step=0.05, nullspace_gain=0.0)
    seed = franka.home
    # best-of keeps the seed if the first step made things worse, so read the step itself
    result = solve_ik(franka, target, seed, params)
    assert np.max(np.abs(result.q - seed)) <= 0.05 + 1e-12
    assert result.iterations <= 1


def test_nullspace_pull_has_no_effect_on_a_6dof_arm(widowx):
    rng = np.random.default_rng(11)
    q_true = _random_near_home(widowx, rng)
    target = widowx.fk(q_true)
    seed = np.clip(q_true + 0.15, widowx.lower, widowx.upper)
    without = solve_ik(widowx, target, seed, IkParams(nullspace_gain=0.0))
    with_pull = solve_ik(widowx, target, seed, IkParams(nullspace_gain=0.5))
    np.testing.assert_allclose(with_pull.q, without.q, atol=1e-8)


def test_nullspace_pull_brings_a_redundant_arm_nearer_home(franka):
    # Start from a posture that reaches the target with the elbow swung away from home.
    q_start = franka.home + np.array([0.5, 0.0, -0.6, 0.0, 0.4, 0.0, 0.0])
    target = franka.fk(q_start)
    target[:3, 3] += np.array([0.03, -0.02, 0.02])
    without = solve_ik(franka, target, q_start, IkParams(nullspace_gain=0.0))
    with_pull = solve_ik(franka, target, q_start, IkParams(nullspace_gain=0.2))
    assert without.converged and with_pull.converged
    assert np.linalg.norm(with_pull.q - franka.home) < np.linalg.norm(without.q - franka.home) - 1e-3


def test_nullspace_step_leaves_the_tcp_still_to_first_order(franka):
    J = franka.jacobian(franka.home)
    dq = nullspace_step(J, franka.home + 0.3, franka.home, 0.5)
    assert np.linalg.norm(dq) > 1e-3
    np.testing.assert_allclose(J @ dq, np.zeros(6), atol=1e-9)


def test_pose_residual_is_the_base_aligned_log_map():
    R = rotvec_to_matrix(np.array([0.0, 0.0, 0.3]))
    T_ee = make_transform(np.eye(3), np.array([0.1, 0.2, 0.3]))
    T_target = make_transform(R, np.array([0.1, 0.25, 0.3]))
    np.testing.assert_allclose(pose_residual(T_ee, T_target), [0.0, 0.05, 0.0, 0.0, 0.0, 0.3], atol=1e-12)


def test_chunk_is_seeded_step_by_step_and_stays_continuous(franka):
    T0 = franka.fk(franka.home)
    targets = []
    for k in range(1, 11):  # 1 cm steps with a slow turn about z: a typical delta chunk
        T = T0.copy()
        T[:3, 3] += np.array([0.01 * k, 0.005 * k, -0.004 * k])
        T[:3, :3] = rotvec_to_matrix(np.array([0.0, 0.0, 0.02 * k])) @ T0[:3, :3]
        targets.append(T)
    chunk = solve_chunk(franka, np.array(targets), franka.home)
    assert chunk.positions.shape == (10, 7)
    assert np.all(chunk.converged)
    steps = np.diff(np.vstack([franka.home, chunk.positions]), axis=0)
    assert np.max(np.abs(steps)) < 0.1  # no branch flip between neighbouring steps
    assert np.all(chunk.iterations <= 10)


def test_condition_number_of_known_matrices():
    assert condition_number(np.diag([1.0, 2.0, 4.0, 1.0, 1.0, 1.0])) == pytest.approx(4.0)
    J = np.eye(6, 7)
    J[5] = 0.0
    assert condition_number(J) == np.inf


def test_outstretched_arm_is_worse_conditioned_than_home(widowx):
    q_straight = np.zeros(widowx.nq)  # shoulder and elbow at zero: the wrist sits on the arm's line
    assert condition_number(widowx.jacobian(q_straight)) > 3.0 * condition_number(widowx.jacobian(widowx.home))


@pytest.mark.parametrize(
    ("condition", "expected"),
    [(10.0, 1.0), (60.0, 1.0), (155.0, 0.5), (250.0, 0.0), (1e6, 0.0), (np.inf, 0.0), (np.nan, 0.0)],
)
def test_singularity_scale_ramps_linearly_between_thresholds(condition, expected):
    assert singularity_scale(condition, 60.0, 250.0) == pytest.approx(expected)


def test_singularity_scale_lets_the_arm_back_out():
    assert singularity_scale(300.0, 60.0, 250.0) == 0.0
    assert singularity_scale(300.0, 60.0, 250.0, approaching=False, leaving_multiplier=2.0) > 0.0


@pytest.mark.parametrize(("decelerate", "halt"), [(0.0, 10.0), (50.0, 50.0), (80.0, 60.0)])
def test_singularity_scale_rejects_bad_thresholds(decelerate, halt):
    with pytest.raises(ConfigError):
        singularity_scale(10.0, decelerate, halt)


def test_limit_step_keeps_direction():
    dq = limit_step(np.array([0.4, -0.2, 0.1]), 0.1)
    np.testing.assert_allclose(dq, [0.1, -0.05, 0.025])


@pytest.mark.parametrize(
    "kwargs", [dict(damping=0.0), dict(max_iterations=0), dict(position_tolerance=-1.0), dict(nullspace_gain=2.0)]
)
def test_bad_params_raise(kwargs):
    with pytest.raises(ConfigError):
        IkParams(**kwargs)


def test_bad_seed_or_target_raises(franka):
    with pytest.raises(KinematicsError):
        solve_ik(franka, franka.fk(franka.home), np.zeros(6))
    with pytest.raises(KinematicsError):
        solve_ik(franka, np.eye(3), franka.home)
