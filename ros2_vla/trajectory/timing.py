"""Time joint waypoints within velocity and acceleration limits: stretch the timing, never the positions.

The model is finite differences over straight joint-space segments. Segment k runs from waypoint k to
k+1 in d_k seconds at the mean velocity s_k = (q_{k+1} - q_k) / d_k. The velocity changes from s_{k-1} to
s_k between the two segment midpoints, so the implied acceleration at waypoint k is

    a_k = (s_k - s_{k-1}) / ((d_{k-1} + d_k) / 2),

with the start velocity v0 as s_{-1} at time 0 (d_{-1} = 0) and, when stopping at the end, a velocity of
0 after the last waypoint (d_H = 0). One forward pass gives each segment the shortest duration that is at
least its nominal one and keeps |s_k| <= v_max and |a_k| <= a_max on every joint; any duration long
enough satisfies both, so the pass never fails and never moves a waypoint.

Waypoint velocities (for JointTrajectory points) are that piecewise-linear velocity read at the
waypoints. The cubic Hermite spline through the points and these velocities (what `Plan.sample` and a
JointTrajectoryController play) overshoots a segment's mean velocity where both its ends are slower, so
such segments and their neighbours are stretched and the pass repeated until the spline itself keeps
|v| <= v_max (on the first segment, <= max(v_max, |v0|)).

That spline's acceleration on segment k is 2 a_k - a_{k+1} at its start and 2 a_{k+1} - a_k at its end
(linear between): at most 3x the finite-difference bound. Callers that need the played spline itself
within an acceleration limit pass a third of it (`HERMITE_ACCELERATION_FACTOR`); `TrajectoryBlender` does.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from ros2_vla.errors import TrajectoryError

HERMITE_ACCELERATION_FACTOR = 3.0  # peak cubic-Hermite acceleration / finite-difference bound, see above
_REL_TOL = 1e-9  # limits hold to this relative slack (floating point roots)
_MAX_PASSES = 60  # forward passes while slowing segments whose cubic overshoots the velocity limit


class Timing(NamedTuple):
    times: np.ndarray  # [s] (H,) when waypoints 1..H are reached, from waypoint 0 at t = 0; strictly increasing
    velocities: np.ndarray  # [rad/s] (H, n) joint velocities at waypoints 1..H (zero at the end when stopping)


def time_waypoints(
    waypoints: np.ndarray,
    nominal_durations: float | np.ndarray,
    velocity_limits: np.ndarray,
    acceleration_limits: np.ndarray,
    v0: np.ndarray | None = None,
    stop_at_end: bool = True,
) -> Timing:
    """Time a joint path that starts at the current position.

    waypoints [rad] (H+1, n), row 0 the current position q0; nominal_durations [s]: one step dt or (H,)
    per segment, each > 0 (the policy's pace: segments never get shorter); velocity_limits [rad/s] (n,),
    acceleration_limits [rad/s^2] (n,), both > 0; v0 [rad/s] (n,) the velocity at q0 (default zero);
    stop_at_end: also decelerate to rest at the last waypoint, so a path that is not replaced ends still.
    """
    q, nominal, vmax, amax, v_start = _check(waypoints, nominal_durations, velocity_limits, acceleration_limits, v0)
    steps = np.diff(q, axis=0)  # (H, n)
    for _ in range(_MAX_PASSES):
        durations = _forward_pass(steps, nominal, v_start, vmax, amax, stop_at_end)
        velocities = _waypoint_velocities(steps, durations, stop_at_end)
        # The cubic overshoots a segment's mean velocity when both ends are slower: slow that segment.
        peak = _spline_peak_speed(steps, durations, np.vstack([v_start, velocities]))
        allowed = np.maximum(vmax, np.abs(v_start))  # a measured v0 above the limit is not ours to undo
        ratio = np.max(peak / np.vstack([allowed, np.broadcast_to(vmax, peak[1:].shape)]), axis=1)
        if not np.any(ratio > 1.0 + _REL_TOL):
            break
        # Stretch the segment and both neighbours alike: the cubic's end velocities are mixes of the three
        # mean velocities, so its whole velocity curve shrinks by the same factor.
        factor = np.maximum(ratio, 1.0)
        # A measured v0 does not shrink with the first segment: near the fix its overshoot goes with the
        # square of the missing time, so stretching by the ratio only creeps up on it (0 to 1 from v0 =
        # vmax kept 6e-5 of overshoot after every pass). Small overshoots stretch by their root.
        factor = np.where(factor - 1.0 < 1e-3, 1.0 + np.sqrt(factor - 1.0), factor)
        factor = np.maximum.reduce([factor, np.r_[factor[1:], 1.0], np.r_[1.0, factor[:-1]]])
        nominal = np.maximum(nominal, durations * factor * (1.0 + 1e-6))
    return Timing(np.cumsum(durations), velocities)


def _forward_pass(steps, nominal, v_start, vmax, amax, stop_at_end) -> np.ndarray:
    """Durations [s] (H,): each the shortest that keeps the finite-difference limits, first to last."""
    horizon = steps.shape[0]
    durations = np.empty(horizon)
    s_prev, d_prev = v_start, 0.0
    for k in range(horizon):
        last = stop_at_end and k == horizon - 1
        durations[k] = _shortest_duration(steps[k], nominal[k], s_prev, d_prev, vmax, amax, last)
        s_prev, d_prev = steps[k] / durations[k], durations[k]
    return durations


def _spline_peak_speed(steps: np.ndarray, durations: np.ndarray, point_velocities: np.ndarray) -> np.ndarray:
    """Largest |velocity| [rad/s] (H, n) of the cubic Hermite on each segment, ends included.

    point_velocities (H+1, n). On a segment v(u) = c0 + c1 u + c2 u^2, u in [0, 1]."""
    s = steps / durations[:, None]
    v_a, v_b = point_velocities[:-1], point_velocities[1:]
    c0, c1, c2 = v_a, 6.0 * s - 4.0 * v_a - 2.0 * v_b, -6.0 * s + 3.0 * v_a + 3.0 * v_b
    with np.errstate(divide="ignore", invalid="ignore"):
        u = np.clip(np.where(c2 != 0.0, -c1 / (2.0 * c2), 0.0), 0.0, 1.0)
    inner = np.abs(c0 + c1 * u + c2 * u * u)
    return np.maximum.reduce([np.abs(v_a), np.abs(v_b), inner])


def segment_accelerations(
    waypoints: np.ndarray, times: np.ndarray, v0: np.ndarray, stop_at_end: bool = True
) -> np.ndarray:
    """The finite-difference accelerations [rad/s^2] this module bounds: (H+1, n) with `stop_at_end`
    (the last row is the stop after the last waypoint), else (H, n). times (H,) as `Timing.times`."""
    q = np.asarray(waypoints, dtype=np.float64)
    durations = np.diff(np.concatenate([[0.0], np.asarray(times, dtype=np.float64)]))
    s = np.diff(q, axis=0) / durations[:, None]
    s_ext = np.vstack([np.asarray(v0, dtype=np.float64)[None], s] + ([np.zeros((1, q.shape[1]))] if stop_at_end else []))
    d_ext = np.concatenate([[0.0], durations] + ([[0.0]] if stop_at_end else []))
    return np.diff(s_ext, axis=0) / (0.5 * (d_ext[:-1] + d_ext[1:]))[:, None]


def _shortest_duration(
    dq: np.ndarray, nominal: float, s_prev: np.ndarray, d_prev: float, vmax: np.ndarray, amax: np.ndarray, stop: bool
) -> float:
    """Smallest d >= the monotone lower bounds with |dq/d - s_prev| <= amax (d_prev + d) / 2 per joint.

    Times d that condition is two upward parabolas in d >= 0, each violated only between its roots, so the
    answer is the lower bound or one of the larger roots: try them in order.
    """
    lower = max(nominal, float(np.max(np.abs(dq) / vmax)))
    if stop:  # from s = dq/d to rest within d/2: |dq| / d <= amax d / 2
        lower = max(lower, float(np.max(np.sqrt(2.0 * np.abs(dq) / amax))))
    candidates = [lower]
    b_half = 0.5 * amax * d_prev
    for sign in (1.0, -1.0):  # amax/2 d^2 + (amax d_prev/2 + sign s_prev) d - sign dq >= 0
        a, b, c = 0.5 * amax, b_half + sign * s_prev, -sign * dq
        disc = b * b - 4.0 * a * c
        real = disc > 0.0
        root = (-b[real] + np.sqrt(disc[real])) / (2.0 * a[real])
        candidates.extend(float(r) for r in root if r > lower)
    for d in sorted(candidates):
        if _feasible(dq, d, s_prev, d_prev, amax):
            return d
    return max(candidates) * (1.0 + 4.0 * _REL_TOL)  # every parabola is past its larger root here


def _feasible(dq: np.ndarray, d: float, s_prev: np.ndarray, d_prev: float, amax: np.ndarray) -> bool:
    dv = np.abs(dq / d - s_prev)
    return bool(np.all(dv <= amax * 0.5 * (d_prev + d) * (1.0 + _REL_TOL)))


def _waypoint_velocities(steps: np.ndarray, durations: np.ndarray, stop_at_end: bool) -> np.ndarray:
    """The velocity that is linear between segment midpoints, read at waypoints 1..H: (H, n)."""
    s = steps / durations[:, None]
    d_before, d_after = durations[:-1, None], durations[1:, None]
    inner = (d_after * s[:-1] + d_before * s[1:]) / (d_before + d_after)
    end = np.zeros((1, s.shape[1])) if stop_at_end else s[-1:]
    return np.vstack([inner, end])


def _check(waypoints, nominal_durations, velocity_limits, acceleration_limits, v0):
    q = np.asarray(waypoints, dtype=np.float64)
    if q.ndim != 2 or q.shape[0] < 2:
        raise TrajectoryError(f"waypoints must be (H+1, n) with H >= 1, row 0 the current position; got shape {q.shape}")
    horizon, n = q.shape[0] - 1, q.shape[1]
    nominal = np.asarray(nominal_durations, dtype=np.float64)
    if nominal.ndim == 0:
        nominal = np.full(horizon, float(nominal))
    if nominal.shape != (horizon,) or not np.all(nominal > 0.0) or not np.all(np.isfinite(nominal)):
        raise TrajectoryError(
            f"nominal durations must be one dt or {horizon} values, each finite and > 0 [s]; got {nominal_durations!r}"
        )
    vmax = _positive(velocity_limits, n, "velocity limits [rad/s]")
    amax = _positive(acceleration_limits, n, "acceleration limits [rad/s^2]")
    v_start = np.zeros(n) if v0 is None else np.asarray(v0, dtype=np.float64)
    if v_start.shape != (n,) or not np.all(np.isfinite(v_start)):
        raise TrajectoryError(f"v0 must be {n} finite joint velocities [rad/s]; got {v0!r}")
    if not np.all(np.isfinite(q)):
        raise TrajectoryError("waypoints contain NaN or inf: check the IK results before timing them")
    return q, nominal, vmax, amax, v_start


def _positive(values, n: int, what: str) -> np.ndarray:
    out = np.asarray(values, dtype=np.float64)
    if out.shape != (n,) or not np.all(out > 0.0) or not np.all(np.isfinite(out)):
        raise TrajectoryError(f"{what} must be {n} finite values > 0 (from the robot config); got {values!r}")
    return out
