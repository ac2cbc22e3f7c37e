"""Held-out episodes and the validation loss on them.

The flow loss is random (noise and flow time per sample), so a validation loss drawn afresh each time
would jitter by more than a model improves between checkpoints. Here it is computed on a fixed set of
frames with a generator reseeded at every evaluation: two evaluations of the same weights agree exactly
and a change means the model changed. Images are not augmented.
"""

from __future__ import annotations

import numpy as np
import torch

from ros2_vla.errors import DatasetError
from ros2_vla.policies.flow.loss import flow_matching_loss
from ros2_vla.policies.flow.model import FlowModel
from ros2_vla.training.batching import ChunkBatcher

MAX_VAL_FRAMES = 512  # evenly spaced over the held-out frames: enough for a steady mean, cheap on a CPU


def split_episodes(episode_index: np.ndarray, k: int, seed: int) -> list[int]:
    """`k` episode ids drawn (by `seed`) to hold out; at least one episode must remain for training."""
    episodes = np.unique(episode_index)
    if k == 0:
        return []
    if k >= episodes.size:
        raise DatasetError(f"--val-episodes {k} leaves nothing to train on: the dataset has {episodes.size} episodes")
    chosen = np.random.default_rng(seed).choice(episodes, size=k, replace=False)
    return sorted(int(e) for e in chosen)


def validation_frames(frames: np.ndarray, limit: int = MAX_VAL_FRAMES) -> np.ndarray:
    """At most `limit` of `frames`, evenly spaced (all of them when fewer)."""
    if frames.size <= limit:
        return frames
    return frames[np.linspace(0, frames.size - 1, limit).round().astype(np.int64)]


def validation_loss(model: FlowModel, batcher: ChunkBatcher, frames: np.ndarray, batch_size: int, seed: int) -> float:
    """Mean flow-matching loss over `frames`, noise and times drawn from a generator seeded with `seed`."""
    generator = torch.Generator().manual_seed(seed)
    was_training = model.training
    model.eval()
    total = 0.0
    with torch.no_grad():
        for start in range(0, frames.size, batch_size):
            chunk = frames[start : start + batch_size]
            total += flow_matching_loss(model, batcher.batch(chunk, train=False), generator).item() * chunk.size
    model.train(was_training)
    return total / frames.size
