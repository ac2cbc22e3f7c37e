"""The action statistics an OpenVLA-format checkpoint carries, and the choice among them by `unnorm_key`.

OpenVLA keeps `norm_stats` in the model's config.json, one entry per training dataset:
`{unnorm_key: {"action": {"q01": [D], "q99": [D], "mask": [D], ...}, "proprio": {...}}}`. Fine-tuning
writes the same layout to `dataset_statistics.json` beside the weights (OpenVLA's deploy script reads it
for local runs). Both are read here; an entry of dataset_statistics.json replaces the config's entry of
the same key, since it describes the data the weights were last trained on.

The chosen entry gives the chunk's `low` (q01), `high` (q99) and `normalized` (mask; all True when the
checkpoint has none, as in OpenVLA's `predict_action`), so the bridge un-normalizes with no model at hand.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ros2_vla.errors import PolicyError
from ros2_vla.policies.openvla.checkpoint import read_json_object

DATASET_STATISTICS_FILE = "dataset_statistics.json"


@dataclass(frozen=True, eq=False)
class ActionStats:
    """One dataset's action statistics; arrays are read-only copies."""

    key: str  # the unnorm_key they were found under
    low: np.ndarray  # float32 (D,) q01: physical value at normalized -1
    high: np.ndarray  # float32 (D,) q99: physical value at normalized +1
    mask: np.ndarray  # bool (D,) True: the dimension was normalized through low/high in training

    @property
    def dim(self) -> int:
        """D, the number of action dimensions (the number of tokens the model generates per step)."""
        return int(self.low.shape[0])


def read_norm_stats(checkpoint_dir: str | Path) -> dict[str, dict]:
    """All statistics of a checkpoint dir: config.json's `norm_stats`, updated by dataset_statistics.json.

    Returns `{unnorm_key: {"action": {...}, ...}}`, possibly empty. Reads JSON only: no model code runs.
    """
    checkpoint_dir = Path(checkpoint_dir)
    stats: dict[str, dict] = {}
    config_path = checkpoint_dir / "config.json"
    if config_path.is_file():
        from_config = read_json_object(config_path).get("norm_stats") or {}
        if not isinstance(from_config, dict):
            raise PolicyError(f"{config_path}: norm_stats must be an object keyed by dataset name")
        stats.update(from_config)
    dataset_path = checkpoint_dir / DATASET_STATISTICS_FILE
    if dataset_path.is_file():
        stats.update(read_json_object(dataset_path))
    return stats


def resolve_unnorm_key(norm_stats: dict[str, dict], unnorm_key: str | None, where: str = "the checkpoint") -> str:
    """The key to use: `unnorm_key` if known; the only key when there is one and none was given.

    Raises PolicyError listing the known keys (with a did-you-mean) when the key is missing or unknown.
    """
    known = sorted(norm_stats)
    if not known:
        raise PolicyError(
            f"{where} has no action statistics: expected `norm_stats` in config.json or a "
            f"{DATASET_STATISTICS_FILE} beside it (OpenVLA layout {{key: {{'action': {{'q01', 'q99', 'mask'}}}}}})"
        )
    if unnorm_key is None or unnorm_key == "":
        if len(known) == 1:
            return known[0]
        raise PolicyError(
            f"{where} holds statistics of {len(known)} datasets: set unnorm_key to one of {', '.join(known)}"
        )
    if unnorm_key not in norm_stats:
        close = difflib.get_close_matches(unnorm_key, known, n=1)
        hint = f" Did you mean {close[0]!r}?" if close else ""
        raise PolicyError(f"unnorm_key {unnorm_key!r} is not in {where}; known keys: {', '.join(known)}.{hint}")
    return unnorm_key


def _vector(action: dict, name: str, key: str) -> np.ndarray:
    try:
        v = np.asarray(action[name], dtype=np.float64)
    except KeyError:
        raise PolicyError(f"norm_stats[{key!r}]['action'] has no {name!r}; OpenVLA stores q01 and q99") from None
    except (TypeError, ValueError) as exc:
        raise PolicyError(f"norm_stats[{key!r}]['action'][{name!r}] is not a list of numbers: {exc}") from exc
    if v.ndim != 1 or v.size == 0 or not np.all(np.isfinite(v)):
        raise PolicyError(f"norm_stats[{key!r}]['action'][{name!r}] must be a non-empty list of finite numbers")
    return v


def action_stats(norm_stats: dict[str, dict], key: str) -> ActionStats:
    """The checked q01/q99/mask of `norm_stats[key]["action"]`."""
    entry = norm_stats[key]
    action = entry.get("action") if isinstance(entry, dict) else None
    if not isinstance(action, dict):
        raise PolicyError(f"norm_stats[{key!r}] has no 'action' statistics")
    low, high = _vector(action, "q01", key), _vector(action, "q99", key)
    if low.shape != high.shape:
        raise PolicyError(f"norm_stats[{key!r}]['action']: q01 has {low.size} dims but q99 has {high.size}")
    mask = np.asarray(action.get("mask", np.ones(low.shape, bool)))
    if mask.shape != low.shape or mask.dtype != np.bool_:
        raise PolicyError(f"norm_stats[{key!r}]['action']['mask'] must be {low.size} booleans, got {mask.tolist()}")
    if np.any(high[mask] < low[mask]):
        raise PolicyError(f"norm_stats[{key!r}]['action']: q99 is below q01 in a normalized dimension")
    arrays = [low.astype(np.float32), high.astype(np.float32), mask.copy()]
    for a in arrays:
        a.setflags(write=False)
    return ActionStats(key, *arrays)


def load_action_stats(checkpoint_dir: str | Path, unnorm_key: str | None) -> ActionStats:
    """Read, choose and check a checkpoint's action statistics in one call."""
    stats = read_norm_stats(checkpoint_dir)
    key = resolve_unnorm_key(stats, unnorm_key, where=f"checkpoint {checkpoint_dir}")
    return action_stats(stats, key)
