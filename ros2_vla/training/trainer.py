"""Train the flow backend on a `FrameDataset`: `train_flow` starts a run in OUT, `resume_flow` continues it.

OUT afterwards holds the final model (model.safetensors, config.json, norm_stats.json: what FlowPolicy,
vla_node and `ros2-vla launch --policy flow --model OUT` load), train_config.json, train_log.jsonl,
loss_curve.png and checkpoints/step_XXXXXX (see `checkpoints.py`).

One seeded CPU `torch.Generator` draws everything random after the model's initialization (which
frames form a batch, image shifts, flow noise and time) and is saved in every checkpoint, so a run
resumed from step k repeats the uninterrupted run's steps k+1.. exactly (on the same device and thread
count). Ctrl-C (SIGINT) finishes the current step, saves a checkpoint and returns.

Under `torchrun` (several processes) the run is data-parallel: `distributed.py` says how batches are
shared out and who writes what.
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
from ros2_vla.training import distributed
from ros2_vla.training.batching import Augment, ChunkBatcher, norm_stats_from_dataset
from ros2_vla.training.checkpoints import (
    TrainingState,
    latest_checkpoint,
    list_checkpoints,
    load_training_state,
    save_training_checkpoint,
)
from ros2_vla.training.compat import check_dataset, check_frames
from ros2_vla.training.distributed import Ranks
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
    ranks = distributed.start(config.device)
    check_new_run(out)
    check_frames(dataset)
    distributed.check_global_batch(config.batch_size, ranks)
    distributed.barrier(ranks)  # every process has checked OUT before rank 0 writes into it
    robot = load_robot_config(dataset.robot)
    if config.init:
        model = init_model(dataset, robot, config.init, config.overrides, config.image_size)
    else:
        model = new_model(dataset, robot, config.preset, config.overrides, config.image_size, config.seed)
    config = config.resolved(model.config.image_size)
    val_episodes = split_episodes(dataset.episode_index, config.val_episodes, config.seed)
    if ranks.is_main:
        out.mkdir(parents=True, exist_ok=True)
        save_run(out, config, dataset, val_episodes)
        TrainLog(out).path.write_text("")
    generator = torch.Generator().manual_seed(config.seed)
    return _Run(dataset, out, config, model, robot, val_episodes, generator, ranks).train(None)


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
    ranks = distributed.start(config.device)
    distributed.check_global_batch(config.batch_size, ranks)
    folder = latest_checkpoint(out)
    if folder is None:
        raise PolicyError(
            f"--resume: {out} has no complete checkpoint yet (checkpoints/step_*); start it again without --resume"
        )
    model, _, _ = load_checkpoint(folder, "cpu")
    check_dataset(dataset, model.config, f"checkpoint {folder}")
    state = load_training_state(folder)
    distributed.barrier(ranks)  # every process has read the checkpoint before rank 0 touches the log
    if ranks.is_main:
        TrainLog(out).truncate(state.step)
    generator = torch.Generator()
    generator.set_state(state.generator)
    robot = load_robot_config(dataset.robot)
    return _Run(dataset, out, config, model, robot, val_episodes, generator, ranks).train(state)


class TrainingObjective(torch.nn.Module):
    """The model's training losses as one module's forward, the shape DistributedDataParallel wraps."""

    def __init__(self, model: FlowModel, goal_weight: float = 0.0) -> None:
        super().__init__()
        self.model = model
        self.goal_weight = goal_weight if model.goal is not None else 0.0  # only models with a goal head

    def forward(self, batch: dict, generator: torch.Generator) -> dict[str, torch.Tensor]:
        return training_losses(self.model, batch, generator, self.goal_weight)


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
    objective: torch.nn.Module | None = None,
    ranks: Ranks = Ranks(),
) -> tuple[dict[str, float], float]:
    """One optimizer step on `batch_size` frames drawn from `frames` (with replacement) by `generator`;
    returns ({"loss": flow loss [, "goal_loss"]}, gradient norm before clipping). The goal loss (weighted by
    `goal_weight`) counts only for models with a goal head. PolicyError when the loss is not finite.

    With several processes (`ranks`), `batch_size` is the global batch: every process draws it alike and
    takes its slice, augments and noises it with a generator of its own seeded from `generator`, and runs
    `objective` (the DDP-wrapped TrainingObjective, which averages the gradients); the losses returned are
    the means over the processes."""
    objective = objective if objective is not None else TrainingObjective(model, goal_weight)
    pick = torch.randint(len(frames), (batch_size,), generator=generator)
    local = generator
    if ranks.enabled:
        seed = int(torch.randint(1 << 62, (1,), generator=generator))
        local = torch.Generator().manual_seed(seed + ranks.rank)
        pick = pick.view(ranks.world_size, -1)[ranks.rank]
    batch = batcher.batch(frames[pick], local, train=True)
    losses = objective(batch, local)
    loss = losses["total"]
    flow, bad = distributed.mean_and_any(ranks, losses["flow"].item(), not torch.isfinite(loss), model.device)
    if bad:  # every process stops here, none is left waiting in the gradients' all-reduce
        raise PolicyError(f"training loss became {loss.item()}; lower --lr or check the dataset for outliers")
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    grad_norm = torch.nn.utils.clip_grad_norm_(model.parameters(), grad_clip)
    optimizer.step()
    scheduler.step()
    logged = {"loss": flow}
    if "goal" in losses:
        logged["goal_loss"] = distributed.mean_and_any(ranks, losses["goal"].item(), False, model.device)[0]
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
        ranks: Ranks = Ranks(),
    ) -> None:
        device_name = config.device
        if device_name == "auto":
            device_name = "cuda" if torch.cuda.is_available() else "cpu"
        self.ranks = ranks
        self.device = distributed.device_for(ranks, resolve_device(device_name))
        if self.device.type == "cpu":  # processes on one machine share its cores
            torch.set_num_threads(config.threads or max(1, cpu_cores() // ranks.local_world_size))
        self.out, self.config, self.generator = out, config, generator
        self.model = model.to(self.device).train()
        self.objective: torch.nn.Module = TrainingObjective(self.model, config.goal_weight)
        if ranks.enabled:
            self.objective = torch.nn.parallel.DistributedDataParallel(
                self.objective,
                device_ids=[self.device.index] if self.device.type == "cuda" else None,
                find_unused_parameters=model.goal is not None and config.goal_weight == 0,  # a goal head left idle
            )
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
        self.log = TrainLog(out) if ranks.is_main else None  # written once, by rank 0
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
            c.progress and self.ranks.is_main,
            lambda m: {"loss": f"{m['loss']:.4f}", "lr": f"{self.scheduler.get_last_lr()[0]:.2e}"},
            agree=lambda stop: distributed.mean_and_any(self.ranks, 0.0, stop, self.device)[1],
        )
        if done.step > first:  # a resume with nothing left to do keeps the checkpoint it started from
            self._save(done.step)
        if not done.interrupted and self.ranks.is_main:
            save_checkpoint(self.out, self.model, self.model.config, self.norm_stats)
        distributed.barrier(self.ranks)  # no process returns before the model is on disk
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
            self.objective,
            self.ranks,
        )
        return losses

    def _extras(self) -> dict[str, float]:
        return {"lr": self.scheduler.get_last_lr()[0], "grad_norm": self._grad_norm}

    def _save(self, step: int) -> None:
        if self.log is None:  # not rank 0: the weights are rank 0's, and it writes them
            return
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
