"""The gripper's commanded path: piecewise linear, never faster than its velocity limit.

The arm's timing is not stretched for the gripper (a binarized open/close would otherwise slow
the whole chunk); instead each gripper target is approached from the previous command at most
`spec.velocity` per second, starting from where the gripper is commanded now (no jump). The last
target is always reached, after the arm's last step if the gripper needs longer.
"""

from __future__ import annotations

import numpy as np

from ros2_vla.config import GripperSpec

_MIN_SEGMENT = 1e-9  # [s] shorter final segments are merged into the last step (times stay strictly increasing)


class GripperPlan:
    """One gripper's commanded path: times and positions, never faster than its velocity limit."""

    def __init__(self, spec: GripperSpec) -> None:
        self.spec = spec
        self.times = np.array([0.0])  # [s] absolute, strictly increasing
        self.positions = np.array([spec.open_position])  # [m or rad]

    def reset(self, now: float, position: float) -> None:
        """Hold `position` from `now`."""
        lo, hi = sorted((self.spec.closed_position, self.spec.open_position))
        self.times, self.positions = np.array([now]), np.array([float(np.clip(position, lo, hi))])

    def add(self, now: float, times: np.ndarray, targets: np.ndarray) -> None:
        """Replace the path after `now` by `targets` (K,) reached no earlier than `times` (K,) [s]."""
        times, targets = np.asarray(times, dtype=float), np.asarray(targets, dtype=float)
        g_now = float(self.sample(np.array([now]))[0][0])
        ts, gs = [now], [g_now]
        for t, target in zip(times, targets):
            if t <= ts[-1]:
                continue
            step = self.spec.velocity * (t - ts[-1])
            # A target within reach is taken as is (no rounding past a range end), others approached.
            gs.append(
                float(target) if abs(target - gs[-1]) <= step else gs[-1] + float(np.copysign(step, target - gs[-1]))
            )
            ts.append(float(t))
        if len(ts) > 1:
            # A target too far for the step time is still reached, at the velocity limit, after the
            # last step: a binarized close would otherwise stop half-way and stay there.
            lo, hi = sorted((self.spec.closed_position, self.spec.open_position))
            last = float(np.clip(targets[-1], lo, hi))
            remaining = abs(last - gs[-1]) / self.spec.velocity  # [s]
            if remaining > _MIN_SEGMENT:
                ts.append(ts[-1] + remaining)
                gs.append(last)
            else:
                gs[-1] = last
        self.times, self.positions = np.array(ts), np.array(gs)

    @property
    def end_time(self) -> float:
        """[s] when the last target is reached; the gripper holds from then on."""
        return float(self.times[-1])

    def sample(self, times: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Positions (N,) and velocities (N,) at absolute `times`; holds outside the path."""
        times = np.atleast_1d(np.asarray(times, dtype=float))
        g = np.interp(times, self.times, self.positions)
        if self.times.size < 2:
            return g, np.zeros_like(g)
        slopes = np.diff(self.positions) / np.diff(self.times)
        seg = np.searchsorted(self.times, times, side="right") - 1
        inside = (seg >= 0) & (seg < slopes.size)
        gd = np.where(inside, slopes[np.clip(seg, 0, slopes.size - 1)], 0.0)
        return g, gd
