"""`ros2-vla train DATASET OUT`: train the flow backend (or an OpenVLA LoRA) on a converted dataset.

    ros2-vla train data/franka_pick models/franka_pick --preset compact --steps 3000
    ros2-vla train data/franka_pick models/franka_pick --resume           # after a stop or Ctrl-C
    ros2-vla train data/franka_pick models/ft --init models/franka_pick   # fine-tune a checkpoint
    ros2-vla launch franka --sim --policy flow --model models/franka_pick

DATASET is a LeRobot v3.0 folder from `ros2-vla convert`. Options left out take the defaults of
`ros2_vla.training.run_config.TrainConfig`; with --resume they take the run's saved values.
"""

from __future__ import annotations

import argparse
import json
from typing import TYPE_CHECKING, Any

from ros2_vla.config_args import add_config_arguments, given
from ros2_vla.training.openvla_run import LoraTrainConfig
from ros2_vla.training.run_config import TrainConfig

if TYPE_CHECKING:  # the CLI starts without torch: ros2_vla.training.distributed imports it
    from ros2_vla.training.distributed import Ranks

# Options that are TrainConfig fields of the same name (argparse dest = field): type, default and help are the field's.
CONFIG_OPTIONS = (
    "preset",
    "init",
    "steps",
    "batch_size",
    "lr",
    "warmup_steps",
    "weight_decay",
    "grad_clip",
    "goal_weight",
    "seed",
    "augment_shift",
    "rephrase",
    "val_episodes",
    "save_every",
    "log_every",
    "keep_last",
    "device",
    "threads",
    "image_size",
    "progress",
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.description = __doc__
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    parser.add_argument("dataset", help="LeRobot v3.0 dataset folder (ros2-vla convert ... --to lerobot)")
    parser.add_argument("out", help="output folder: final model, checkpoints/, train_log.jsonl, loss_curve.png")
    parser.add_argument(
        "--policy",
        choices=("flow", "openvla"),
        default="flow",
        help="flow: the pi0-style backend (default); openvla: a LoRA fine-tune (GPU job)",
    )
    add_config_arguments(parser, TrainConfig, CONFIG_OPTIONS)
    parser.add_argument("--resume", action="store_true", help="continue the run in OUT from its newest checkpoint")
    parser.add_argument("--episodes", type=int, nargs="+", help="train on these episode indices only")
    parser.add_argument(
        "--override",
        nargs="+",
        default=[],
        metavar="KEY=VALUE",
        help="FlowConfig fields over the preset, e.g. horizon=16 width=192 (JSON values)",
    )
    lora = parser.add_argument_group(
        "--policy openvla (LoRA on --init, the base OpenVLA-format checkpoint; its own defaults: "
        f"--steps {LoraTrainConfig.steps}, --batch-size {LoraTrainConfig.batch_size}, --lr {LoraTrainConfig.lr:g})"
    )
    lora.add_argument("--lora-rank", type=int, help=f"LoRA rank (default {LoraTrainConfig.rank}, as OpenVLA)")
    lora.add_argument("--lora-alpha", type=float, help="LoRA alpha (default min(rank, 16))")
    lora.add_argument("--lora-dropout", type=float, help=f"LoRA dropout (default {LoraTrainConfig.dropout:g})")
    lora.add_argument("--quantization", help="4bit (QLoRA) | bf16 | fp32 (default bf16 on CUDA, fp32 on CPU)")
    lora.add_argument("--camera", help="the camera the model sees (default the dataset's first)")
    lora.add_argument("--unnorm-key", help="name of the saved action statistics (default the dataset folder's name)")


def parse_overrides(items: list[str]) -> dict[str, Any]:
    """["horizon=16", "text_encoder=hash"] -> {"horizon": 16, "text_encoder": "hash"} (JSON, else text)."""
    from ros2_vla.errors import PolicyError

    overrides: dict[str, Any] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise PolicyError(f"--override {item!r}: expected KEY=VALUE, e.g. horizon=16")
        try:
            overrides[key.strip()] = json.loads(value)
        except json.JSONDecodeError:
            overrides[key.strip()] = value
    return overrides


def given_options(args: argparse.Namespace) -> dict[str, Any]:
    """TrainConfig fields set on the command line (options left out are absent)."""
    options = given(args, CONFIG_OPTIONS)
    if args.override:
        options["overrides"] = parse_overrides(args.override)
    return options


def model_image_size(args: argparse.Namespace, given: dict[str, Any]) -> tuple[int, int]:
    """The image size the model reads, known before the dataset is loaded (so frames load at that size)."""
    from pathlib import Path

    from ros2_vla.errors import PolicyError
    from ros2_vla.policies.flow.checkpoint import read_config
    from ros2_vla.policies.flow.config import get_config
    from ros2_vla.training.checkpoints import latest_checkpoint

    if args.resume:
        folder = latest_checkpoint(args.out)
        if folder is None:
            raise PolicyError(
                f"--resume: {args.out} has no complete checkpoint (checkpoints/step_*) to continue; "
                "start it without --resume"
            )
        return read_config(folder).image_size
    if args.init:
        return read_config(Path(args.init)).image_size
    size = given.get("image_size") or given.get("overrides", {}).get("image_size")
    return tuple(size) if size else get_config(given.get("preset", "compact")).image_size


def run(args: argparse.Namespace) -> int:
    from ros2_vla.training import distributed

    ranks = distributed.Ranks.from_env()
    try:
        return run_openvla(args, ranks) if args.policy == "openvla" else run_flow(args, ranks)
    finally:
        distributed.stop()


def run_flow(args: argparse.Namespace, ranks: Ranks) -> int:
    """Train the flow backend (one process, or one of `torchrun`'s: rank 0 prints the outcome)."""
    _refuse_options(args, OPENVLA_ONLY, "flow")
    from ros2_vla.data.lerobot_reader import load_lerobot_dataset
    from ros2_vla.training.trainer import check_new_run, resume_flow, train_flow

    given = given_options(args)
    config = None
    if not args.resume:  # settings and the folder are checked before minutes of video decoding, not after
        config = TrainConfig(**given)
        check_new_run(args.out)
    size = model_image_size(args, given)
    dataset = load_lerobot_dataset(
        args.dataset, image_size=size, episodes=args.episodes, progress=args.progress is not False
    )
    if config is None:
        result = resume_flow(dataset, args.out, **given)
    else:
        result = train_flow(dataset, args.out, config)
    if result.interrupted:
        if ranks.is_main:
            print(
                f"stopped at step {result.step}; checkpoint saved. Continue with: "
                f"ros2-vla train {args.dataset} {args.out} --resume"
            )
        return 130
    if not ranks.is_main:
        return 0
    val = f", validation loss {result.val_loss:.4f}" if result.val_loss is not None else ""
    print(
        f"trained to step {result.step} ({result.steps_per_s:.2f} steps/s); loss {result.loss:.4f}{val}\n"
        f"model: {result.out}  (ros2-vla launch {dataset.robot} --sim --policy flow --model {result.out})"
    )
    return 0


FLOW_ONLY = (
    "preset",
    "warmup_steps",
    "weight_decay",
    "grad_clip",
    "goal_weight",
    "augment_shift",
    "rephrase",
    "val_episodes",
    "image_size",
)
OPENVLA_ONLY = ("lora_rank", "lora_alpha", "lora_dropout", "quantization", "camera", "unnorm_key")


def _refuse_options(args: argparse.Namespace, names: tuple[str, ...], policy: str) -> None:
    from ros2_vla.errors import PolicyError

    given = [f"--{n.replace('_', '-')}" for n in names if getattr(args, n, None) is not None]
    if policy == "openvla" and args.override:
        given.append("--override")
    if given:
        raise PolicyError(f"{', '.join(given)}: not an option of --policy {policy}")


def run_openvla(args: argparse.Namespace, ranks: Ranks) -> int:
    """OpenVLA LoRA fine-tune of --init (`ros2_vla.training.openvla_lora.train_lora`); under torchrun, rank 0
    prints the outcome."""
    from ros2_vla.training.openvla_lora import train_lora

    _refuse_options(args, FLOW_ONLY, "openvla")
    dataset = args.dataset
    if args.episodes:
        from ros2_vla.data.lerobot_reader import load_lerobot_dataset

        dataset = load_lerobot_dataset(
            args.dataset, image_size=None, episodes=args.episodes, progress=args.progress is not False
        )
    result = train_lora(
        dataset,
        args.out,
        args.init,
        steps=args.steps,
        batch_size=args.batch_size,
        lr=args.lr,
        rank=args.lora_rank,
        alpha=args.lora_alpha,
        dropout=args.lora_dropout,
        save_every=args.save_every,
        resume=args.resume,
        seed=args.seed,
        device=args.device,
        quantization=args.quantization,
        camera=args.camera,
        unnorm_key=args.unnorm_key,
        log_every=args.log_every,
        keep_last=args.keep_last,
        threads=args.threads,
        progress=args.progress,
    )
    if result.interrupted:
        if ranks.is_main:
            print(
                f"stopped at step {result.step}; checkpoint saved. Continue with: "
                f"ros2-vla train {args.dataset} {args.out} --policy openvla --resume"
            )
        return 130
    if not ranks.is_main:
        return 0
    print(
        f"trained to step {result.step} ({result.steps_per_s:.2f} steps/s); loss {result.loss:.4f}\n"
        f"model: {result.out}  (ros2-vla launch ROBOT --sim --policy openvla --model {result.out})"
    )
    return 0
