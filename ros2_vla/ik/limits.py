"""Joint limits applied to every IK iteration."""

from __future__ import annotations

import numpy as np


def clip_to_limits(q: np.ndarray, lower: np.ndarray, upper: np.ndarray) -> np.ndarray:
    """q [rad] (n,) clipped into [lower, upper] joint by joint."""
    return np.minimum(np.maximum(q, lower), upper)


def limit_step(dq: np.ndarray, max_step: float) -> np.ndarray:
    """dq [rad] (n,) scaled down, direction kept, so that no joint moves more than max_step [rad]."""
    largest = float(np.max(np.abs(dq))) if dq.size else 0.0
    return dq * (max_step / largest) if largest > max_step else dq
