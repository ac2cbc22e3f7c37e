"""Train the flow backend on a `FrameDataset`: `train_flow` starts a run in OUT, `resume_flow` continues it.

OUT afterwards holds the final model (model.safetensors, config.json, norm_stats.json: what FlowPolicy,
vla_node and `ros2-vla launch --policy flow --model OUT` load), train_config.json, train_log.jsonl,
loss_curve.png and checkpoints/step_XXXXXX (see `checkpoints.py`).

One seeded CPU `torch.Generator` draws everything random after the model's initialization (which
frames form a batch, image shifts, flow noise and time) and is saved in every checkpoint, so a run
resumed from step k repeats the uninterrupted run's steps k+1.. exactly (on the same device and thread
count). Ctrl-C (SIGINT) finishes the current step, saves a checkpoint and returns.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ros2_vla.config import load_robot_config
from ros2_vla.cpu import cpu_cores
from ros2_vla.data.frames import FrameDataset
from ros2_vla.errors import PolicyError
from ros2_vla.policies.flow.checkpoint import WEIGHTS, load_checkpoint, resolve_device, save_checkpoint
from ros2_vla.policies.flow.loss import training_losses
from ros2_vla.policies.flow.model import FlowModel
from ros2_vla.training.batching import Augment, ChunkBatcher, norm_stats_from_dataset
from ros2_vla.training.checkpoints import (
    TrainingState,
    latest_checkpoint,
    list_checkpoints,
    load_training_state,
    save_training_checkpoint,
)
from ros2_vla.training.compat import check_dataset, check_frames
from ros2_vla.training.log import PLOT_FILE, TrainLog, plot_loss
from ros2_vla.training.loop import run_steps
from ros2_vla.training.model_setup import init_model, new_model
from ros2_vla.training.optim import make_optimizer
from ros2_vla.training.run_config import TrainConfig, resume_run, save_run
from ros2_vla.training.validation import split_episodes, validation_frames, validation_loss


@dataclass(frozen=True)
class TrainResult:
    """What a flow training call did: run folder, steps, last losses, time and rate, and whether it was interrupted."""

    out: Path  # the run folder (final model inside when not interrupted)
    step: int  # optimizer steps completed
    loss: float  # mean training loss of the last logged window
    val_loss: float | None  # last validation loss, None without --val-episodes
    wall_s: float  # [s] this call's training time
    steps_per_s: float  # this call's mean rate
    interrupted: bool  # stopped by SIGINT before `steps` (a checkpoint was saved)


def train_flow(dataset: FrameDataset, out: str | Path, config: TrainConfig = TrainConfig()) -> TrainResult:
    """Start a run in `out` (see `check_new_run`); returns when done or interrupted."""
    out = Path(out)
    check_new_run(out)
    check_frames(dataset)
    robot = load_robot_config(dataset.robot)
    if config.init:
        model = init_model(dataset, robot, config.init, config.overrides, config.image_size)
    else:
        model = new_model(dataset, robot, config.preset, config.overrides, config.image_size, config.seed)
    config = config.resolved(model.config.image_size)
    val_episodes = split_episodes(dataset.episode_index, config.val_episodes, config.seed)
    out.mkdir(parents=True, exist_ok=True)
    save_run(out, config, dataset, val_episodes)
    TrainLog(out).path.write_text("")
    generator = torch.Generator().manual_seed(config.seed)
    return _Run(dataset, out, config, model, robot, val_episodes, generator).train(None)


def check_new_run(out: str | Path) -> None:
    """PolicyError when `out` holds a checkpoint or a model (a run that died before its first checkpoint
    may be started over)."""
    out = Path(out)
    if list_checkpoints(out):
        raise PolicyError(f"{out} already holds a training run; pass --resume to continue it, or choose another folder")
    if (out / WEIGHTS).exists():
        raise PolicyError(
            f"{out} already holds a model ({WEIGHTS}); choose another folder (to fine-tune it: --init {out})"
        )


def resume_flow(dataset: FrameDataset, out: str | Path, **given: Any) -> TrainResult:
    """Continue the run in `out` from its newest checkpoint. `given` TrainConfig fields may change only
    `run_config.RUNTIME_FIELDS` (e.g. steps=, threads=, device=); others must equal the saved ones."""
    out = Path(out)
    config, val_episodes = resume_run(out, dataset, given)
    folder = latest_checkpoint(out)
    if folder is None:
        raise PolicyError(
            f"--resume: {out} has no complete checkpoint yet (checkpoints/step_*); start it again without --resume"
        )
    model, _, _ = load_checkpoint(folder, "cpu")
    check_dataset(dataset, model.config, f"checkpoint {folder}")
    state = load_training_state(folder)
    TrainLog(out).truncate(state.step)
    generator = torch.Generator()
    generator.set_state(state.generator)
    robot = load_robot_config(dataset.robot)
    return _Run(dataset, out, config, model, robot, val_episodes, generator).train(state)


def train_step(
    model: FlowModel,
    optimizer: torch.optim.Optimizer,
    scheduler: Any,
    batcher: ChunkBatcher,
    frames: torch.Tensor,
    batch_size: int,
    grad_clip: float,
    generator: torch.Generator,
    goal_weight: float = 0.0,
) -> tuple[dict[str, float], float]:
    """One optimizer step on `batch_size` frames drawn from `frames` (with replacement) by `generator`;
    returns ({"loss": flow loss [, "goal_loss"]}, gradient norm before clipping). The goal loss (weighted by
    `goal_weight`) counts only for models with a goal head. PolicyError when the loss is not finite."""
    pick = torch.randint(len(frames), (batch_size,), generator=generator)
    batch = batcher.batch(frames[pick], generator, train=True)
    losses = training_losses(model, batch, generator, goal_weight if model.goal is not None else 0.0)
    loss = losses["total"]
    if not torch.isfinite(loss):
        raise PolicyError(f"training loss became {loss.item()}; lower --lr or check the dataset for outliers")
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    grad_norm = torch.nn.utils.clip_grad_norm_(model.parameters(), grad_clip)
    optimizer.step()
    scheduler.step()
    logged = {"loss": losses["flow"].item()}
    if "goal" in losses:
        logged["goal_loss"] = losses["goal"].item()
    return logged, float(grad_norm)


class _Run:
    """One call's training loop over a prepared model, data and generator."""

    def __init__(
        self,
        dataset: FrameDataset,
        out: Path,
        config: TrainConfig,
        model: FlowModel,
        robot: Any,
        val_episodes: list[int],
        generator: torch.Generator,
    ) -> None:
        device_name = config.device
        if device_name == "auto":
            device_name = "cuda" if torch.cuda.is_available() else "cpu"
        self.device = resolve_device(device_name)
        if self.device.type == "cpu":
            torch.set_num_threads(config.threads or cpu_cores())
        self.out, self.config, self.generator = out, config, generator
        self.model = model.to(self.device).train()
        self.norm_stats = norm_stats_from_dataset(dataset, model.config.dimension_names)
        fixed = tuple(c.name for c in robot.cameras if c.mount == "world")  # a wrist view moves with the gripper
        augment = Augment(config.augment_shift, fixed, config.rephrase)
        self.batcher = ChunkBatcher(dataset, model.config, self.norm_stats, augment)
        held_out = np.isin(dataset.episode_index, val_episodes)
        self.train_frames = torch.from_numpy(np.flatnonzero(~held_out))
        self.val_frames = validation_frames(np.flatnonzero(held_out))
        self.optimizer, self.scheduler = make_optimizer(
            model, config.lr, config.weight_decay, config.warmup_steps, config.steps
        )
        self.log = TrainLog(out)
        self.val_loss: float | None = None
        self._grad_norm = float("nan")  # of the last step, logged as it is

    def _restore(self, state: TrainingState) -> int:
        self.optimizer.load_state_dict(state.optimizer)
        self.scheduler.load_state_dict(state.scheduler)
        self.scheduler.lr_lambdas[0].total = self.config.steps  # `steps` may have been raised on resume
        return state.step

    def train(self, state: TrainingState | None) -> TrainResult:
        first = self._restore(state) if state is not None else 0
        c = self.config
        done = run_steps(
            first,
            c.steps,
            self._step,
            self._extras,
            self._save,
            self.log,
            c.log_every,
            c.save_every,
            c.progress,
            lambda m: {"loss": f"{m['loss']:.4f}", "lr": f"{self.scheduler.get_last_lr()[0]:.2e}"},
        )
        if done.step > first:  # a resume with nothing left to do keeps the checkpoint it started from
            self._save(done.step)
        if not done.interrupted:
            save_checkpoint(self.out, self.model, self.model.config, self.norm_stats)
        return TrainResult(self.out, done.step, done.loss, self.val_loss, done.wall, done.steps_per_s, done.interrupted)

    def _step(self) -> dict[str, float]:
        losses, self._grad_norm = train_step(
            self.model,
            self.optimizer,
            self.scheduler,
            self.batcher,
            self.train_frames,
            self.config.batch_size,
            self.config.grad_clip,
            self.generator,
            self.config.goal_weight,
        )
        return losses

    def _extras(self) -> dict[str, float]:
        return {"lr": self.scheduler.get_last_lr()[0], "grad_norm": self._grad_norm}

    def _save(self, step: int) -> None:
        if self.val_frames.size:
            self.val_loss = validation_loss(
                self.model, self.batcher, self.val_frames, self.config.batch_size, self.config.seed
            )
            self.log.append({"step": step, "val_loss": self.val_loss})
        state = TrainingState(
            step, self.optimizer.state_dict(), self.scheduler.state_dict(), self.generator.get_state()
        )
        save_training_checkpoint(self.out, self.model, self.norm_stats, state, self.config.keep_last)
        plot_loss(self.log.read(), self.out / PLOT_FILE, title=f"{self.out.name}: {self.model.config.preset}")
