"""GripperPlan: the gripper's commanded path is continuous, rate-limited, and reaches its last target."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from ros2_vla.bridge.gripper_plan import GripperPlan
from ros2_vla.config import load_robot_config

SPEC = load_robot_config("franka").arms[0].gripper  # 0.0 closed .. 0.04 m open, 0.1 m/s


def _plan(position: float = SPEC.open_position, now: float = 0.0) -> GripperPlan:
    g = GripperPlan(SPEC)
    g.reset(now, position)
    return g


def _speeds(g: GripperPlan) -> np.ndarray:
    return np.abs(np.diff(g.positions) / np.diff(g.times))


def test_reset_holds_the_position_clipped_to_the_gripper_range():
    g = _plan(0.5)
    assert g.positions.tolist() == [SPEC.open_position]
    assert g.sample(np.array([-1.0, 0.0, 7.0]))[0].tolist() == [SPEC.open_position] * 3
    g.reset(1.0, -0.3)
    assert g.sample(2.0)[0][0] == SPEC.closed_position


def test_reset_clips_when_closed_is_numerically_above_open():
    spec = replace(SPEC, open_position=0.2, closed_position=1.1)  # e.g. a motor angle that grows to close
    g = GripperPlan(spec)
    g.reset(0.0, 5.0)
    assert g.sample(0.0)[0][0] == 1.1
    g.reset(0.0, -5.0)
    assert g.sample(0.0)[0][0] == 0.2


def test_slow_targets_are_met_at_their_times():
    g = _plan()
    times, targets = np.array([0.1, 0.2, 0.3]), np.array([0.035, 0.03, 0.032])  # 0.05 m/s: under the limit
    g.add(0.0, times, targets)
    np.testing.assert_allclose(g.sample(times)[0], targets)
    assert g.end_time == pytest.approx(0.3)


def test_never_faster_than_the_velocity_limit():
    g = _plan()
    g.add(0.0, np.array([0.1, 0.2]), np.array([SPEC.closed_position, SPEC.open_position]))
    assert np.all(_speeds(g) <= SPEC.velocity * (1 + 1e-12))
    ts = np.linspace(-0.1, g.end_time + 0.1, 200)
    _, gd = g.sample(ts)
    assert np.all(np.abs(gd) <= SPEC.velocity * (1 + 1e-12))


def test_last_target_is_reached_even_when_the_steps_are_too_short():
    g = _plan()  # open, 0.04 m: closing takes 0.4 s at 0.1 m/s
    g.add(0.0, np.array([0.1, 0.2]), np.array([SPEC.closed_position] * 2))
    assert g.sample(0.2)[0][0] == pytest.approx(0.02)  # rate-limited on the way
    assert g.end_time == pytest.approx(0.4)
    assert g.sample(g.end_time + 1.0)[0][0] == SPEC.closed_position
    assert np.all(_speeds(g) <= SPEC.velocity * (1 + 1e-12))


def test_a_new_target_takes_over_from_the_commanded_position_without_a_jump():
    g = _plan()
    g.add(0.0, np.array([0.1, 0.2]), np.array([SPEC.closed_position] * 2))
    now = 0.15
    before = g.sample(now)[0][0]
    g.add(now, np.array([0.25, 0.35]), np.array([SPEC.open_position] * 2))
    assert g.sample(now)[0][0] == pytest.approx(before)
    assert g.positions[0] == pytest.approx(before) and g.times[0] == now
    assert g.sample(g.end_time)[0][0] == SPEC.open_position


def test_times_at_or_before_now_are_ignored():
    g = _plan()
    g.add(1.0, np.array([0.5, 1.0, 1.1]), np.array([0.0, 0.0, 0.039]))
    assert g.times.tolist() == [1.0, 1.1]
    assert g.positions.tolist() == pytest.approx([SPEC.open_position, 0.039])


def test_no_future_time_leaves_a_hold():
    g = _plan(0.02)
    g.add(1.0, np.array([0.5, 1.0]), np.array([0.0, 0.0]))
    assert g.times.tolist() == [1.0] and g.positions.tolist() == [0.02]
    assert g.sample(3.0)[1][0] == 0.0


def test_sample_gives_segment_slopes_inside_and_zero_outside():
    g = _plan()
    g.add(0.0, np.array([0.1, 0.3]), np.array([0.035, 0.035]))
    q, qd = g.sample(np.array([-0.5, 0.05, 0.2, 0.5]))
    np.testing.assert_allclose(q, [0.04, 0.0375, 0.035, 0.035])
    np.testing.assert_allclose(qd, [0.0, -0.05, 0.0, 0.0], atol=1e-12)


def test_targets_outside_the_range_end_at_its_edge():
    g = _plan()
    g.add(0.0, np.array([0.1]), np.array([-1.0]))
    assert g.sample(g.end_time)[0][0] == SPEC.closed_position
