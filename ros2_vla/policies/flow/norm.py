"""Normalization statistics of a training set (`norm_stats.json`) and the maps they define.

Actions: dims whose mask is True map q01 -> -1 and q99 -> +1, clipped, exactly as OpenVLA
(`ros2_vla.actions.tokenization.normalize`), so a chunk carries `low = q01`, `high = q99`,
`normalized = mask` and the bridge un-normalizes it with no knowledge of the model. Dims whose mask
is False (by default the gripper, as in OpenVLA's `bridge_orig`: already an openness in [0, 1]) are
trained and emitted raw.
State: z-score (x - mean) / (std + 1e-3), clipped to +-5 so a joint the data never moved cannot
blow up (pi0's default for proprioception is z-score as well).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ros2_vla.actions.tokenization import normalize
from ros2_vla.errors import PolicyError

STATE_STD_EPS = 1e-3  # [state units]
STATE_CLIP = 5.0  # [std]
STAT_KEYS = ("mean", "std", "q01", "q99")


@dataclass(frozen=True)
class Stats:
    """Mean, std and 1st/99th percentiles of each of n features."""

    mean: np.ndarray  # (n,) float32
    std: np.ndarray  # (n,)
    q01: np.ndarray  # (n,) 1st percentile
    q99: np.ndarray  # (n,) 99th percentile

    @staticmethod
    def of(x: np.ndarray) -> Stats:
        """Stats over all but the last axis of `x` (..., n)."""
        x = np.asarray(x, dtype=np.float64).reshape(-1, np.shape(x)[-1])
        return Stats(*(v.astype(np.float32) for v in (x.mean(0), x.std(0), *np.quantile(x, [0.01, 0.99], axis=0))))

    def to_dict(self) -> dict[str, list[float]]:
        return {k: getattr(self, k).tolist() for k in STAT_KEYS}


@dataclass(frozen=True)
class NormStats:
    """Action and state statistics of a training set (`norm_stats.json`) and the maps they define."""

    action: Stats  # (D,) each
    state: Stats  # (S,) each
    action_mask: np.ndarray  # (D,) bool: True = mapped through q01/q99, False = raw

    def normalize_actions(self, actions: np.ndarray) -> np.ndarray:
        """Physical actions (..., D) -> training targets (..., D) float32."""
        return normalize(actions, self.action.q01, self.action.q99, self.action_mask).astype(np.float32)

    def normalize_state(self, state: np.ndarray) -> np.ndarray:
        """Proprioception (..., S) -> (..., S) float32 z-scores, clipped to +-STATE_CLIP."""
        z = (np.asarray(state, np.float64) - self.state.mean) / (self.state.std + STATE_STD_EPS)
        return np.clip(z, -STATE_CLIP, STATE_CLIP).astype(np.float32)

    def to_dict(self) -> dict[str, Any]:
        return {"action": {**self.action.to_dict(), "mask": self.action_mask.tolist()}, "state": self.state.to_dict()}

    @staticmethod
    def from_dict(d: dict[str, Any], action_dim: int, state_dim: int, source: str = "norm_stats") -> NormStats:
        """Parse and check lengths against the model; PolicyError names `source` and the bad entry."""
        try:
            action = Stats(*(_vector(d["action"][k], action_dim, f"action.{k}", source) for k in STAT_KEYS))
            state = Stats(*(_vector(d["state"][k], state_dim, f"state.{k}", source) for k in STAT_KEYS))
            mask = np.asarray(d["action"].get("mask", [True] * action_dim), dtype=bool)
        except (KeyError, TypeError, AttributeError) as e:
            raise PolicyError(
                f"{source}: missing or malformed entry {e}; expected action/state "
                f"with {', '.join(STAT_KEYS)} (and action.mask)"
            ) from e
        if mask.shape != (action_dim,):
            raise PolicyError(f"{source}: action.mask has {mask.size} entries, the model has action_dim {action_dim}")
        if np.any(action.q01[mask] > action.q99[mask]):
            raise PolicyError(f"{source}: action.q01 > action.q99 on a normalized dimension")
        return NormStats(action, state, mask)


def _vector(values: Any, n: int, name: str, source: str) -> np.ndarray:
    v = np.asarray(values, dtype=np.float32)
    if v.shape != (n,) or not np.all(np.isfinite(v)):
        raise PolicyError(f"{source}: {name} must be {n} finite numbers, got shape {v.shape}")
    return v


def default_action_mask(dimension_names: tuple[str, ...]) -> np.ndarray:
    """OpenVLA's convention: every dim normalized except grippers (names containing "gripper")."""
    return np.array(["gripper" not in name for name in dimension_names], dtype=bool)


def compute_norm_stats(actions: np.ndarray, state: np.ndarray, action_mask: np.ndarray) -> NormStats:
    """From physical training data: actions (..., D), state (..., S), mask (D,) bool."""
    return NormStats(Stats.of(actions), Stats.of(state), np.asarray(action_mask, dtype=bool))


def identity_norm_stats(action_dim: int, state_dim: int, action_mask: np.ndarray | None = None) -> NormStats:
    """Stats that leave data as is (q01 = -1, q99 = 1, mean 0, std 1): for untrained models and tests."""

    def unit(n: int) -> Stats:
        return Stats(np.zeros(n, np.float32), np.ones(n, np.float32), -np.ones(n, np.float32), np.ones(n, np.float32))

    mask = np.ones(action_dim, bool) if action_mask is None else np.asarray(action_mask, bool)
    return NormStats(unit(action_dim), unit(state_dim), mask)


def read_norm_stats(path: Path, action_dim: int, state_dim: int) -> NormStats:
    try:
        raw = json.loads(Path(path).read_text())
    except FileNotFoundError as e:
        raise PolicyError(f"{path} is missing: a flow checkpoint needs norm_stats.json beside model.safetensors") from e
    except (OSError, json.JSONDecodeError) as e:
        raise PolicyError(f"{path} is not readable JSON: {e}") from e
    if not isinstance(raw, dict):
        raise PolicyError(f"{path}: expected a JSON object with 'action' and 'state'")
    return NormStats.from_dict(raw, action_dim, state_dim, source=str(path))
