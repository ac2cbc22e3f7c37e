"""Time joint waypoints within velocity and acceleration limits: stretch the timing, never the positions.

The model is finite differences over straight joint-space segments. Segment k runs from waypoint k to
k+1 in d_k seconds at the mean velocity s_k = (q_{k+1} - q_k) / d_k. The velocity changes from s_{k-1} to
s_k between the two segment midpoints, so the implied acceleration at waypoint k is

    a_k = (s_k - s_{k-1}) / ((d_{k-1} + d_k) / 2),

with the start velocity v0 as s_{-1} at time 0 (d_{-1} = 0) and, when stopping at the end, a velocity of
0 after the last waypoint (d_H = 0). One forward pass gives each segment the shortest duration that is at
least its nominal one and keeps |s_k| <= v_max and |a_k| <= a_max on every joint; any duration long
enough satisfies both, so the pass never fails and never moves a waypoint.

A forward pass alone meets a stop it comes to too fast by stretching the last segment: from 1.7 rad/s, a
0.058 rad last step took 2 s, which keeps the finite-difference bound (the velocity changes over the long
segment) while the cubic through it ran 0.46 rad past the end and back. So, stopping at the end, each
segment is first given a floor: no joint faster than it can still brake to rest, within its acceleration
limit, over the distance it has left before it stops or turns back. The path then decelerates over as
many segments as it needs.

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

import math
from typing import NamedTuple

import numpy as np
from numba import njit

from ros2_vla.errors import TrajectoryError

HERMITE_ACCELERATION_FACTOR = 3.0  # peak cubic-Hermite acceleration / finite-difference bound, see above
_REL_TOL = 1e-9  # limits hold to this relative slack (floating point roots)
_MAX_PASSES = 60  # forward passes while slowing segments whose cubic overshoots the velocity limit


class Timing(NamedTuple):
    """When each waypoint is reached and the joint velocities there, as `time_waypoints` gives them."""

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
    durations, velocities = _time(np.ascontiguousarray(np.diff(q, axis=0)), nominal, v_start, vmax, amax, stop_at_end)
    return Timing(np.cumsum(durations), velocities)


# The passes below run for every chunk: compiled (numba), as loops over steps and joints.


@njit(cache=True)
def _time(steps, nominal, v_start, vmax, amax, stop_at_end):
    """Durations [s] (H,) and waypoint velocities [rad/s] (H, n): forward passes, repeated while the cubic
    through the result overshoots the velocity limit somewhere."""
    horizon = steps.shape[0]
    nominal = nominal.copy()
    if stop_at_end:  # every joint brakes in time; later passes only lengthen `nominal`, so this holds
        nominal = np.maximum(nominal, _braking_floor(steps, amax))
    durations = _forward_pass(steps, nominal, v_start, vmax, amax, stop_at_end)
    velocities = _waypoint_velocities(steps, durations, stop_at_end)
    for _ in range(_MAX_PASSES - 1):
        # The cubic overshoots a segment's mean velocity when both ends are slower: slow that segment.
        ratio = _overshoot(steps, durations, v_start, velocities, vmax)
        if not np.any(ratio > 1.0 + _REL_TOL):
            break
        # Stretch the segment and both neighbours alike: the cubic's end velocities are mixes of the three
        # mean velocities, so its whole velocity curve shrinks by the same factor.
        factor = np.maximum(ratio, 1.0)
        for k in range(horizon):
            # A measured v0 does not shrink with the first segment: near the fix its overshoot goes with the
            # square of the missing time, so stretching by the ratio only creeps up on it (0 to 1 from v0 =
            # vmax kept 6e-5 of overshoot after every pass). Small overshoots stretch by their root.
            if factor[k] - 1.0 < 1e-3:
                factor[k] = 1.0 + math.sqrt(factor[k] - 1.0)
        for k in range(horizon):
            widest = factor[k]
            if k > 0:
                widest = max(widest, factor[k - 1])
            if k + 1 < horizon:
                widest = max(widest, factor[k + 1])
            nominal[k] = max(nominal[k], durations[k] * widest * (1.0 + 1e-6))
        durations = _forward_pass(steps, nominal, v_start, vmax, amax, stop_at_end)
        velocities = _waypoint_velocities(steps, durations, stop_at_end)
    return durations, velocities


@njit(cache=True)
def _braking_floor(steps, amax):
    """Per segment (H,): the shortest duration whose mean speed, on every joint, can still come to rest
    within the acceleration limit over the distance that joint has left before it stops or turns back
    (from the segment's middle): |dq| / d <= sqrt(2 a R)."""
    horizon, n = steps.shape
    floor = np.zeros(horizon)
    for j in range(n):
        left = 0.0  # [rad] from the end of segment k on, until joint j stops or reverses
        for k in range(horizon - 1, -1, -1):
            dq = steps[k, j]
            if k + 1 < horizon and dq * steps[k + 1, j] <= 0.0:
                left = 0.0
            distance = left + 0.5 * abs(dq)
            if distance > 0.0:
                floor[k] = max(floor[k], abs(dq) / math.sqrt(2.0 * amax[j] * distance))
            left += abs(dq)
    return floor


@njit(cache=True)
def _forward_pass(steps, nominal, v_start, vmax, amax, stop_at_end):
    """Durations [s] (H,): each the shortest that keeps the finite-difference limits, first to last."""
    horizon = steps.shape[0]
    durations = np.empty(horizon)
    s_prev, d_prev = v_start.copy(), 0.0
    for k in range(horizon):
        last = stop_at_end and k == horizon - 1
        durations[k] = _shortest_duration(steps[k], nominal[k], s_prev, d_prev, vmax, amax, last)
        s_prev, d_prev = steps[k] / durations[k], durations[k]
    return durations


@njit(cache=True)
def _overshoot(steps, durations, v_start, velocities, vmax):
    """Per segment (H,): the largest ratio over joints of the cubic Hermite's peak |velocity| to its limit
    (on the first segment max(v_max, |v0|): a measured v0 above the limit is not ours to undo).

    The cubic's velocity on a segment is v(u) = c0 + c1 u + c2 u^2, u in [0, 1], ends included."""
    horizon, n = steps.shape
    ratio = np.zeros(horizon)
    for k in range(horizon):
        for j in range(n):
            s = steps[k, j] / durations[k]
            v_a = v_start[j] if k == 0 else velocities[k - 1, j]
            v_b = velocities[k, j]
            c1, c2 = 6.0 * s - 4.0 * v_a - 2.0 * v_b, -6.0 * s + 3.0 * v_a + 3.0 * v_b
            u = min(max(-c1 / (2.0 * c2), 0.0), 1.0) if c2 != 0.0 else 0.0
            peak = max(abs(v_a), abs(v_b), abs(v_a + c1 * u + c2 * u * u))
            allowed = max(vmax[j], abs(v_start[j])) if k == 0 else vmax[j]
            ratio[k] = max(ratio[k], peak / allowed)
    return ratio


def segment_accelerations(
    waypoints: np.ndarray, times: np.ndarray, v0: np.ndarray, stop_at_end: bool = True
) -> np.ndarray:
    """The finite-difference accelerations [rad/s^2] this module bounds: (H+1, n) with `stop_at_end`
    (the last row is the stop after the last waypoint), else (H, n). times (H,) as `Timing.times`."""
    q = np.asarray(waypoints, dtype=np.float64)
    durations = np.diff(np.concatenate([[0.0], np.asarray(times, dtype=np.float64)]))
    s = np.diff(q, axis=0) / durations[:, None]
    s_ext = np.vstack(
        [np.asarray(v0, dtype=np.float64)[None], s] + ([np.zeros((1, q.shape[1]))] if stop_at_end else [])
    )
    d_ext = np.concatenate([[0.0], durations] + ([[0.0]] if stop_at_end else []))
    return np.diff(s_ext, axis=0) / (0.5 * (d_ext[:-1] + d_ext[1:]))[:, None]


@njit(cache=True)
def _shortest_duration(dq, nominal, s_prev, d_prev, vmax, amax, stop):
    """Smallest d >= the monotone lower bounds with |dq/d - s_prev| <= amax (d_prev + d) / 2 per joint.

    Times d that condition is two upward parabolas in d >= 0, each violated only between its roots, so the
    answer is the lower bound or one of the larger roots: try them in order.
    """
    n = dq.shape[0]
    lower = nominal
    for j in range(n):
        lower = max(lower, abs(dq[j]) / vmax[j])
        if stop:  # from s = dq/d to rest within d/2: |dq| / d <= amax d / 2
            lower = max(lower, math.sqrt(2.0 * abs(dq[j]) / amax[j]))
    candidates = np.empty(2 * n + 1)
    candidates[0], count = lower, 1
    for sign in (1.0, -1.0):  # amax/2 d^2 + (amax d_prev/2 + sign s_prev) d - sign dq >= 0
        for j in range(n):
            a, b, c = 0.5 * amax[j], 0.5 * amax[j] * d_prev + sign * s_prev[j], -sign * dq[j]
            disc = b * b - 4.0 * a * c
            if disc > 0.0:
                root = (-b + math.sqrt(disc)) / (2.0 * a)
                if root > lower:
                    candidates[count], count = root, count + 1
    candidates = np.sort(candidates[:count])
    for d in candidates:
        if _feasible(dq, d, s_prev, d_prev, amax):
            return d
    return candidates[-1] * (1.0 + 4.0 * _REL_TOL)  # every parabola is past its larger root here


@njit(cache=True)
def _feasible(dq, d, s_prev, d_prev, amax):
    for j in range(dq.shape[0]):
        if abs(dq[j] / d - s_prev[j]) > amax[j] * 0.5 * (d_prev + d) * (1.0 + _REL_TOL):
            return False
    return True


@njit(cache=True)
def _waypoint_velocities(steps, durations, stop_at_end):
    """The velocity that is linear between segment midpoints, read at waypoints 1..H: (H, n)."""
    horizon, n = steps.shape
    out = np.zeros((horizon, n))
    for k in range(horizon - 1):
        d_before, d_after = durations[k], durations[k + 1]
        for j in range(n):
            out[k, j] = (d_after * steps[k, j] / d_before + d_before * steps[k + 1, j] / d_after) / (d_before + d_after)
    if not stop_at_end:
        for j in range(n):
            out[horizon - 1, j] = steps[horizon - 1, j] / durations[horizon - 1]
    return out


def _check(waypoints, nominal_durations, velocity_limits, acceleration_limits, v0):
    q = np.asarray(waypoints, dtype=np.float64)
    if q.ndim != 2 or q.shape[0] < 2:
        raise TrajectoryError(
            f"waypoints must be (H+1, n) with H >= 1, row 0 the current position; got shape {q.shape}"
        )
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
