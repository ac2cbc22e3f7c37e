"""How long one flow training step takes, per model size and batch size (CPU by default).

    python benchmarks/train_bench.py                         # tiny, compact, small x batch 8, 32; JSON
    python benchmarks/train_bench.py --configs small --batch-sizes 32 --steps 10 --threads 2
    python benchmarks/train_bench.py --device cuda --configs small pi0 --batch-sizes 32   # on a GPU

Each row: the franka robot's layout (two cameras, 8-D state, 7-D ee_delta actions), a synthetic
dataset of 224x224 frames (the robot's camera size) resized once to the model's size, as
`ros2-vla train` loads them, and `trainer.train_step` (batch, forward, backward, clipping, AdamW)
timed over --steps after --warmup steps. `batch_ms` is the part spent building the batch (images
scaled, shifted, stacked; state and chunks looked up). Configs:
- tiny: unit-test size (32x32 images, hash text);
- compact: the preset of the shipped default policies (96x96 images, widths 128, 2+2 blocks, MiniLM text);
- small: a larger CPU policy (224x224, widths 256, 4+4 blocks, MiniLM text);
- pi0: pi0-scale shapes, for a GPU only.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import platform
import time

import numpy as np
import torch

from ros2_vla.config import load_robot_config
from ros2_vla.cpu import cpu_cores
from ros2_vla.data.frames import FrameDataset
from ros2_vla.data.lerobot_reader import resize_frames
from ros2_vla.policies.flow.config import config_for_robot, robot_state_dim
from ros2_vla.policies.flow.model import FlowModel
from ros2_vla.training.augment import default_shift_px
from ros2_vla.training.batching import Augment, ChunkBatcher, norm_stats_from_dataset
from ros2_vla.training.optim import make_optimizer
from ros2_vla.training.trainer import train_step

ROBOT = "franka"
CONFIGS = {
    "tiny": ("tiny", {}),
    "compact": ("compact", {}),
    "small": ("small", {}),
    "pi0": ("pi0", {}),
}
FRAME_SIZE = (224, 224)


def synthetic_dataset(n: int = 256, episodes: int = 8, seed: int = 0) -> FrameDataset:
    robot = load_robot_config(ROBOT)
    rng = np.random.default_rng(seed)
    d, s = len(robot.action.dimension_names), robot_state_dim(robot)
    action, state = rng.normal(size=(n, d)).astype(np.float32), rng.normal(size=(n, s)).astype(np.float32)
    episode = np.repeat(np.arange(episodes), n // episodes)
    stats = {
        k: {"mean": x.mean(0), "std": x.std(0), "q01": np.quantile(x, 0.01, 0), "q99": np.quantile(x, 0.99, 0)}
        for k, x in (("action", action), ("observation.state", state))
    }
    cams = tuple(c.name for c in robot.cameras)
    return FrameDataset(
        root="synthetic",
        robot=ROBOT,
        fps=1 / robot.action.dt,
        cameras=cams,
        images={c: rng.integers(0, 256, (n, *FRAME_SIZE, 3), dtype=np.uint8) for c in cams},
        state=state,
        action=action,
        action_names=robot.action.dimension_names,
        action_space=robot.action.space,
        episode_index=episode,
        frame_index=np.tile(np.arange(n // episodes), episodes),
        task_index=np.zeros(n, np.int64),
        tasks=("pick up the red cube and put it in the bowl",),
        stats=stats,
    )


def bench(name: str, batch_size: int, dataset: FrameDataset, device: str, steps: int, warmup: int) -> dict:
    preset, overrides = CONFIGS[name]
    robot = load_robot_config(ROBOT)
    config = config_for_robot(preset, robot, **overrides)
    torch.manual_seed(0)
    model = FlowModel(config).to(device).train()
    stats = norm_stats_from_dataset(dataset, config.dimension_names)
    dataset = dataclasses.replace(
        dataset, images={c: resize_frames(x, config.image_size) for c, x in dataset.images.items()}
    )
    batcher = ChunkBatcher(dataset, config, stats, Augment(default_shift_px(config.image_size), ("scene",)))
    optimizer, scheduler = make_optimizer(model, 3e-4, 1e-4, 0, steps + warmup)
    frames, g = torch.arange(len(dataset)), torch.Generator().manual_seed(0)
    for _ in range(warmup):  # first calls pay for allocation, MiniLM loading and the text cache
        train_step(model, optimizer, scheduler, batcher, frames, batch_size, 1.0, g, goal_weight=1.0)
    step_ms, batch_ms = [], []
    for _ in range(steps):
        t0 = time.perf_counter()
        batcher.batch(frames[:batch_size], g, train=True)
        t1 = time.perf_counter()
        train_step(model, optimizer, scheduler, batcher, frames, batch_size, 1.0, g, goal_weight=1.0)
        if device.startswith("cuda"):
            torch.cuda.synchronize()
        batch_ms.append(1e3 * (t1 - t0))
        step_ms.append(1e3 * (time.perf_counter() - t1))
    params = sum(p.numel() for p in model.parameters())
    mean = float(np.mean(step_ms))
    return {
        "config": name,
        "batch_size": batch_size,
        "params_m": round(params / 1e6, 2),
        "image_size": list(config.image_size),
        "step_ms_p50": round(float(np.median(step_ms)), 1),
        "step_ms_mean": round(mean, 1),
        "batch_ms_p50": round(float(np.median(batch_ms)), 1),
        "steps_per_s": round(1e3 / mean, 2),
        "frames_per_s": round(1e3 * batch_size / mean, 1),
    }


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--configs", nargs="+", default=["tiny", "compact", "small"], choices=list(CONFIGS))
    p.add_argument("--batch-sizes", nargs="+", type=int, default=[8, 32])
    p.add_argument("--steps", type=int, default=5, help="timed steps per row")
    p.add_argument("--warmup", type=int, default=2, help="untimed steps per row")
    p.add_argument("--device", default="cpu")
    p.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: every core)")
    args = p.parse_args()
    torch.set_num_threads(args.threads or cpu_cores())
    dataset = synthetic_dataset()
    rows = [
        bench(name, b, dataset, args.device, args.steps, args.warmup) for name in args.configs for b in args.batch_sizes
    ]
    print(
        json.dumps(
            {
                "device": args.device,
                "threads": torch.get_num_threads(),
                "cpu": platform.processor() or platform.machine(),
                "torch": torch.__version__,
                "rows": rows,
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
