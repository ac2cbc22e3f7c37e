"""Small statistics for success rates and latencies: no SciPy needed."""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from ros2_vla.errors import ConfigError

Z95 = 1.959963984540054  # standard normal quantile at 0.975: two-sided 95 %


def wilson_interval(successes: int, trials: int, z: float = Z95) -> tuple[float, float]:
    """Wilson score interval (Wilson 1927; Newcombe 1998 method 3, no continuity correction) for a
    binomial proportion: (low, high) in [0, 1]. Unlike p +- z*sqrt(p(1-p)/n) it stays inside [0, 1]
    and keeps its width at 0/n and n/n, the usual case for small evaluations. trials 0 gives (0, 1)."""
    if not (0 <= successes <= trials):
        raise ConfigError(f"wilson_interval: need 0 <= successes <= trials, got {successes} of {trials}")
    if trials == 0:
        return 0.0, 1.0
    p, n, z2 = successes / trials, trials, z * z
    centre = (p + z2 / (2 * n)) / (1 + z2 / n)
    half = z / (1 + z2 / n) * math.sqrt(p * (1 - p) / n + z2 / (4 * n * n))
    # At 0/n and n/n one bound is exactly 0 or 1; rounding must not leave 1e-17 there.
    low = 0.0 if successes == 0 else max(0.0, centre - half)
    high = 1.0 if successes == trials else min(1.0, centre + half)
    return low, high


def percentiles(values: Sequence[float], qs: Sequence[float] = (50, 95)) -> dict[str, float]:
    """{"p50": ..., "p95": ...} of `values` (linear interpolation); NaN for each when there are none."""
    if len(values) == 0:
        return {f"p{q:g}": math.nan for q in qs}
    out = np.percentile(np.asarray(values, dtype=float), list(qs))
    return {f"p{q:g}": float(v) for q, v in zip(qs, out)}
