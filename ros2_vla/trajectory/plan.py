"""The joint trajectory the bridge is executing: timed points, played as a cubic Hermite spline.

A cubic through each pair of points with their velocities is what a ros2_control
JointTrajectoryController plays for position + velocity points, so sampling the plan here and sending
the plan to a controller give the same motion.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ros2_vla.errors import TrajectoryError


@dataclass(frozen=True)
class Plan:
    """Joint points at absolute times.

    times [s] (N,) strictly increasing, on the caller's clock (the bridge's ROS time);
    positions [rad] (N, n); velocities [rad/s] (N, n). Row 0 is where the plan took over from the one
    before (the robot's commanded state then). Before times[0] the plan gives row 0; after times[-1] it
    holds the last position at zero velocity.
    """

    times: np.ndarray
    positions: np.ndarray
    velocities: np.ndarray

    def __post_init__(self) -> None:
        t = np.array(self.times, dtype=np.float64)
        q = np.array(self.positions, dtype=np.float64)
        qd = np.array(self.velocities, dtype=np.float64)
        if t.ndim != 1 or t.size < 1 or q.ndim != 2 or q.shape[0] != t.size or qd.shape != q.shape:
            raise TrajectoryError(
                f"plan needs times (N,), positions and velocities (N, n); got {t.shape}, {q.shape}, {qd.shape}"
            )
        if not (np.all(np.isfinite(t)) and np.all(np.isfinite(q)) and np.all(np.isfinite(qd))):
            raise TrajectoryError("plan has NaN or inf in its times, positions or velocities")
        if np.any(np.diff(t) <= 0.0):
            raise TrajectoryError(f"plan times must be strictly increasing; got {t.tolist()}")
        for name, value in (("times", t), ("positions", q), ("velocities", qd)):
            value.flags.writeable = False  # frozen means frozen: nobody edits a plan being played
            object.__setattr__(self, name, value)

    @classmethod
    def hold(cls, t: float, q: np.ndarray) -> Plan:
        """Stand still at q [rad] (n,) from time t [s]."""
        q = np.asarray(q, dtype=np.float64)
        return cls(np.array([float(t)]), q[None, :], np.zeros((1, q.size)))

    @property
    def start_time(self) -> float:
        return float(self.times[0])

    @property
    def end_time(self) -> float:
        """[s] when the last point is reached; the plan is at rest from then on."""
        return float(self.times[-1])

    @property
    def dof(self) -> int:
        return int(self.positions.shape[1])

    def sample(self, t: float) -> tuple[np.ndarray, np.ndarray]:
        """Position [rad] (n,) and velocity [rad/s] (n,) at time t [s]."""
        if t <= self.times[0]:
            return self.positions[0].copy(), self.velocities[0].copy()
        if t >= self.times[-1]:
            return self.positions[-1].copy(), np.zeros(self.dof)
        i = int(np.searchsorted(self.times, t, side="right")) - 1
        return hermite(
            self.positions[i],
            self.velocities[i],
            self.positions[i + 1],
            self.velocities[i + 1],
            float(self.times[i + 1] - self.times[i]),
            float(t - self.times[i]),
        )

    def sample_positions(self, ts: np.ndarray) -> np.ndarray:
        """Positions [rad] (len(ts), n) at each time of ts [s], as `sample` gives them."""
        ts = np.atleast_1d(np.asarray(ts, dtype=np.float64))
        if self.times.size == 1:
            return np.repeat(self.positions[:1], ts.size, axis=0)
        i = np.clip(np.searchsorted(self.times, ts, side="right") - 1, 0, self.times.size - 2)
        h = (self.times[i + 1] - self.times[i])[:, None]
        dt = np.clip(ts - self.times[i], 0.0, None)[:, None]
        q, _ = hermite(self.positions[i], self.velocities[i], self.positions[i + 1], self.velocities[i + 1], h, dt)
        q[ts <= self.times[0]] = self.positions[0]
        q[ts >= self.times[-1]] = self.positions[-1]
        return q


def hermite(
    p0: np.ndarray, v0: np.ndarray, p1: np.ndarray, v1: np.ndarray, h: float | np.ndarray, dt: float | np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Cubic from (p0, v0) to (p1, v1) over h [s], read dt [s] after its start: (position, velocity).
    Broadcasts: rows of points with h and dt of shape (rows, 1) give one sample per row."""
    u = dt / h
    u2, u3 = u * u, u * u * u
    pos = (2 * u3 - 3 * u2 + 1) * p0 + (u3 - 2 * u2 + u) * h * v0 + (-2 * u3 + 3 * u2) * p1 + (u3 - u2) * h * v1
    vel = ((6 * u2 - 6 * u) * (p0 - p1)) / h + (3 * u2 - 4 * u + 1) * v0 + (3 * u2 - 2 * u) * v1
    return pos, vel
