"""The gripper's commanded path: piecewise linear, never faster than its velocity limit.

The arm's timing is not stretched for the gripper (a binarized open/close would otherwise slow
the whole chunk); instead each gripper target is approached from the previous command at most
`spec.velocity` per second, starting from where the gripper is commanded now (no jump).
"""

from __future__ import annotations

import numpy as np

from ros2_vla.config import GripperSpec


class GripperPlan:
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
        g_now = float(self.sample(np.array([now]))[0][0])
        ts, gs = [now], [g_now]
        for t, target in zip(np.asarray(times, dtype=float), np.asarray(targets, dtype=float)):
            if t <= ts[-1]:
                continue
            step = self.spec.velocity * (t - ts[-1])
            gs.append(gs[-1] + float(np.clip(target - gs[-1], -step, step)))
            ts.append(float(t))
        self.times, self.positions = np.array(ts), np.array(gs)

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
