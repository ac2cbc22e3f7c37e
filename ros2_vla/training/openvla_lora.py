"""OpenVLA LoRA fine-tuning on a converted dataset, as OpenVLA's `vla-scripts/finetune.py` does it.

    result = train_lora("data/franka_pick", "models/openvla_franka", "models/openvla-7b", steps=5000)
    # a GPU job: bf16, or quantization="4bit" (QLoRA)
    ros2-vla launch franka --sim --policy openvla --model models/openvla_franka

LoRA (peft) on every linear layer of the base checkpoint, AdamW at a constant rate, cross-entropy on the
action tokens and the stop token only (`openvla_data`). OUT afterwards holds:

- the merged model (config.json, weights, processor files) with the dataset's statistics in its
  config.json `norm_stats` and in dataset_statistics.json under `unnorm_key`: what `OpenVlaPolicy` and
  vla_node load (the base's own statistics are left out, so the one key needs no `unnorm_key`);
- adapter/: the LoRA weights alone (adapter_config.json names the base dir), for `merge_lora` or peft;
- checkpoints/step_XXXXXX/: adapter + training_state.pt (optimizer, step, random state) to resume from;
- openvla_lora_run.json, train_log.jsonl (loss, action-token accuracy, L1 in normalized units) and
  loss_curve.png.

Batches are a pure function of (seed, step), and the random state is saved, so a resumed run repeats
the uninterrupted run's steps (same device). Ctrl-C finishes the step, saves a checkpoint and returns.

Under `torchrun` each process takes its slice of every step's batch (`batch_size` is the global batch)
and PyTorch DDP averages the gradients: every example has the same number of labelled tokens (the
action tokens and the stop token), so the step is the one-process step on the whole batch, whatever the
number of processes (with LoRA dropout 0, OpenVLA's default). Rank 0 alone writes (`distributed.py`).
"""

from __future__ import annotations

import contextlib
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from ros2_vla.cpu import cpu_cores
from ros2_vla.data.frames import FrameDataset
from ros2_vla.errors import PolicyError
from ros2_vla.training import distributed
from ros2_vla.training.checkpoints import TRAINING_STATE, checkpoint_dir, latest_checkpoint, list_checkpoints
from ros2_vla.training.compat import check_frames
from ros2_vla.training.log import PLOT_FILE, TrainLog
from ros2_vla.training.loop import run_steps
from ros2_vla.training.openvla_data import ExampleSource, action_norm, batch_indices
from ros2_vla.training.openvla_merge import ADAPTER_DIR, merge_lora
from ros2_vla.training.openvla_metrics import action_metrics, plot_lora_log
from ros2_vla.training.openvla_run import RUN_FILE, LoraTrainConfig, resume_run, save_run

STATE_FORMAT = 1


@dataclass(frozen=True)
class LoraResult:
    """What a LoRA training call did: run folder, steps, last loss, time and rate, and whether it was interrupted."""

    out: Path  # the run folder (the merged model inside when not interrupted)
    step: int  # optimizer steps completed
    loss: float  # mean training loss of the last logged window
    wall_s: float  # [s] this call's training time
    steps_per_s: float  # this call's mean rate
    interrupted: bool  # stopped by SIGINT before `steps` (a checkpoint was saved)


def train_lora(
    dataset: str | Path | FrameDataset,
    out_dir: str | Path,
    model_dir: str | Path | None = None,
    *,
    steps: int | None = None,
    batch_size: int | None = None,
    lr: float | None = None,
    rank: int | None = None,
    alpha: float | None = None,
    dropout: float | None = None,
    save_every: int | None = None,
    resume: bool = False,
    seed: int | None = None,
    device: str | None = None,
    quantization: str | None = None,
    camera: str | None = None,
    unnorm_key: str | None = None,
    log_every: int | None = None,
    keep_last: int | None = None,
    threads: int | None = None,
    progress: bool | None = None,
) -> LoraResult:
    """Fine-tune `model_dir` with LoRA on `dataset` (a LeRobot v3.0 folder or a FrameDataset) into `out_dir`.

    Options left as None take `LoraTrainConfig`'s defaults, or with `resume=True` the run's saved values
    (then only steps, device, threads, progress, save_every, log_every and keep_last may differ).
    """
    given = {
        k: v
        for k, v in dict(
            model_dir=None if model_dir is None else str(model_dir),
            steps=steps,
            batch_size=batch_size,
            lr=lr,
            rank=rank,
            alpha=alpha,
            dropout=dropout,
            save_every=save_every,
            seed=seed,
            device=device,
            quantization=quantization,
            camera=camera,
            unnorm_key=unnorm_key,
            log_every=log_every,
            keep_last=keep_last,
            threads=threads,
            progress=progress,
        ).items()
        if v is not None
    }
    out = Path(out_dir)
    ranks = distributed.start(given.get("device", "auto"))
    data = _load_dataset(dataset, given.get("progress", True) and ranks.is_main)
    check_frames(data)
    if resume:
        config = resume_run(out, data, given)
        distributed.check_global_batch(config.batch_size, ranks)
        folder = latest_checkpoint(out)
        if folder is None:
            raise PolicyError(f"resume: {out} has no complete checkpoint yet (checkpoints/step_*); start it again")
        state = _load_state(folder)
        distributed.barrier(ranks)  # every process has read the checkpoint before rank 0 touches the log
        return _LoraRun(data, out, config, ranks).train(folder, state)
    if (out / RUN_FILE).exists() or list_checkpoints(out):
        raise PolicyError(f"{out} already holds a training run; resume it, or choose another folder")
    if "model_dir" not in given:
        raise PolicyError("openvla lora: give the base checkpoint dir (model_dir) to fine-tune")
    from ros2_vla.policies.openvla.loading import resolve_device

    config = LoraTrainConfig(**given).resolved(data, resolve_device(given.get("device", "auto")))
    distributed.check_global_batch(config.batch_size, ranks)
    run = _LoraRun(data, out, config, ranks)  # a bad model, camera or device fails before OUT is written
    distributed.barrier(ranks)  # every process has checked OUT before rank 0 writes into it
    if ranks.is_main:
        out.mkdir(parents=True, exist_ok=True)
        save_run(out, config, data)
        TrainLog(out).path.write_text("")
    return run.train(None, None)


def _load_dataset(dataset: str | Path | FrameDataset, progress: bool) -> FrameDataset:
    if isinstance(dataset, FrameDataset):
        return dataset
    from ros2_vla.data.lerobot_reader import load_lerobot_dataset

    return load_lerobot_dataset(dataset, image_size=None, progress=progress)  # the processor resizes


def _load_state(folder: Path) -> dict[str, Any]:
    path = folder / TRAINING_STATE
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # torch.load raises many kinds (pickle, zip, runtime) for a damaged file
        raise PolicyError(
            f"{path} is not a readable training state ({type(e).__name__}: {e}); "
            "delete that checkpoint folder to resume from the one before"
        ) from e
    if not isinstance(state, dict) or state.get("format") != STATE_FORMAT or state.get("kind") != "openvla_lora":
        raise PolicyError(f"{path} is not an OpenVLA LoRA training state (format {STATE_FORMAT})")
    return state


def with_lora(model: Any, config: LoraTrainConfig) -> Any:
    """The peft model: LoRA on all linear layers of the VLA (OpenVLA's "all-linear": vision towers,
    projector and LLM; the output head excepted), everything else frozen."""
    from peft import LoraConfig, get_peft_model, prepare_model_for_kbit_training

    if config.quantization == "4bit":
        # the LLM's norms in fp32 and gradient checkpointing (as OpenVLA's QLoRA path)
        prepare_model_for_kbit_training(model.language_model, gradient_checkpointing_kwargs={"use_reentrant": False})
    torch.manual_seed(config.seed)  # the Gaussian LoRA init
    lora = LoraConfig(
        r=config.rank,
        lora_alpha=config.lora_alpha,
        lora_dropout=config.dropout,
        target_modules=lora_targets(model),
        init_lora_weights="gaussian",
    )
    return get_peft_model(model, lora)


def lora_targets(model: torch.nn.Module) -> list[str]:
    """Every linear layer's name (bitsandbytes' are nn.Linear too) but the output head's."""
    return sorted(
        name
        for name, m in model.named_modules()
        if isinstance(m, torch.nn.Linear) and name not in ("lm_head", "language_model.lm_head")
    )


class _LoraRun:
    """One call's training loop: base model + LoRA, examples, optimizer."""

    def __init__(
        self, dataset: FrameDataset, out: Path, config: LoraTrainConfig, ranks: distributed.Ranks = distributed.Ranks()
    ) -> None:
        from ros2_vla.policies.openvla.decoding import action_id_range, action_vocab_size
        from ros2_vla.policies.openvla.loading import load_checkpoint
        from ros2_vla.policies.openvla.prompt import suffix_token_id

        self.dataset, self.out, self.config, self.ranks = dataset, out, config, ranks
        device = config.device
        if ranks.enabled and device.startswith("cuda"):
            device = f"cuda:{ranks.local_rank}"  # each process its own GPU
        loaded = load_checkpoint(config.model_dir, config.quantization, device)
        self.device, self.dtype, self.processor = loaded.device, loaded.dtype, loaded.processor
        if self.device.type == "cpu":  # one thread per core (oversubscribed OpenMP crawls), shared by the processes
            torch.set_num_threads(config.threads or max(1, cpu_cores() // ranks.local_world_size))
        tokenizer = loaded.processor.tokenizer
        self.num_bins = loaded.arch.n_action_bins
        self.vocab_size = action_vocab_size(loaded.arch, tokenizer)
        self.first_action_id = action_id_range(self.vocab_size, self.num_bins)[0]
        self.norm = action_norm(dataset)
        self.source = ExampleSource(
            dataset,
            loaded.processor,
            config.camera,
            self.norm,
            self.vocab_size,
            self.num_bins,
            suffix_token_id(tokenizer, "auto"),
        )
        self.model = with_lora(loaded.model, config)
        self.model.train()
        self.forward: torch.nn.Module = self.model
        if ranks.enabled:
            # find_unused_parameters, as OpenVLA's finetune.py: the vision towers' last blocks (features are
            # taken before them) and SigLIP's pooling head hold LoRA weights that get no gradient.
            self.forward = torch.nn.parallel.DistributedDataParallel(
                self.model,
                device_ids=[self.device.index] if self.device.type == "cuda" else None,
                find_unused_parameters=True,
            )
        self.optimizer = torch.optim.AdamW([p for p in self.model.parameters() if p.requires_grad], lr=config.lr)
        self.log = TrainLog(out) if ranks.is_main else None  # written once, by rank 0

    def _restore(self, folder: Path, state: dict[str, Any]) -> int:
        from peft import set_peft_model_state_dict
        from safetensors.torch import load_file

        set_peft_model_state_dict(
            self.model, load_file(str(folder / "adapter_model.safetensors"), device=str(self.device))
        )
        self.optimizer.load_state_dict(state["optimizer"])
        torch.set_rng_state(state["torch_rng"])
        if "cuda_rng" in state and self.device.type == "cuda":
            torch.cuda.set_rng_state(state["cuda_rng"], self.device)
        if self.log is not None:
            self.log.truncate(state["step"])
        return int(state["step"])

    def train(self, folder: Path | None, state: dict[str, Any] | None) -> LoraResult:
        self._done = self._restore(folder, state) if state is not None else 0
        first, c = self._done, self.config
        done = run_steps(
            first,
            c.steps,
            self._next_step,
            lambda: {"lr": c.lr},
            self._save,
            self.log,
            c.log_every,
            c.save_every,
            c.progress and self.ranks.is_main,
            lambda m: {"loss": f"{m['loss']:.4f}", "acc": f"{m['action_accuracy']:.2f}"},
            agree=lambda stop: distributed.mean_and_any(self.ranks, 0.0, stop, self.device)[1],
        )
        if self.ranks.is_main:
            if done.step > first or folder is None:
                self._save(done.step)
            if not done.interrupted:
                self._finish()
        distributed.barrier(self.ranks)  # no process returns before the model is on disk
        return LoraResult(self.out, done.step, done.loss, done.wall, done.steps_per_s, done.interrupted)

    def _next_step(self) -> dict[str, float]:
        metrics = self._step(self._done)
        self._done += 1
        return metrics

    def _step(self, step: int) -> dict[str, float]:
        indices = batch_indices(step, self.config.batch_size, len(self.source), self.config.seed)
        if self.ranks.enabled:
            indices = indices.reshape(self.ranks.world_size, -1)[self.ranks.rank]  # this process's slice
        batch = {k: v.to(self.device) for k, v in self.source.batch(indices).items()}
        batch["pixel_values"] = batch["pixel_values"].to(self.dtype)
        autocast = (
            torch.autocast("cuda", dtype=torch.bfloat16)
            if self.device.type == "cuda" and self.dtype == torch.bfloat16
            else contextlib.nullcontext()
        )
        with autocast:
            output = self.forward(**batch)
        loss = output.loss
        value, bad = distributed.mean_and_any(self.ranks, loss.item(), not torch.isfinite(loss), self.device)
        if bad:  # every process stops here, none is left waiting in the gradients' all-reduce
            raise PolicyError(f"training loss became {loss.item()} at step {step + 1}; lower lr or check the dataset")
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        self.optimizer.step()
        metrics = action_metrics(
            output.logits.detach(), batch["labels"], self.first_action_id, self.vocab_size, self.num_bins
        )
        metrics = {k: distributed.mean_and_any(self.ranks, v, False, self.device)[0] for k, v in metrics.items()}
        return {"loss": value, **metrics}

    def _save(self, step: int) -> None:
        """checkpoints/step_XXXXXX: the adapter and the training state, written under a temporary name."""
        final = checkpoint_dir(self.out, step)
        tmp = final.with_name(final.name + ".tmp")
        shutil.rmtree(tmp, ignore_errors=True)
        self.model.save_pretrained(tmp, save_embedding_layers=False)  # only the adapter: embeddings never train
        state = {
            "format": STATE_FORMAT,
            "kind": "openvla_lora",
            "step": step,
            "optimizer": self.optimizer.state_dict(),
            "torch_rng": torch.get_rng_state(),
        }
        if self.device.type == "cuda":
            state["cuda_rng"] = torch.cuda.get_rng_state(self.device)
        torch.save(state, tmp / TRAINING_STATE)
        shutil.rmtree(final, ignore_errors=True)
        tmp.rename(final)
        if self.config.keep_last > 0:
            for _, old in list_checkpoints(self.out)[: -self.config.keep_last]:
                shutil.rmtree(old, ignore_errors=True)
        plot_lora_log(self.log.read(), self.out / PLOT_FILE, title=f"{self.out.name}: OpenVLA LoRA r{self.config.rank}")

    def _finish(self) -> None:
        """The final adapter, then the merged model with the dataset's statistics, into OUT."""
        adapter = self.out / ADAPTER_DIR
        shutil.rmtree(adapter, ignore_errors=True)
        self.model.save_pretrained(adapter, save_embedding_layers=False)
        stats = {self.config.unnorm_key: self.norm.openvla_stats(len(self.dataset), self.dataset.num_episodes)}
        del self.model, self.optimizer  # the merge reloads the base unquantized: free the training copy first
        if self.device.type == "cuda":
            torch.cuda.empty_cache()
        merge_lora(
            adapter,
            self.out,
            stats,
            base=self.config.model_dir,
            device=str(self.device),
            dtype="fp32" if self.config.quantization == "fp32" else "bf16",
        )
