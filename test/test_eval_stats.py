"""Wilson score intervals and latency percentiles for the evaluation report."""

from __future__ import annotations

import math

import pytest

from ros2_vla.errors import ConfigError
from ros2_vla.evaluation.stats import percentiles, wilson_interval


@pytest.mark.parametrize(
    ("k", "n", "low", "high"),
    [
        # Newcombe (1998), Stat. Med. 17:857, Table I, method 3 (Wilson score, no continuity correction)
        (81, 263, 0.2553, 0.3662),
        (15, 148, 0.0624, 0.1605),
        (0, 20, 0.0, 0.1611),
        (1, 29, 0.0061, 0.1718),
        # evaluation-sized runs (same figures as scipy.stats.binomtest(k, n).proportion_ci(method="wilson"))
        (8, 10, 0.4902, 0.9433),
        (10, 10, 0.7225, 1.0),
        (45, 50, 0.7864, 0.9565),
    ],
)
def test_wilson_interval_matches_published_figures(k, n, low, high):
    lo, hi = wilson_interval(k, n)
    assert lo == pytest.approx(low, abs=1e-4) and hi == pytest.approx(high, abs=1e-4)


def test_wilson_interval_is_exact_at_the_ends_and_symmetric():
    assert wilson_interval(0, 7)[0] == 0.0 and wilson_interval(7, 7)[1] == 1.0
    lo, hi = wilson_interval(3, 10)
    lo2, hi2 = wilson_interval(7, 10)
    assert lo == pytest.approx(1 - hi2) and hi == pytest.approx(1 - lo2)
    assert wilson_interval(0, 0) == (0.0, 1.0)  # nothing measured: nothing known


def test_wilson_interval_refuses_impossible_counts():
    with pytest.raises(ConfigError, match="0 <= successes <= trials"):
        wilson_interval(11, 10)
    with pytest.raises(ConfigError):
        wilson_interval(-1, 10)


def test_percentiles():
    out = percentiles([1.0, 2.0, 3.0, 4.0, 100.0], (50, 95))
    assert out["p50"] == 3.0 and out["p95"] == pytest.approx(80.8)
    assert all(math.isnan(v) for v in percentiles([]).values())
