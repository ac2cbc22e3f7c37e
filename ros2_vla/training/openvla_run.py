"""What one OpenVLA LoRA run is: `LoraTrainConfig`, saved as OUT/openvla_lora_run.json for resuming.

Defaults follow OpenVLA's `vla-scripts/finetune.py`: LoRA rank 32 on every linear layer, alpha
min(rank, 16), dropout 0, Gaussian init, AdamW at a constant 5e-4, bf16 on a GPU (4-bit NF4 "QLoRA"
optional: less memory, lower quality, as OpenVLA warns). Fields that shape the result are fixed for a
run's life; `RUNTIME_FIELDS` (how long and where it runs) may change on resume.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ros2_vla.data.frames import FrameDataset
from ros2_vla.errors import PolicyError
from ros2_vla.training.run_config import read_run, write_run

RUN_FILE = "openvla_lora_run.json"
TRAIN_QUANTIZATIONS = ("4bit", "bf16", "fp32")


@dataclass(frozen=True)
class LoraTrainConfig:
    """One OpenVLA LoRA run's settings: base model, LoRA, optimization, data and bookkeeping."""

    model_dir: str  # base OpenVLA-format checkpoint dir (local; nothing is downloaded)
    # -- LoRA (peft), OpenVLA's recipe
    rank: int = 32
    alpha: float | None = None  # None = min(rank, 16), as OpenVLA
    dropout: float = 0.0
    # -- optimization
    steps: int = 2000  # optimizer steps in all
    batch_size: int = 8  # frames per step (OpenVLA: 12 fit a 48 GB GPU at bf16, 24 an 80 GB one)
    lr: float = 5e-4  # AdamW, constant
    seed: int = 0  # LoRA init, batch order, dropout
    quantization: str | None = None  # 4bit (QLoRA) | bf16 | fp32; None = bf16 on CUDA, fp32 on CPU
    # -- data
    camera: str | None = None  # the camera the model sees; None = the robot config's first, as vla_node
    unnorm_key: str | None = None  # name of the saved statistics; None = the dataset folder's name
    # -- bookkeeping (may change on resume)
    save_every: int = 500  # [steps] between checkpoints (adapter + optimizer) and the plot
    log_every: int = 10  # [steps] between train_log.jsonl records
    keep_last: int = 3  # checkpoints kept (0 = all)
    device: str = "auto"  # cpu | cuda[:N] | auto
    threads: int = 0  # torch CPU threads; 0 = every core this process may use
    progress: bool = True  # tqdm progress bar

    def __post_init__(self) -> None:
        for name in ("rank", "steps", "batch_size", "save_every", "log_every"):
            if getattr(self, name) <= 0:
                raise PolicyError(f"openvla lora: {name} must be positive, got {getattr(self, name)}")
        for name in ("keep_last", "threads"):
            if getattr(self, name) < 0:
                raise PolicyError(f"openvla lora: {name} must be >= 0, got {getattr(self, name)}")
        if not self.lr > 0:
            raise PolicyError(f"openvla lora: lr must be > 0, got {self.lr}")
        if not 0.0 <= self.dropout < 1.0:
            raise PolicyError(f"openvla lora: dropout must be in [0, 1), got {self.dropout}")
        if self.alpha is not None and not self.alpha > 0:
            raise PolicyError(f"openvla lora: alpha must be > 0, got {self.alpha}")
        if self.quantization not in (None, *TRAIN_QUANTIZATIONS):
            raise PolicyError(
                f"openvla lora: quantization {self.quantization!r} is not one of {TRAIN_QUANTIZATIONS} "
                "(8-bit training is not supported)"
            )

    @property
    def lora_alpha(self) -> float:
        return self.alpha if self.alpha is not None else float(min(self.rank, 16))

    def resolved(self, dataset: FrameDataset, device: str) -> LoraTrainConfig:
        """Defaults that depend on the data and device filled in, so the saved file says what was used."""
        return dataclasses.replace(
            self,
            alpha=self.lora_alpha,
            quantization=self.quantization or ("bf16" if device.startswith("cuda") else "fp32"),
            camera=self.camera or default_camera(dataset),
            unnorm_key=self.unnorm_key or Path(str(dataset.root)).name or dataset.robot,
        )


def default_camera(dataset: FrameDataset) -> str | None:
    """The camera vla_node shows an openvla model: the robot config's first (if the dataset has it),
    else the dataset's first."""
    from ros2_vla.config import available_robots, load_robot_config

    if dataset.robot in available_robots():
        first = load_robot_config(dataset.robot).cameras[:1]
        if first and first[0].name in dataset.cameras:
            return first[0].name
    return dataset.cameras[0] if dataset.cameras else None


def save_run(out: Path, config: LoraTrainConfig, dataset: FrameDataset) -> None:
    write_run(out / RUN_FILE, config, dataset)


def resume_run(out: Path, dataset: FrameDataset, given: dict[str, Any]) -> LoraTrainConfig:
    """The LoRA run saved in OUT with the RUNTIME_FIELDS of `given` applied (`run_config.read_run`)."""
    return read_run(out / RUN_FILE, LoraTrainConfig, dataset, given)[0]
