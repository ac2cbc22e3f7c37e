"""What one training run is: `TrainConfig`, saved as OUT/train_config.json so `--resume` continues it.

Fields that shape the result (model source, optimizer, batch, seed, augmentation, validation split)
are fixed for a run's life; resuming with other values is refused rather than silently changing the
run. `RUNTIME_FIELDS` (how long and where it runs) may change on resume; raising `steps` extends the
cosine schedule from there on.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ros2_vla.config_args import setting
from ros2_vla.data.frames import FrameDataset
from ros2_vla.errors import PolicyError

RUN_FILE = "train_config.json"
RUNTIME_FIELDS = ("steps", "device", "threads", "progress", "save_every", "log_every", "keep_last")
LR_NEW, LR_FINETUNE = 3e-4, 5e-5  # peak learning rates: training from scratch / fine-tuning a checkpoint


@dataclass(frozen=True)
class TrainConfig:
    """One flow training run's settings: the model, optimization, data and bookkeeping."""

    # -- the model
    preset: str = setting(
        "compact", "flow preset fitted to the dataset's robot, ignored with --init: tiny | compact | small | pi0"
    )
    init: str = setting(
        "",
        "fine-tune this checkpoint folder instead of a new model (same shapes); with --policy openvla: the base model",
    )
    overrides: dict[str, Any] = field(default_factory=dict)  # FlowConfig fields over the preset (--override)
    image_size: tuple[int, int] | None = setting(
        None, "model image size [px] (default: the preset's); frames are resized to it on load", metavar=("H", "W")
    )
    # -- optimization
    steps: int = setting(2000, "optimizer steps in all")
    batch_size: int = setting(32, "frames per step")
    lr: float | None = setting(None, f"peak learning rate (default {LR_NEW:g}; {LR_FINETUNE:g} with --init)")
    warmup_steps: int | None = setting(None, "linear warmup, then cosine (default steps/10, <= 500)")
    weight_decay: float = setting(1e-4, "AdamW weight decay, on weight matrices only")
    grad_clip: float = setting(1.0, "max global gradient norm")
    goal_weight: float = setting(
        1.0, "weight of the goal loss for models with a goal head (training/goals.py), 0 = off"
    )
    seed: int = setting(0, "seed of model init, batch order, augmentation, flow noise and time")
    # -- data
    augment_shift: int | None = setting(
        None, "max random shift [px] of fixed cameras' images (default 4 % of the size; 0 = off)"
    )
    rephrase: float = setting(
        0.0,
        "chance [0, 1] that a frame's instruction is re-worded with another training "
        "phrasing of its task (sim wordings only)",
    )
    val_episodes: int = setting(0, "hold out K episodes (chosen by the seed) and log their loss; 0 = none")
    # -- bookkeeping (may change on resume)
    save_every: int = setting(500, "steps between checkpoints, validation and plot")
    log_every: int = setting(10, "steps between train_log.jsonl records")
    keep_last: int = setting(3, "checkpoints kept (0 = all)")
    device: str = setting("auto", "cpu, cuda[:N] or auto (CUDA when present)")
    threads: int = setting(0, "torch CPU threads; 0 = every core this process may use")
    progress: bool = setting(True, "a tqdm progress bar (--no-progress: none; the logs are written either way)")

    def __post_init__(self) -> None:
        if self.image_size is not None:
            object.__setattr__(self, "image_size", tuple(self.image_size))
        for name in ("steps", "batch_size", "save_every", "log_every"):
            if getattr(self, name) <= 0:
                raise PolicyError(f"training: {name} must be positive, got {getattr(self, name)}")
        for name in ("val_episodes", "keep_last", "threads"):
            if getattr(self, name) < 0:
                raise PolicyError(f"training: {name} must be >= 0, got {getattr(self, name)}")
        if not 0.0 <= self.rephrase <= 1.0:
            raise PolicyError(f"training: rephrase is a chance in [0, 1], got {self.rephrase}")
        if self.goal_weight < 0:
            raise PolicyError(f"training: goal_weight must be >= 0, got {self.goal_weight}")
        if self.lr is not None and self.lr <= 0:
            raise PolicyError(f"training: lr must be > 0, got {self.lr}")

    def resolved(self, image_size: tuple[int, int]) -> TrainConfig:
        """Defaults that depend on the run filled in, so the saved file says what was used."""
        # Imported here: they need torch, and the CLI builds its options from this class without it.
        from ros2_vla.training.augment import default_shift_px
        from ros2_vla.training.optim import auto_warmup

        return dataclasses.replace(
            self,
            lr=self.lr if self.lr is not None else (LR_FINETUNE if self.init else LR_NEW),
            warmup_steps=self.warmup_steps if self.warmup_steps is not None else auto_warmup(self.steps),
            augment_shift=self.augment_shift if self.augment_shift is not None else default_shift_px(image_size),
        )


def dataset_fingerprint(dataset: FrameDataset) -> dict[str, Any]:
    return {"root": str(dataset.root), "robot": dataset.robot, "frames": len(dataset), "episodes": dataset.num_episodes}


def write_run(path: Path, config: Any, dataset: FrameDataset, **extra: Any) -> None:
    """A run's config (a dataclass), the dataset's fingerprint and `extra` fields as JSON at `path`."""
    doc = {"config": dataclasses.asdict(config), "dataset": dataset_fingerprint(dataset), **extra}
    path.write_text(json.dumps(doc, indent=2) + "\n")


def read_run(path: Path, config_type: type, dataset: FrameDataset, given: dict[str, Any]) -> tuple[Any, dict[str, Any]]:
    """The run saved at `path` (`write_run`) with the RUNTIME_FIELDS of `given` applied, and the saved
    document; PolicyError when the file is missing or unreadable, the dataset is another one, or `given`
    changes a field fixed for the run."""
    out = path.parent
    try:
        doc = json.loads(path.read_text())
        saved = config_type(**doc["config"])
    except FileNotFoundError as e:
        raise PolicyError(f"--resume: {path} is missing; {out} holds no training run to continue") from e
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise PolicyError(f"--resume: {path} is unreadable ({e}); start a new run in another folder") from e
    unknown = sorted(set(given) - set(saved.__dataclass_fields__))
    if unknown:
        raise PolicyError(f"training: unknown settings {unknown}")
    changed = sorted(k for k, v in given.items() if k not in RUNTIME_FIELDS and v != getattr(saved, k))
    if changed:
        raise PolicyError(
            f"--resume continues {out} with its saved settings; {changed} cannot change "
            f"(saved: {', '.join(f'{k}={getattr(saved, k)!r}' for k in changed)}); drop them, "
            "or start a new run in another folder"
        )
    fingerprint = dataset_fingerprint(dataset)
    if any(doc.get("dataset", {}).get(k) != fingerprint[k] for k in ("robot", "frames", "episodes")):
        raise PolicyError(
            f"--resume: {out} was trained on {doc.get('dataset')}, this dataset is {fingerprint}; "
            "resume with the same dataset or start a new run"
        )
    runtime = {k: v for k, v in given.items() if k in RUNTIME_FIELDS}
    return dataclasses.replace(saved, **runtime), doc


def save_run(out: Path, config: TrainConfig, dataset: FrameDataset, val_episodes: list[int]) -> None:
    write_run(out / RUN_FILE, config, dataset, val_episodes=val_episodes)


def resume_run(out: Path, dataset: FrameDataset, given: dict[str, Any]) -> tuple[TrainConfig, list[int]]:
    """The flow run saved in OUT (`read_run`) and its validation episodes."""
    config, doc = read_run(out / RUN_FILE, TrainConfig, dataset, given)
    return config, [int(e) for e in doc.get("val_episodes", [])]
