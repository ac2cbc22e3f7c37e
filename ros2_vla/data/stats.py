"""Normalization statistics per feature, in LeRobot's layout: min, max, mean, std, count and quantiles.

Numeric features get exact statistics over every frame (arrays of the feature's shape; count is
(1,)). Camera frames get per-channel statistics of pixel values scaled to [0, 1], shape (3, 1, 1)
as LeRobot stores them, from 256-bin histograms: exact for uint8 pixels, and two histograms
merge by adding, so dataset statistics are exact sums of the episodes'.
"""

from __future__ import annotations

import numpy as np

QUANTILES = (0.01, 0.10, 0.50, 0.90, 0.99)  # LeRobot's default set (q01 and q99 are what policies use)
STAT_KEYS = ("min", "max", "mean", "std", "count") + tuple(f"q{round(q * 100):02d}" for q in QUANTILES)


def feature_stats(x: np.ndarray) -> dict[str, np.ndarray]:
    """Frames (N,) or (N, D) -> each statistic as float64 (D,) ((1,) for scalars); count int64 (1,); min and
    max of an integer feature stay int64, as LeRobot's are."""
    x = np.asarray(x)
    a = x.astype(np.float64).reshape(x.shape[0], -1)
    if a.shape[0] == 0:
        raise ValueError("statistics of zero frames")
    extremes = x.reshape(x.shape[0], -1).astype(np.int64) if np.issubdtype(x.dtype, np.integer) else a
    out = {
        "min": extremes.min(axis=0),
        "max": extremes.max(axis=0),
        "mean": a.mean(axis=0),
        "std": a.std(axis=0),
        "count": np.array([a.shape[0]], dtype=np.int64),
    }
    for q, v in zip(QUANTILES, np.quantile(a, QUANTILES, axis=0)):
        out[f"q{round(q * 100):02d}"] = v
    return out


class PixelHistogram:
    """Per-channel counts of uint8 pixel values over sampled frames of one camera."""

    def __init__(self) -> None:
        self.counts = np.zeros((3, 256), dtype=np.int64)
        self.frames = 0

    def add(self, rgb: np.ndarray) -> None:
        """One (H, W, 3) uint8 frame."""
        for c in range(3):
            self.counts[c] += np.bincount(rgb[..., c].reshape(-1), minlength=256)
        self.frames += 1

    def merge(self, other: PixelHistogram) -> None:
        self.counts += other.counts
        self.frames += other.frames

    def stats(self) -> dict[str, np.ndarray]:
        """Statistics of pixel/255 per channel, each (3, 1, 1); count (1,) = frames sampled."""
        if self.frames == 0:
            raise ValueError("image statistics of zero frames")
        v = np.arange(256) / 255.0
        n = self.counts.sum(axis=1).astype(np.float64)
        mean = self.counts @ v / n
        std = np.sqrt(np.maximum(self.counts @ (v**2) / n - mean**2, 0.0))
        seen = self.counts > 0
        out = {"min": v[seen.argmax(axis=1)], "max": v[255 - seen[:, ::-1].argmax(axis=1)], "mean": mean, "std": std}
        cdf = np.cumsum(self.counts, axis=1)
        for q in QUANTILES:
            out[f"q{round(q * 100):02d}"] = v[np.array([np.searchsorted(cdf[c], q * n[c]) for c in range(3)])]
        out = {k: a.reshape(3, 1, 1) for k, a in out.items()}
        out["count"] = np.array([self.frames], dtype=np.int64)
        return {k: out[k] for k in STAT_KEYS}


def sample_positions(length: int, max_samples: int = 100) -> np.ndarray:
    """Frame positions to sample for image statistics: up to `max_samples`, spread evenly (LeRobot samples
    about 100 per episode)."""
    return np.unique(np.round(np.linspace(0, length - 1, min(length, max_samples))).astype(np.int64))


def stats_to_json(stats: dict[str, dict[str, np.ndarray]]) -> dict:
    return {f: {k: np.asarray(v).tolist() for k, v in s.items()} for f, s in stats.items()}


def stats_from_json(d: dict) -> dict[str, dict[str, np.ndarray]]:
    return {
        f: {k: np.asarray(v, dtype=np.int64 if k == "count" else np.float64) for k, v in s.items()}
        for f, s in d.items()
    }
