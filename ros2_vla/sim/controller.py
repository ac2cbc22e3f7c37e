"""A joint trajectory controller that behaves like ros2_control's JointTrajectoryController (JTC).

Pure: the caller passes the time [s] (the sim clock) to every call, so tests need no clock.

Behaviour, as the real controller's:
- a trajectory names some of the controller's joints and gives points (positions, optional
  velocities, time_from_start); `start_time` 0 means "start on receipt" (a zero header stamp);
- bad trajectories (unknown or repeated joints, NaN/inf, wrong lengths, times not increasing,
  velocities on some points only, ending in the past) raise `TrajectoryError` with the reason and
  change nothing: the arm keeps doing what it did;
- an accepted trajectory replaces the old one from now on. It starts from the measured positions
  at acceptance (JTC's default; from the old reference with `open_loop=True`, JTC's
  `open_loop_control`) with the old reference's velocity, and runs through the points: cubic
  Hermite when the points carry velocities, linear otherwise;
- points already in the past (a stamp before now) are dropped;
- the reference runs from the state at acceptance to the first point, reached at the start time plus its
  time_from_start, also when the start time is ahead (JTC interpolates from its state before the
  trajectory: it does not hold until the stamp); after the last point, it holds the last;
- joints the trajectory does not name keep their reference at acceptance;
- an empty trajectory (no points) is refused, as ros2_controllers' JTC refuses it (ROS 1's stopped).

`unreachable_start` tells a trajectory that cannot start where the arm is: its first point is
farther from the measured state than the velocity limits allow by then (planned for another state
of the arm). The real JTC leaves that to the hardware (a Franka stops with a velocity reflex);
sim_node uses it to drop plans still in flight across a reset.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from ros2_vla.errors import TrajectoryError
from ros2_vla.trajectory.plan import hermite

_SAME_TIME = 1e-9  # [s] knots closer than this are one instant: the later one wins


@dataclass(frozen=True)
class TrajectoryPoint:
    """One trajectory point: positions, optional velocities, and its time after the trajectory's start."""

    positions: tuple[float, ...]  # [rad or m] one per trajectory joint
    time_from_start: float  # [s] after the trajectory's start time
    velocities: tuple[float, ...] = ()  # [rad/s or m/s] empty, or one per trajectory joint


@dataclass(frozen=True)
class SimTrajectory:
    """A joint trajectory as the simulated controller takes it: joint names, points and start time."""

    joint_names: tuple[str, ...]
    points: tuple[TrajectoryPoint, ...]
    start_time: float = 0.0  # [s] on the controller's clock; 0 = on receipt (trajectory_msgs: zero stamp)


def unreachable_start(
    trajectory: SimTrajectory,
    now: float,
    measured: dict[str, float],
    velocity_limits: dict[str, float],
    tolerance: float,
) -> str:
    """Why the arm cannot reach `trajectory`'s first point in time, or "" when it can (or when the
    point is within `tolerance` [rad] of `measured`, a tracking lag). Joints without a limit are not
    checked. Times [s] on the controller's clock, as `accept` takes them."""
    if not trajectory.points:
        return ""  # `accept` refuses it
    first = trajectory.points[0]
    t0 = trajectory.start_time if trajectory.start_time > 0 else now
    within = max(t0 + first.time_from_start - now, 0.0)
    for name, q in zip(trajectory.joint_names, first.positions):
        if name not in velocity_limits or name not in measured:
            continue
        gap = abs(q - measured[name])
        if gap > tolerance and gap > velocity_limits[name] * within:
            return (
                f"its first point is {gap:.2f} rad from {name}'s measured position, {within:.3f} s ahead: "
                f"faster than the {velocity_limits[name]:.2f} rad/s limit"
            )
    return ""


@dataclass(frozen=True)
class _Plan:
    """Knots of the reference for every controller joint: times (K,), positions (K, n), velocities or None."""

    times: np.ndarray
    positions: np.ndarray
    velocities: np.ndarray | None
    before: np.ndarray  # (n,) held until times[0]


class JointTrajectoryController:
    """Holds the position reference of a fixed set of joints; units follow the joints ([rad] or [m])."""

    def __init__(self, joint_names: Sequence[str], positions: Sequence[float], open_loop: bool = False) -> None:
        self.joint_names = tuple(joint_names)
        self.open_loop = open_loop  # start new trajectories from the reference instead of the measurement
        if len(set(self.joint_names)) != len(self.joint_names) or not self.joint_names:
            raise TrajectoryError(f"controller joints {self.joint_names} must be distinct and not empty")
        self._index = {n: i for i, n in enumerate(self.joint_names)}
        self._plan = self._hold(positions)

    def reset(self, positions: Sequence[float]) -> None:
        """Drop any trajectory and hold `positions` (n,)."""
        self._plan = self._hold(positions)

    def accept(self, trajectory: SimTrajectory, now: float, measured: Sequence[float]) -> None:
        """Replace the running trajectory from `now` [s]; `measured` (n,) are the joints' positions now.

        Raises TrajectoryError (and keeps the old trajectory) when the trajectory is malformed.
        """
        cols = self._check(trajectory, now)
        measured = self._vector(measured, "measured positions")
        ref_p, ref_v = self.sample(now), self.velocity(now)
        start = ref_p.copy()
        if not self.open_loop:
            start[cols] = measured[cols]
        t0 = trajectory.start_time if trajectory.start_time > 0 else now
        times = [t0 + p.time_from_start for p in trajectory.points]
        keep = [k for k, t in enumerate(times) if t >= now]
        if not keep:
            raise TrajectoryError(
                f"trajectory for {trajectory.joint_names} ended at t={times[-1]:.3f} s, before now ({now:.3f} s)"
            )
        with_velocity = bool(trajectory.points[0].velocities)
        knot_t = [now] + [times[k] for k in keep]
        knot_p = np.tile(start, (len(knot_t), 1))
        knot_v = np.zeros_like(knot_p)
        knot_v[0] = ref_v if with_velocity else 0.0
        knot_v[0, [i for i in range(len(start)) if i not in set(cols)]] = 0.0
        for row, k in enumerate(keep, start=1):
            knot_p[row, cols] = trajectory.points[k].positions
            if with_velocity:
                knot_v[row, cols] = trajectory.points[k].velocities
        if knot_t[1] - knot_t[0] < _SAME_TIME:  # a first point at the start instant: a step
            knot_t, knot_p, knot_v = knot_t[1:], knot_p[1:], knot_v[1:]
        self._plan = _Plan(np.array(knot_t), knot_p, knot_v if with_velocity else None, before=start)

    def sample(self, t: float) -> np.ndarray:
        """Reference positions (n,) at time t [s]."""
        return self._at(t, derivative=False)

    def velocity(self, t: float) -> np.ndarray:
        """Reference velocities (n,) at time t [s]; zero while holding."""
        return self._at(t, derivative=True)

    def end_time(self) -> float:
        """[s] time of the last point; after it the reference holds."""
        return float(self._plan.times[-1])

    def _hold(self, positions: Sequence[float]) -> _Plan:
        p = self._vector(positions, "hold positions")
        return _Plan(np.array([-math.inf]), p[None, :], None, before=p)

    def _vector(self, values: Sequence[float], what: str) -> np.ndarray:
        v = np.asarray(values, dtype=np.float64).reshape(-1)
        if v.shape != (len(self.joint_names),) or not np.all(np.isfinite(v)):
            raise TrajectoryError(
                f"{what} must be {len(self.joint_names)} finite numbers for {self.joint_names}, got {values!r}"
            )
        return v

    def _check(self, trajectory: SimTrajectory, now: float) -> list[int]:
        """Column of each trajectory joint, after every check that can reject the trajectory."""
        names = tuple(trajectory.joint_names)
        unknown = [n for n in names if n not in self._index]
        if unknown or not names:
            raise TrajectoryError(
                f"trajectory names unknown joints {unknown or '(none)'}; this controller commands {self.joint_names}"
            )
        if len(set(names)) != len(names):
            raise TrajectoryError(f"trajectory names a joint twice: {names}")
        if not (math.isfinite(trajectory.start_time) and trajectory.start_time >= 0):
            raise TrajectoryError(f"trajectory start time {trajectory.start_time} must be finite and >= 0 (0 = now)")
        points = trajectory.points
        if not points:
            raise TrajectoryError(f"trajectory for {names} has no points")
        with_velocity = bool(points[0].velocities)
        last = -math.inf
        for k, p in enumerate(points):
            if len(p.positions) != len(names):
                raise TrajectoryError(f"point {k} has {len(p.positions)} positions for {len(names)} joints {names}")
            if bool(p.velocities) != with_velocity or (p.velocities and len(p.velocities) != len(names)):
                raise TrajectoryError(f"point {k}: give velocities for every joint on every point, or on none")
            values = np.array([*p.positions, *p.velocities, p.time_from_start], dtype=np.float64)
            if not np.all(np.isfinite(values)):
                raise TrajectoryError(f"point {k} holds NaN or infinite values: {p}")
            if p.time_from_start < 0 or p.time_from_start <= last:
                raise TrajectoryError(
                    f"point {k}: time_from_start {p.time_from_start} s must be >= 0 and above the previous point's"
                )
            last = p.time_from_start
        return [self._index[n] for n in names]

    def _at(self, t: float, derivative: bool) -> np.ndarray:
        plan = self._plan
        T, P = plan.times, plan.positions
        if t < T[0]:
            return np.zeros(P.shape[1]) if derivative else plan.before.copy()
        if len(T) == 1:
            return np.zeros(P.shape[1]) if derivative else P[0].copy()
        if t >= T[-1]:
            return np.zeros(P.shape[1]) if derivative else P[-1].copy()
        i = int(np.searchsorted(T, t, side="right")) - 1
        h = T[i + 1] - T[i]
        s = (t - T[i]) / h
        p0, p1 = P[i], P[i + 1]
        if plan.velocities is None:
            return (p1 - p0) / h if derivative else p0 + s * (p1 - p0)
        position, velocity = hermite(p0, plan.velocities[i], p1, plan.velocities[i + 1], h, t - T[i])
        return velocity if derivative else position
