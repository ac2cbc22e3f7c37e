"""An external IK backend's answer (MoveIt) is judged on the package's own model, like solve_ik's."""

from __future__ import annotations

import numpy as np
import pytest
from bridge_checks import rot_axis

from ros2_vla.config import load_robot_config
from ros2_vla.errors import KinematicsError
from ros2_vla.ik.external import external_ik_result, matrix_to_quaternion
from ros2_vla.ik.params import IkParams
from ros2_vla.ik.solve import solve_ik
from ros2_vla.kinematics.model import ArmModel

PARAMS = IkParams()


@pytest.fixture(scope="module")
def franka() -> ArmModel:
    return ArmModel.from_arm(load_robot_config("franka").arms[0])


def _quaternion_matrix(q: np.ndarray) -> np.ndarray:
    x, y, z, w = q
    return np.array(
        [
            [1 - 2 * (y * y + z * z), 2 * (x * y - z * w), 2 * (x * z + y * w)],
            [2 * (x * y + z * w), 1 - 2 * (x * x + z * z), 2 * (y * z - x * w)],
            [2 * (x * z - y * w), 2 * (y * z + x * w), 1 - 2 * (x * x + y * y)],
        ]
    )


@pytest.mark.parametrize(
    "axis, angle",
    [
        ([0, 0, 1], 0.0),
        ([1, 0, 0], 0.3),
        ([0, 1, 0], -2.0),
        ([1, 1, 0], np.pi),
        ([0, 0, 1], np.pi - 1e-9),
        ([1, -2, 0.5], 3.0),
        ([0.2, 0.1, -1], -1.1),
    ],
)
def test_quaternion_is_unit_with_nonnegative_w_and_gives_the_matrix_back(axis, angle):
    R = rot_axis(axis, angle)
    q = matrix_to_quaternion(R)
    assert np.linalg.norm(q) == pytest.approx(1.0) and q[3] >= 0.0
    np.testing.assert_allclose(_quaternion_matrix(q), R, atol=1e-9)


def test_quaternion_of_a_known_rotation():
    np.testing.assert_allclose(
        matrix_to_quaternion(rot_axis([0, 0, 1], np.pi / 2)), [0, 0, np.sqrt(0.5), np.sqrt(0.5)], atol=1e-12
    )


def test_a_correct_answer_converges_like_solve_ik(franka):
    T = franka.fk(franka.home)
    T[:3, 3] += [0.03, -0.02, 0.01]
    own = solve_ik(franka, T, franka.home, PARAMS)
    res = external_ik_result(franka, T, own.q, True, PARAMS)
    assert res.converged
    assert res.position_error == pytest.approx(own.position_error, abs=1e-12)
    assert res.condition_number == pytest.approx(own.condition_number)


def test_solver_failure_is_not_converged_even_at_the_target(franka):
    T = franka.fk(franka.home)
    res = external_ik_result(franka, T, franka.home, False, PARAMS)
    assert not res.converged and res.position_error < 1e-12


def test_a_wrong_answer_is_measured_not_trusted(franka):
    T = franka.fk(franka.home)
    q = np.array(franka.home) + 0.05
    res = external_ik_result(franka, T, q, True, PARAMS)
    assert not res.converged and res.position_error > 0.01


def test_answer_outside_the_configured_limits_is_clipped(franka):
    q = np.array(franka.home)
    q[3] = 0.5  # joint 4 upper limit is -0.1518
    res = external_ik_result(franka, franka.fk(franka.home), q, True, PARAMS)
    assert franka.within_limits(res.q) and res.q[3] == franka.upper[3]


@pytest.mark.parametrize("q", [np.zeros(6), np.full(7, np.nan)])
def test_malformed_answer_raises(franka, q):
    with pytest.raises(KinematicsError, match="7 finite joint positions"):
        external_ik_result(franka, franka.fk(franka.home), q, True, PARAMS)
