"""Temporal ensembling of overlapping action chunks, as in ACT (Zhao et al. 2023, "Learning Fine-Grained
Bimanual Manipulation with Low-Cost Hardware", section 3.3).

Every chunk that predicted a given moment votes for it; the command is their weighted mean with
w_i = exp(-m * i), i the age index among the voters, oldest first (i = 0). So the OLDEST prediction gets
the largest weight. That is ACT's choice: a new chunk can only pull the command gradually, so a policy
that switches between modes from one observation to the next does not make the arm jump; m sets how
fast new observations take over (m -> 0: all voters equal, the fastest; ACT uses m = 0.01, nearly equal).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ros2_vla.errors import TrajectoryError

ACT_ENSEMBLE_M = 0.01  # ACT's default


def ensemble_weights(count: int, m: float) -> np.ndarray:
    """Normalized weights (count,) for `count` voters ordered oldest first: exp(-m * i) / sum."""
    if count < 1:
        raise TrajectoryError(f"ensemble needs at least one chunk covering the time; got {count}")
    if not (m >= 0.0 and np.isfinite(m)):
        raise TrajectoryError(f"ensemble m must be finite and >= 0 (ACT uses {ACT_ENSEMBLE_M}); got {m}")
    w = np.exp(-m * np.arange(count, dtype=np.float64))
    return w / w.sum()


@dataclass(frozen=True)
class TimedChunk:
    """One chunk's joint waypoints at absolute times: times [s] (H,) increasing, positions [rad] (H, n)."""

    stamp: float  # [s] capture time of the observation it was predicted from: orders chunks by age
    times: np.ndarray
    positions: np.ndarray

    def covers(self, t: float) -> bool:
        return bool(self.times[0] <= t <= self.times[-1])

    def at(self, t: float) -> np.ndarray:
        """Position [rad] (n,) at time t [s] inside the chunk, linear between its waypoints."""
        return np.array([np.interp(t, self.times, self.positions[:, j]) for j in range(self.positions.shape[1])])


def ensemble_at(chunks: list[TimedChunk], t: float, m: float) -> np.ndarray:
    """Weighted mean [rad] (n,) at time t [s] of the chunks that cover t (ACT weights, oldest first)."""
    voters = sorted((c for c in chunks if c.covers(t)), key=lambda c: c.stamp)
    w = ensemble_weights(len(voters), m)
    values = np.array([c.at(t) for c in voters])
    # A weighted mean lies between its inputs; rounding may push it one ulp out, e.g. past a joint limit
    # that every chunk respects: clip it back.
    return np.clip(w @ values, values.min(axis=0), values.max(axis=0))
