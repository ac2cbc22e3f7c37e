"""The simulated JointTrajectoryController: interpolation, replacement, timing and rejection."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ros2_vla.errors import TrajectoryError
from ros2_vla.sim.controller import JointTrajectoryController, SimTrajectory, TrajectoryPoint, unreachable_start

NAMES = ("a", "b", "c")


def _ctrl(q=(0.0, 0.0, 0.0), **kw) -> JointTrajectoryController:
    return JointTrajectoryController(NAMES, q, **kw)


def _traj(names, *points, start=0.0) -> SimTrajectory:
    """points: (positions, time) or (positions, time, velocities)."""
    pts = tuple(TrajectoryPoint(tuple(p[0]), p[1], tuple(p[2]) if len(p) > 2 else ()) for p in points)
    return SimTrajectory(tuple(names), pts, start)


def test_holds_initial_positions_before_any_trajectory():
    c = _ctrl((0.1, -0.2, 0.3))
    np.testing.assert_array_equal(c.sample(5.0), [0.1, -0.2, 0.3])
    np.testing.assert_array_equal(c.velocity(5.0), [0.0, 0.0, 0.0])


def test_linear_interpolation_from_measured_state_to_the_point():
    c = _ctrl()
    c.accept(_traj(NAMES, ([1.0, 2.0, -1.0], 2.0)), now=1.0, measured=[0.2, 0.0, 0.0])
    np.testing.assert_allclose(c.sample(1.0), [0.2, 0.0, 0.0])
    np.testing.assert_allclose(c.sample(2.0), [0.6, 1.0, -0.5])
    np.testing.assert_allclose(c.velocity(2.0), [0.4, 1.0, -0.5])
    np.testing.assert_allclose(c.sample(3.0), [1.0, 2.0, -1.0])


def test_holds_the_last_point_after_the_end():
    c = _ctrl()
    c.accept(_traj(NAMES, ([1.0, 1.0, 1.0], 0.5), ([2.0, 0.0, 1.0], 1.0)), now=0.0, measured=[0, 0, 0])
    assert c.end_time() == pytest.approx(1.0)
    np.testing.assert_allclose(c.sample(10.0), [2.0, 0.0, 1.0])
    np.testing.assert_array_equal(c.velocity(10.0), [0.0, 0.0, 0.0])


def test_hermite_meets_positions_and_velocities_at_the_points():
    c = _ctrl()
    pts = (([1.0, 0.0, 0.0], 1.0, [0.5, 0.0, 0.0]), ([2.0, 1.0, 0.0], 2.0, [0.0, 0.0, 0.0]))
    c.accept(_traj(NAMES, *pts), now=0.0, measured=[0, 0, 0])
    np.testing.assert_allclose(c.sample(1.0), [1.0, 0.0, 0.0], atol=1e-12)
    np.testing.assert_allclose(c.velocity(1.0 - 1e-9), [0.5, 0.0, 0.0], atol=1e-6)
    np.testing.assert_allclose(c.velocity(1.0 + 1e-9), [0.5, 0.0, 0.0], atol=1e-6)
    np.testing.assert_allclose(c.velocity(2.0 - 1e-9), [0.0, 0.0, 0.0], atol=1e-6)
    # A cubic, not a line: halfway through the first segment it is not the linear midpoint.
    assert abs(c.sample(0.5)[0] - 0.5) > 1e-3


def test_new_trajectory_replaces_the_old_one_from_now():
    c = _ctrl()
    c.accept(_traj(NAMES, ([10.0, 10.0, 10.0], 10.0)), now=0.0, measured=[0, 0, 0])
    c.accept(_traj(NAMES, ([-1.0, -1.0, -1.0], 1.0)), now=5.0, measured=[5.0, 5.0, 5.0])
    np.testing.assert_allclose(c.sample(5.0), [5.0, 5.0, 5.0])
    np.testing.assert_allclose(c.sample(6.0), [-1.0, -1.0, -1.0])
    np.testing.assert_allclose(c.sample(100.0), [-1.0, -1.0, -1.0])


def test_open_loop_starts_from_the_reference_not_the_measurement():
    c = _ctrl(open_loop=True)
    c.accept(_traj(NAMES, ([2.0, 2.0, 2.0], 2.0)), now=0.0, measured=[0, 0, 0])
    c.accept(_traj(NAMES, ([2.0, 2.0, 2.0], 1.0)), now=1.0, measured=[0.3, 0.3, 0.3])
    np.testing.assert_allclose(c.sample(1.0), [1.0, 1.0, 1.0])


def test_joints_not_named_keep_their_reference():
    c = _ctrl((0.5, 0.5, 0.5))
    c.accept(_traj(("c", "a"), ([3.0, 1.0], 1.0)), now=0.0, measured=[0.4, 0.4, 0.4])
    np.testing.assert_allclose(c.sample(1.0), [1.0, 0.5, 3.0])
    np.testing.assert_allclose(c.sample(0.5), [0.7, 0.5, 1.7])


def test_first_point_at_time_zero_is_a_step():
    c = _ctrl()
    c.accept(_traj(NAMES, ([1.0, 2.0, 3.0], 0.0)), now=2.0, measured=[0, 0, 0])
    np.testing.assert_allclose(c.sample(2.0), [1.0, 2.0, 3.0])


def test_a_future_start_time_moves_from_the_state_at_receipt_to_the_first_point_at_its_time():
    # JTC's Trajectory::sample interpolates from the state before the trajectory (at receipt) to the first
    # point at stamp + time_from_start: it does not hold still until the stamp.
    c = _ctrl()
    c.accept(_traj(NAMES, ([1.0, 1.0, 1.0], 1.0), start=3.0), now=1.0, measured=[0.2, 0.2, 0.2])
    np.testing.assert_allclose(c.sample(2.5), [0.6, 0.6, 0.6])
    np.testing.assert_allclose(c.sample(4.0), [1.0, 1.0, 1.0])


def test_points_before_now_are_dropped():
    c = _ctrl()
    c.accept(_traj(NAMES, ([9.0, 9.0, 9.0], 1.0), ([2.0, 2.0, 2.0], 4.0), start=1.0), now=3.0, measured=[0, 0, 0])
    np.testing.assert_allclose(c.sample(4.0), [1.0, 1.0, 1.0])  # halfway from the state to the live point
    np.testing.assert_allclose(c.sample(5.0), [2.0, 2.0, 2.0])


def test_trajectory_entirely_in_the_past_is_rejected():
    c = _ctrl()
    with pytest.raises(TrajectoryError, match="before now"):
        c.accept(_traj(NAMES, ([1.0, 1.0, 1.0], 1.0), start=1.0), now=5.0, measured=[0, 0, 0])


def test_empty_trajectory_is_refused_and_the_running_one_goes_on():
    # ros2_controllers' JTC (humble to rolling) refuses it ("Empty trajectory received."); ROS 1's stopped.
    c = _ctrl()
    c.accept(_traj(NAMES, ([5.0, 5.0, 5.0], 5.0)), now=0.0, measured=[0, 0, 0])
    with pytest.raises(TrajectoryError, match="no points"):
        c.accept(_traj(("a", "b")), now=1.0, measured=[0.9, 0.8, 0.7])
    np.testing.assert_allclose(c.sample(5.0), [5.0, 5.0, 5.0])


@pytest.mark.parametrize(
    ("traj", "reason"),
    [
        (_traj(("a", "x"), ([1.0, 1.0], 1.0)), "unknown joints"),
        (
            _traj(
                (),
            ),
            "unknown joints",
        ),
        (_traj(("a", "a"), ([1.0, 1.0], 1.0)), "twice"),
        (_traj(NAMES, ([1.0, math.nan, 1.0], 1.0)), "NaN"),
        (_traj(NAMES, ([1.0, math.inf, 1.0], 1.0)), "NaN or infinite"),
        (_traj(NAMES, ([1.0, 1.0, 1.0], math.nan)), "NaN"),
        (_traj(NAMES, ([1.0, 1.0, 1.0], 1.0, [0.0, math.inf, 0.0])), "infinite"),
        (_traj(NAMES, ([1.0, 1.0], 1.0)), "2 positions for 3 joints"),
        (_traj(NAMES, ([1.0, 1.0, 1.0], 1.0, [0.0, 0.0])), "velocities"),
        (_traj(NAMES, ([1.0, 1.0, 1.0], 1.0, [0, 0, 0]), ([1.0, 1.0, 1.0], 2.0)), "velocities"),
        (_traj(NAMES, ([1.0, 1.0, 1.0], 1.0), ([2.0, 2.0, 2.0], 1.0)), "time_from_start"),
        (_traj(NAMES, ([1.0, 1.0, 1.0], 2.0), ([2.0, 2.0, 2.0], 1.0)), "time_from_start"),
        (_traj(NAMES, ([1.0, 1.0, 1.0], -0.1)), "time_from_start"),
        (_traj(NAMES, ([1.0, 1.0, 1.0], 1.0), start=-1.0), "start time"),
    ],
)
def test_bad_trajectories_are_rejected_and_the_old_one_keeps_running(traj, reason):
    c = _ctrl()
    c.accept(_traj(NAMES, ([2.0, 2.0, 2.0], 2.0)), now=0.0, measured=[0, 0, 0])
    before = [c.sample(t) for t in (0.5, 1.0, 3.0)]
    with pytest.raises(TrajectoryError, match=reason):
        c.accept(traj, now=0.5, measured=[0.1, 0.1, 0.1])
    for t, b in zip((0.5, 1.0, 3.0), before):
        np.testing.assert_array_equal(c.sample(t), b)


def test_bad_measured_state_is_rejected():
    with pytest.raises(TrajectoryError, match="measured"):
        _ctrl().accept(_traj(NAMES, ([1.0, 1.0, 1.0], 1.0)), now=0.0, measured=[0.0, math.nan, 0.0])


def test_controller_needs_distinct_joints():
    with pytest.raises(TrajectoryError):
        JointTrajectoryController(("a", "a"), (0.0, 0.0))


@settings(max_examples=50, deadline=None)
@given(
    st.lists(st.floats(-3.0, 3.0), min_size=2, max_size=6),
    st.lists(st.floats(0.01, 1.0), min_size=6, max_size=6),
    st.floats(0.0, 1.0),
)
def test_linear_reference_stays_between_its_neighbouring_points(values, gaps, frac):
    c = JointTrajectoryController(("j",), (0.0,))
    times = np.cumsum(gaps[: len(values)])
    points = tuple(TrajectoryPoint((v,), float(t)) for v, t in zip(values, times))
    c.accept(SimTrajectory(("j",), points), now=0.0, measured=[0.0])
    knots_t = np.concatenate([[0.0], times])
    knots_v = np.concatenate([[0.0], values])
    i = int(frac * (len(values) - 1e-9))
    t = knots_t[i] + frac * (knots_t[i + 1] - knots_t[i])
    lo, hi = sorted((knots_v[i], knots_v[i + 1]))
    assert lo - 1e-9 <= c.sample(float(t))[0] <= hi + 1e-9


def test_a_first_point_farther_than_the_velocity_limit_allows_is_unreachable():
    limits, at_zero = {"a": 2.0, "b": 2.0}, {"a": 0.0, "b": 0.0}

    def first(q_a: float, t: float, start: float = 0.0) -> SimTrajectory:
        return SimTrajectory(("a", "b"), (TrajectoryPoint((q_a, 0.0), t), TrajectoryPoint((q_a, 0.0), t + 1.0)), start)

    assert "a" in unreachable_start(first(0.6, 0.1), 5.0, at_zero, limits, 0.3)  # 6 rad/s
    assert "a" in unreachable_start(first(-0.6, 0.1), 5.0, at_zero, limits, 0.3)
    assert unreachable_start(first(0.6, 0.5), 5.0, at_zero, limits, 0.3) == ""  # 1.2 rad/s
    assert unreachable_start(first(0.6, 0.1, start=5.4), 5.0, at_zero, limits, 0.3) == ""  # a later stamp: 0.5 s
    assert unreachable_start(first(0.25, 0.0), 5.0, at_zero, limits, 0.3) == ""  # a tracking lag: JTC's step
    assert unreachable_start(first(0.6, 0.1), 5.0, at_zero, {"b": 2.0}, 0.3) == ""  # no limit for a (a gripper)
    assert unreachable_start(SimTrajectory(("a",), ()), 5.0, at_zero, limits, 0.3) == ""  # accept refuses it
