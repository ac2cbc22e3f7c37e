"""Periodic training checkpoints: OUT/checkpoints/step_XXXXXX, each a FlowPolicy-loadable model folder
(model.safetensors, config.json, norm_stats.json) plus `training_state.pt` (step, optimizer, scheduler,
random generator), which is what `--resume` continues from.

A checkpoint is written under a temporary name and renamed when complete, so a crash mid-write never
leaves a folder that looks like a checkpoint; only the newest `keep_last` are kept.
"""

from __future__ import annotations

import re
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from ros2_vla.errors import PolicyError
from ros2_vla.policies.flow.checkpoint import save_checkpoint
from ros2_vla.policies.flow.model import FlowModel
from ros2_vla.policies.flow.norm import NormStats

CHECKPOINTS = "checkpoints"
TRAINING_STATE = "training_state.pt"
STATE_FORMAT = 1
_STEP_DIR = re.compile(r"^step_(\d+)$")


@dataclass
class TrainingState:
    """What resuming needs beyond the weights."""

    step: int  # optimizer steps completed
    optimizer: dict[str, Any]
    scheduler: dict[str, Any]
    generator: torch.Tensor  # torch.Generator.get_state(): batches, augmentation, flow noise and time


def checkpoint_dir(out: str | Path, step: int) -> Path:
    return Path(out) / CHECKPOINTS / f"step_{step:06d}"


def list_checkpoints(out: str | Path) -> list[tuple[int, Path]]:
    """Complete checkpoints under OUT, oldest first, as (step, folder)."""
    root = Path(out) / CHECKPOINTS
    if not root.is_dir():
        return []
    found = [
        (int(m.group(1)), p)
        for p in root.iterdir()
        if (m := _STEP_DIR.match(p.name)) and (p / TRAINING_STATE).is_file()
    ]
    return sorted(found)


def latest_checkpoint(out: str | Path) -> Path | None:
    found = list_checkpoints(out)
    return found[-1][1] if found else None


def save_training_checkpoint(
    out: str | Path, model: FlowModel, norm_stats: NormStats, state: TrainingState, keep_last: int = 0
) -> Path:
    """Write checkpoint `state.step` atomically; then delete all but the newest `keep_last` (0: keep all)."""
    final = checkpoint_dir(out, state.step)
    tmp = final.with_name(final.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    save_checkpoint(tmp, model, model.config, norm_stats)
    torch.save(
        {
            "format": STATE_FORMAT,
            "step": state.step,
            "optimizer": state.optimizer,
            "scheduler": state.scheduler,
            "generator": state.generator,
        },
        tmp / TRAINING_STATE,
    )
    shutil.rmtree(final, ignore_errors=True)
    tmp.rename(final)
    if keep_last > 0:
        for _, old in list_checkpoints(out)[:-keep_last]:
            shutil.rmtree(old, ignore_errors=True)
    return final


def load_training_state(folder: str | Path) -> TrainingState:
    """TrainingState of a checkpoint folder; PolicyError naming the file when unreadable."""
    path = Path(folder) / TRAINING_STATE
    try:
        raw = torch.load(path, map_location="cpu", weights_only=True)
    except FileNotFoundError as e:
        raise PolicyError(f"{path} is missing: {folder} is not a complete training checkpoint") from e
    except Exception as e:  # torch.load raises many kinds (pickle, zip, runtime) for a damaged file
        raise PolicyError(
            f"{path} is not a readable training state ({type(e).__name__}: {e}); "
            "delete that checkpoint folder to resume from the one before"
        ) from e
    if not isinstance(raw, dict) or raw.get("format") != STATE_FORMAT:
        raise PolicyError(
            f"{path}: training state format {raw.get('format') if isinstance(raw, dict) else '?'}, "
            f"this code reads {STATE_FORMAT}"
        )
    return TrainingState(int(raw["step"]), raw["optimizer"], raw["scheduler"], raw["generator"])
