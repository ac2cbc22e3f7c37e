"""Timing of joint waypoints: limits hold, time only stretches, positions never move."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from ros2_vla.errors import TrajectoryError
from ros2_vla.trajectory.plan import Plan
from ros2_vla.trajectory.timing import HERMITE_ACCELERATION_FACTOR, segment_accelerations, time_waypoints

TOL = 1e-7  # relative slack for floating point


@st.composite
def paths(draw):
    n = draw(st.integers(1, 7))
    horizon = draw(st.integers(1, 25))
    scale = draw(st.floats(1e-4, 1.0))
    steps = draw(arrays(np.float64, (horizon, n), elements=st.floats(-1.0, 1.0))) * scale
    q0 = draw(arrays(np.float64, (n,), elements=st.floats(-3.0, 3.0)))
    waypoints = np.vstack([q0, q0 + np.cumsum(steps, axis=0)])
    vmax = draw(arrays(np.float64, (n,), elements=st.floats(0.1, 5.0)))
    amax = draw(arrays(np.float64, (n,), elements=st.floats(0.2, 30.0)))
    v0 = draw(arrays(np.float64, (n,), elements=st.floats(-1.0, 1.0))) * vmax
    dt = draw(st.floats(0.002, 0.5))
    return waypoints, dt, vmax, amax, v0


def _durations(times: np.ndarray) -> np.ndarray:
    return np.diff(np.concatenate([[0.0], times]))


@settings(max_examples=150, deadline=None)
@given(paths(), st.booleans())
def test_velocity_limit_never_exceeded(path, stop):
    q, dt, vmax, amax, v0 = path
    timing = time_waypoints(q, dt, vmax, amax, v0, stop_at_end=stop)
    speed = np.abs(np.diff(q, axis=0)) / _durations(timing.times)[:, None]
    assert np.all(speed <= vmax * (1 + TOL))


@settings(max_examples=150, deadline=None)
@given(paths(), st.booleans())
def test_acceleration_limit_never_exceeded_from_v0(path, stop):
    q, dt, vmax, amax, v0 = path
    timing = time_waypoints(q, dt, vmax, amax, v0, stop_at_end=stop)
    acc = segment_accelerations(q, timing.times, v0, stop_at_end=stop)
    assert np.all(np.abs(acc) <= amax * (1 + TOL))


@settings(max_examples=150, deadline=None)
@given(paths())
def test_times_increase_and_durations_at_least_nominal(path):
    q, dt, vmax, amax, v0 = path
    timing = time_waypoints(q, dt, vmax, amax, v0)
    assert timing.times.shape == (q.shape[0] - 1,)
    assert np.all(_durations(timing.times) >= dt * (1 - 1e-12))
    assert np.all(np.diff(timing.times) > 0.0)


@settings(max_examples=60, deadline=None)
@given(paths())
@example((np.array([[0.0], [1.0]]), 0.5, np.array([1.0]), np.array([1.0]), np.array([1.0])))  # once 6e-5 over
def test_played_spline_keeps_velocity_limit(path):
    q, dt, vmax, amax, v0 = path
    timing = time_waypoints(q, dt, vmax, amax, v0)
    plan = Plan(np.concatenate([[0.0], timing.times]), q, np.vstack([v0, timing.velocities]))
    qd = np.array([plan.sample(t)[1] for t in np.linspace(0.0, plan.end_time, 400)])
    assert np.all(np.abs(qd) <= np.maximum(vmax, np.abs(v0)) * (1 + 1e-6))


def test_slow_path_keeps_nominal_timing():
    q = np.linspace(0.0, 0.01, 6)[:, None]  # 2 mrad per 0.1 s step: far inside every limit
    timing = time_waypoints(q, 0.1, np.array([1.0]), np.array([10.0]), np.array([0.02]), stop_at_end=False)
    np.testing.assert_allclose(timing.times, 0.1 * np.arange(1, 6))


def test_fast_step_is_stretched_to_the_velocity_limit():
    q = np.array([[0.0], [1.0]])
    timing = time_waypoints(q, 0.1, np.array([2.0]), np.array([1e6]), np.array([2.0]), stop_at_end=False)
    assert timing.times[0] == pytest.approx(0.5)


def test_stop_at_end_ends_at_rest():
    q = np.array([[0.0, 0.0], [0.1, -0.2], [0.3, -0.3]])
    timing = time_waypoints(q, 0.1, np.ones(2), np.full(2, 5.0))
    np.testing.assert_array_equal(timing.velocities[-1], np.zeros(2))


def test_waypoint_velocity_lies_between_neighbouring_segment_velocities():
    q = np.array([[0.0], [0.1], [0.4]])
    timing = time_waypoints(q, 0.1, np.array([10.0]), np.array([100.0]), stop_at_end=False)
    s = np.diff(q[:, 0]) / np.diff(np.concatenate([[0.0], timing.times]))
    assert s[0] <= timing.velocities[0, 0] <= s[1]


def test_standing_still_keeps_nominal_times():
    q = np.zeros((4, 3))
    timing = time_waypoints(q, 0.2, np.ones(3), np.ones(3))
    np.testing.assert_allclose(timing.times, [0.2, 0.4, 0.6])
    np.testing.assert_array_equal(timing.velocities, np.zeros((3, 3)))


def test_braking_from_v0_stretches_the_first_segment():
    # Moving at 1 rad/s toward a waypoint that is where we are: braking at 2 rad/s^2 needs time.
    q = np.zeros((2, 1))
    timing = time_waypoints(q, 0.01, np.array([2.0]), np.array([2.0]), np.array([1.0]))
    assert timing.times[0] >= 1.0 - 1e-9  # |0 - 1| / (d / 2) <= 2


@pytest.mark.parametrize(
    "kwargs",
    [
        dict(waypoints=np.zeros((1, 2))),
        dict(waypoints=np.zeros(3)),
        dict(nominal_durations=0.0),
        dict(nominal_durations=np.array([0.1, 0.1])),
        dict(velocity_limits=np.array([1.0, -1.0])),
        dict(acceleration_limits=np.array([1.0])),
        dict(v0=np.array([np.nan, 0.0])),
        dict(waypoints=np.array([[0.0, 0.0], [np.inf, 0.0]])),
    ],
)
def test_bad_input_raises_trajectory_error(kwargs):
    args = dict(
        waypoints=np.zeros((2, 2)),
        nominal_durations=0.1,
        velocity_limits=np.ones(2),
        acceleration_limits=np.ones(2),
        v0=None,
    )
    args.update(kwargs)
    with pytest.raises(TrajectoryError):
        time_waypoints(**args)


@pytest.mark.parametrize(("step", "dt"), [(0.058, 0.02), (0.2, 0.1)])
def test_a_fast_path_that_stops_at_its_end_brakes_before_it_and_never_runs_past_it(step, dt):
    # 17 steps at up to 2.9 rad/s nominal, then rest: a forward pass alone stretched the last segment (2 s
    # for 0.058 rad) and the cubic through it ran 0.46 rad past the end before coming back.
    q = np.arange(18, dtype=float)[:, None] * step
    amax = np.array([5.0 / 3.0])
    timing = time_waypoints(q, dt, np.array([3.14]), amax)
    plan = Plan(np.concatenate([[0.0], timing.times]), q, np.vstack([[0.0], timing.velocities]))
    t = np.linspace(0.0, timing.times[-1], 20001)
    x = plan.sample_positions(t)[:, 0]
    assert x.max() <= q[-1, 0] + 1e-9 and np.all(np.diff(x) >= -1e-12), "monotone, never past the end"
    accel = np.gradient(np.gradient(x, t), t)[5:-5]
    assert np.abs(accel).max() <= HERMITE_ACCELERATION_FACTOR * amax[0] * 1.01
    durations = np.diff(np.concatenate([[0.0], timing.times]))
    assert durations[-1] < 4 * durations[-2], "braking spread over the segments before the stop"
