"""Data-parallel training: one process per GPU (or per CPU worker) under `torchrun` or `accelerate launch`.

    torchrun --nproc_per_node 4 -m ros2_vla.cli train DATASET OUT --batch-size 64          # one machine
    torchrun --nnodes 2 --node_rank R --nproc_per_node 8 --rdzv_endpoint HOST:29500 \\
        -m ros2_vla.cli train DATASET OUT --batch-size 256                                 # two machines

The launcher sets RANK, WORLD_SIZE, LOCAL_RANK and LOCAL_WORLD_SIZE (and MASTER_ADDR/PORT); without them
the run is one process, as before. The process group uses NCCL on CUDA and gloo on the CPU. Every
process loads the dataset and builds the same model (same seed; DDP also broadcasts rank 0's weights);
`--batch-size` stays the global batch: each step, every process draws the same global batch of frames
from the run's one generator and takes its own slice of it (the dataset's frames are sharded per step),
with its own generator for augmentation and flow noise. PyTorch's DistributedDataParallel averages the
gradients, so a step is one optimizer step on the global batch's mean loss. Rank 0 alone writes the log,
the checkpoints and the final model; the generator it saves is the one every process shares, so
`--resume` continues the same stream of batches under any number of processes. (The OpenVLA LoRA
trainer's batches are a pure function of seed and step: it slices them the same way.)
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist

from ros2_vla.errors import PolicyError


@dataclass(frozen=True)
class Ranks:
    """Where this process stands among the run's processes (one process: rank 0 of 1)."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0  # on this machine
    local_world_size: int = 1

    @property
    def enabled(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @classmethod
    def from_env(cls) -> Ranks:
        """From the launcher's variables (torchrun, accelerate launch); one process without them."""
        try:
            world = int(os.environ.get("WORLD_SIZE", "1"))
            rank = int(os.environ.get("RANK", "0"))
            local = int(os.environ.get("LOCAL_RANK", str(rank)))
            local_world = int(os.environ.get("LOCAL_WORLD_SIZE", str(world)))
        except ValueError as exc:
            raise PolicyError(f"a distributed launch variable is not an integer: {exc}") from exc
        if not (0 <= rank < world and 0 <= local < local_world):
            raise PolicyError(f"RANK {rank} / WORLD_SIZE {world}, LOCAL_RANK {local} / LOCAL_WORLD_SIZE {local_world}")
        return cls(rank, world, local, local_world)


def start(device_name: str) -> Ranks:
    """This process's ranks, its process group joined when the launcher started several (NCCL on CUDA, gloo
    on the CPU). Idempotent."""
    ranks = Ranks.from_env()
    if ranks.enabled and not dist.is_initialized():
        cuda = device_name.startswith("cuda") or (device_name == "auto" and torch.cuda.is_available())
        if cuda:
            torch.cuda.set_device(ranks.local_rank)
        dist.init_process_group("nccl" if cuda else "gloo")
    return ranks


def check_global_batch(batch_size: int, ranks: Ranks) -> None:
    """PolicyError unless the global batch splits evenly over the processes."""
    if batch_size % ranks.world_size:
        raise PolicyError(
            f"--batch-size {batch_size} (the global batch) does not split over {ranks.world_size} processes; "
            f"use a multiple of {ranks.world_size}"
        )


def stop() -> None:
    """Leave the process group (at the end of a run)."""
    if dist.is_initialized():
        dist.destroy_process_group()


def device_for(ranks: Ranks, device: torch.device) -> torch.device:
    """Each process its own GPU (cuda:LOCAL_RANK); the CPU is shared."""
    if ranks.enabled and device.type == "cuda":
        return torch.device("cuda", ranks.local_rank)
    return device


def barrier(ranks: Ranks) -> None:
    if ranks.enabled:
        dist.barrier()


def mean_and_any(ranks: Ranks, value: float, flag: bool, device: torch.device) -> tuple[float, bool]:
    """(the mean of `value` over the processes, whether `flag` is true in any of them): one all-reduce, on
    `device` (NCCL reduces CUDA tensors only)."""
    if not ranks.enabled:
        return value, flag
    t = torch.tensor([value, float(flag)], dtype=torch.float64, device=device)
    dist.all_reduce(t)
    return float(t[0]) / ranks.world_size, bool(t[1] > 0)
