"""Chunk blending: continuity at the switch, limits in the played stream, skip / ensemble / hold rules."""

from __future__ import annotations

import numpy as np
import pytest

from ros2_vla.errors import TrajectoryError
from ros2_vla.trajectory.blend_config import BlendConfig
from ros2_vla.trajectory.blending import HISTORY, TrajectoryBlender, blend_weights
from ros2_vla.trajectory.ensemble import TimedChunk, ensemble_at, ensemble_weights
from ros2_vla.trajectory.plan import Plan

N = 3
VMAX = np.array([1.0, 2.0, 1.5])  # [rad/s]
AMAX = np.array([5.0, 8.0, 4.0])  # [rad/s^2]
CONTROL_PERIOD = 0.01  # [s]
DT = 0.1  # [s] chunk step
Q0 = np.array([0.1, -0.2, 0.3])


def _chunk(start: np.ndarray, step: np.ndarray, horizon: int = 8) -> np.ndarray:
    return start + np.outer(np.arange(1, horizon + 1), step)


def _blender(mode: str, blend_steps: int = 2, m: float = 0.01) -> TrajectoryBlender:
    b = TrajectoryBlender(BlendConfig(mode=mode, blend_steps=blend_steps, ensemble_m=m), VMAX, AMAX)
    b.reset(0.0, Q0)
    return b


def _stream(b: TrajectoryBlender, t0: float, t1: float) -> tuple[np.ndarray, np.ndarray]:
    ts = np.arange(t0, t1, CONTROL_PERIOD)
    samples = [b.sample(float(t)) for t in ts]
    return np.array([s[0] for s in samples]), np.array([s[1] for s in samples])


@pytest.mark.parametrize("mode", ["replace", "skip", "ensemble"])
def test_new_chunk_is_continuous_at_the_switch(mode):
    b = _blender(mode)
    b.add(0.0, 0.0, DT, _chunk(Q0, np.array([0.05, 0.08, -0.04])))
    now = 0.37
    q_before, qd_before = b.sample(now)
    # A chunk that turns back: the worst case for a jump.
    b.add(now, now - 0.03, DT, _chunk(q_before, np.array([-0.06, -0.05, 0.05])))
    q_after, qd_after = b.sample(now)
    assert np.max(np.abs(q_after - q_before)) < 1e-9
    assert np.all(np.abs(qd_after - qd_before) <= AMAX * CONTROL_PERIOD)
    _, qd_next = b.sample(now + CONTROL_PERIOD)
    assert np.all(np.abs(qd_next - qd_before) <= AMAX * CONTROL_PERIOD * (1 + 1e-6))


@pytest.mark.parametrize("mode", ["replace", "skip", "ensemble"])
def test_played_stream_keeps_limits_over_many_chunks(mode):
    rng = np.random.default_rng(7)
    b = _blender(mode)
    now, positions, velocities = 0.0, [], []
    for _ in range(12):
        q_now, _ = b.sample(now)
        b.add(now, now - rng.uniform(0.0, 0.15), DT, _chunk(q_now, rng.normal(0.0, 0.08, N)))
        nxt = now + rng.uniform(0.1, 0.4)  # chunks arrive at 2.5-10 Hz, unsynchronized with the control rate
        q, qd = _stream(b, now, nxt)
        positions.append(q)
        velocities.append(qd)
        now = nxt
    qd = np.vstack(velocities)
    q = np.vstack(positions)
    assert np.all(np.abs(qd) <= VMAX * (1 + 1e-6))
    # Control-rate finite differences: no position jump, no velocity jump beyond the acceleration limit.
    assert np.all(np.abs(np.diff(qd, axis=0)) <= AMAX * CONTROL_PERIOD * (1 + 1e-6))
    assert np.all(np.abs(np.diff(q, axis=0)) <= VMAX * CONTROL_PERIOD * (1 + 1e-6))


def test_plan_ends_at_rest_on_its_last_waypoint():
    b = _blender("replace", blend_steps=0)
    chunk = _chunk(Q0, np.array([0.02, 0.0, -0.01]))
    plan = b.add(0.0, 0.0, DT, chunk)
    q, qd = b.sample(plan.end_time + 1.0)
    np.testing.assert_array_equal(q, chunk[-1])
    np.testing.assert_array_equal(qd, np.zeros(N))


def test_replace_ignores_the_stamp_and_plays_every_step_from_now():
    b = _blender("replace", blend_steps=0)
    chunk = _chunk(Q0, np.array([0.001, 0.0, 0.0]), horizon=5)  # slow: nominal timing holds
    plan = b.add(10.0, 3.0, DT, chunk)
    np.testing.assert_allclose(plan.times, 10.0 + DT * np.arange(6), atol=1e-12)
    np.testing.assert_array_equal(plan.positions[1:], chunk)


def test_skip_drops_exactly_the_steps_whose_target_time_passed():
    b = _blender("skip", blend_steps=0)
    b.reset(1.0, Q0)
    chunk = _chunk(Q0, np.array([0.001, 0.002, 0.0]), horizon=10)
    # 0.25 s late: steps 0 and 1 were due at 0.85 and 0.95 (past); step 2 began at 0.95 but is due at 1.05
    plan = b.add(1.0, 0.75, DT, chunk)
    np.testing.assert_array_equal(plan.positions[1:], chunk[2:])
    assert plan.times[1] >= 1.05 - 1e-12 and np.all(plan.times[1:] >= 0.75 + DT * np.arange(3, 11) - 1e-12)


def test_skip_keeps_the_first_step_at_a_few_milliseconds_of_latency():
    b = _blender("skip", blend_steps=0)
    chunk = _chunk(Q0, np.array([0.001, 0.0, 0.0]), horizon=2)
    plan = b.add(0.003, 0.0, 0.2, chunk)  # 3 ms of transport: both steps are still ahead
    np.testing.assert_array_equal(plan.positions[1:], chunk)


def test_skip_drops_a_step_due_exactly_now():
    b = _blender("skip", blend_steps=0)
    chunk = _chunk(Q0, np.array([0.001, 0.0, 0.0]), horizon=4)
    plan = b.add(0.2, 0.0, 0.1, chunk)  # step 1 is due at 0.2 = now
    np.testing.assert_array_equal(plan.positions[1:], chunk[2:])


def test_skip_drops_a_step_due_now_up_to_rounding():
    b = _blender("skip", blend_steps=0)
    chunk = _chunk(Q0, np.array([0.001, 0.0, 0.0]), horizon=5)
    stamp = 0.0
    now = stamp + 0.3  # step 2 is due at stamp + 3 * 0.1, 6e-17 s after this in floating point
    assert stamp + 3 * 0.1 > now
    plan = b.add(now, stamp, 0.1, chunk)
    np.testing.assert_array_equal(plan.positions[1:], chunk[3:])


def test_commanded_at_reads_the_plan_that_was_in_force_then():
    b = _blender("skip")
    first = b.add(0.0, 0.0, DT, _chunk(Q0, np.array([0.02, 0.03, -0.01])))
    second = b.add(0.25, 0.2, DT, _chunk(first.sample(0.2)[0], np.array([-0.02, 0.01, 0.02])))
    assert not np.allclose(first.sample(0.15)[0], second.sample(0.15)[0])  # the new plan starts at 0.25
    np.testing.assert_array_equal(b.commanded_at(0.15), first.sample(0.15)[0])
    np.testing.assert_array_equal(b.commanded_at(0.25), second.sample(0.25)[0])
    np.testing.assert_array_equal(b.commanded_at(0.4), second.sample(0.4)[0])
    np.testing.assert_array_equal(b.commanded_at(-1.0), Q0)  # before the first chunk: the hold
    b.reset(0.3, Q0 + 0.1)  # a reset forgets the past: the arm's state is known only from now on
    np.testing.assert_array_equal(b.commanded_at(0.15), Q0 + 0.1)


@pytest.mark.parametrize("mode", ["replace", "skip", "ensemble"])
def test_a_chunk_starts_from_its_stamp_except_in_replace(mode):
    b = _blender(mode)
    b.add(0.0, 0.0, DT, _chunk(Q0, np.array([0.02, 0.03, -0.01])))
    start_at = 0.4 if mode == "replace" else 0.15
    np.testing.assert_array_equal(b.chunk_start(0.4, 0.15), b.commanded_at(start_at))
    np.testing.assert_array_equal(b.chunk_start(0.4, 0.9), b.commanded_at(0.4))  # stamped ahead of this clock
    assert not np.allclose(b.commanded_at(0.15), b.commanded_at(0.4))  # the two starts differ


def test_commanded_at_remembers_the_last_seconds_and_no_more():
    b = _blender("skip")
    seen = {}  # time [s] -> what the blender was commanding then, read at that time
    for k in range(100):  # 20 chunks/s for 5 s
        t = 0.05 * k
        b.add(t, t, DT, _chunk(b.sample(t)[0], np.array([0.001, -0.001, 0.0005])))
        seen[t + 0.03] = b.sample(t + 0.03)[0]  # before the next chunk takes over at t + 0.05
    recent = [t for t in seen if t > 4.95 - HISTORY]
    for t in recent:
        np.testing.assert_array_equal(b.commanded_at(t), seen[t])
    assert len(b._history) <= len(recent) + 1  # older plans are let go


@pytest.mark.parametrize("mode", ["skip", "ensemble"])
def test_chunk_entirely_in_the_past_plays_from_now(mode):
    """A model slower than its dt: the whole chunk is played from now, none of it dropped for lateness."""
    b = _blender(mode)
    chunk = _chunk(Q0, np.array([0.1, 0.1, 0.1]))
    plan = b.add(5.0, 0.0, DT, chunk)
    assert plan.start_time == 5.0 and plan.times[1] >= 5.0 + DT - 1e-9  # step 1 not sooner than one dt from now
    np.testing.assert_allclose(plan.positions[-1], chunk[-1])
    np.testing.assert_array_equal(b.sample(5.0)[0], Q0)  # no jump at the switch
    q, qd = b.sample(plan.end_time + 1.0)
    np.testing.assert_allclose(q, chunk[-1])
    np.testing.assert_array_equal(qd, np.zeros(N))


def test_blend_window_moves_from_old_path_to_new_chunk():
    b = _blender("replace", blend_steps=3)
    new = _chunk(Q0, np.array([0.002, 0.0, 0.0]), horizon=6)
    plan = b.add(0.0, 0.0, DT, new)  # the old path is the hold at Q0
    share = (plan.positions[1:, 0] - Q0[0]) / (new[:, 0] - Q0[0])  # fraction of the way to the new waypoint
    np.testing.assert_allclose(share, blend_weights(6, 3))
    assert np.all(np.diff(share[:4]) > 0.0) and np.all(share[3:] == 1.0)


def test_blend_weights_without_window_are_all_new():
    np.testing.assert_array_equal(blend_weights(4, 0), np.ones(4))


def test_ensemble_weights_sum_to_one_and_favour_the_oldest():
    w = ensemble_weights(5, 0.01)
    assert w.sum() == pytest.approx(1.0)
    assert np.all(np.diff(w) < 0.0)  # index 0 is the oldest chunk (ACT)
    np.testing.assert_allclose(w[1:] / w[:-1], np.exp(-0.01))
    np.testing.assert_allclose(ensemble_weights(3, 0.0), np.full(3, 1 / 3))


def test_ensemble_averages_only_the_chunks_that_cover_the_time():
    old = TimedChunk(0.0, np.array([0.1, 0.2, 0.3]), np.full((3, 1), 1.0))
    new = TimedChunk(0.1, np.array([0.2, 0.3, 0.4]), np.full((3, 1), 3.0))
    w = ensemble_weights(2, 0.5)
    assert ensemble_at([new, old], 0.25, 0.5)[0] == pytest.approx(w[0] * 1.0 + w[1] * 3.0)
    assert ensemble_at([new, old], 0.35, 0.5)[0] == pytest.approx(3.0)  # only the new chunk reaches 0.35


def test_blender_ensemble_plan_waypoints_are_act_averages():
    m = 0.3
    b = _blender("ensemble", m=m)
    first = _chunk(Q0, np.array([0.001, 0.0, 0.0]), horizon=6)
    b.add(0.0, 0.0, DT, first)
    second = first + np.array([0.002, 0.0, 0.0])  # same grid, 0.05 s later stamp: steps shifted by half a step
    plan = b.add(0.05, 0.05, DT, second)
    w = ensemble_weights(2, m)
    times = 0.05 + DT * np.arange(1, 7)
    old_at = np.array([np.interp(t, DT * np.arange(1, 7), first[:, 0]) for t in times])
    covered = times <= 0.6 + 1e-12
    expected = np.where(covered, w[0] * old_at + w[1] * second[:, 0], second[:, 0])
    np.testing.assert_allclose(plan.positions[1:, 0], expected)


def test_sample_before_reset_raises():
    b = TrajectoryBlender(BlendConfig(), VMAX, AMAX)
    with pytest.raises(TrajectoryError, match="reset"):
        b.sample(0.0)


def test_chunk_with_wrong_joint_count_raises():
    b = _blender("skip")
    with pytest.raises(TrajectoryError):
        b.add(0.0, 0.0, DT, np.zeros((4, N + 1)))


@pytest.mark.parametrize(
    "kwargs", [dict(mode="average"), dict(blend_steps=-1), dict(ensemble_m=-0.1), dict(max_chunks=0)]
)
def test_bad_config_raises(kwargs):
    with pytest.raises(TrajectoryError):
        BlendConfig(**kwargs)


def test_plan_rejects_times_that_do_not_increase():
    with pytest.raises(TrajectoryError):
        Plan(np.array([0.0, 0.0]), np.zeros((2, 1)), np.zeros((2, 1)))
