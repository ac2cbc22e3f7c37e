"""Frames of a `FrameDataset` -> flow training batches, normalized exactly as `FlowPolicy` infers.

Sample i of a batch is the observation at frame i (each model camera, the state) and the action chunk
of the H = `config.horizon` frames i .. i+H-1 of the SAME episode.

Past the episode's end the chunk is padded with the action of standing still, not (as LeRobot's
clamped indices give) a copy of the last action: in a delta action space (ee_delta, joint_delta) a
copied delta would keep the arm moving after the demonstrator stopped, so the motion dims are padded
with 0 and the gripper dims (absolute openness in every space) hold their last value; in an absolute
space (ee_absolute, joint_position) holding still is repeating the last target. These padded steps are
true labels (after the demo ends the arm does stay put), so the loss keeps them, unmasked: the model
learns to stop when a task is done rather than leaving its tail outputs unconstrained. `is_pad` is
returned with each batch for inspection.

Normalization: state z-scores (mean/std), then a tcp_state model's TCP features (`proprio.model_state`,
which FlowPolicy uses too), actions q01/q99 -> [-1, 1] on the dims the mask marks, the
gripper raw: the very `NormStats` saved in the checkpoint, so FlowPolicy undoes what training did.
Images go through `images_to_tensor`, the function FlowPolicy's `CameraImages` uses.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

from ros2_vla.actions.spaces import hold_dims
from ros2_vla.data.frames import FrameDataset, episode_bounds
from ros2_vla.errors import PolicyError
from ros2_vla.policies.flow.config import FlowConfig
from ros2_vla.policies.flow.norm import NormStats, Stats, default_action_mask
from ros2_vla.policies.flow.preprocess import images_to_tensor
from ros2_vla.policies.flow.proprio import model_state, tcp_features_for
from ros2_vla.sim.phrasings import parse_instruction, phrasings
from ros2_vla.training.augment import random_shift
from ros2_vla.training.goals import goal_targets, normalize_goals

STATE_FEATURE, ACTION_FEATURE = "observation.state", "action"  # LeRobot feature names in `stats`


def chunk_indices(episode_index: np.ndarray, horizon: int) -> tuple[np.ndarray, np.ndarray]:
    """(N, H) frame indices of each frame's chunk, clamped to its episode's last frame, and (N, H) bool
    `is_pad` (True past the episode's end). Frames of an episode must be contiguous."""
    starts, ends = episode_bounds(episode_index)
    last = np.repeat(ends - 1, ends - starts)  # (N,) last frame of each frame's episode
    wanted = np.arange(last.shape[0])[:, None] + np.arange(horizon)[None, :]
    return np.minimum(wanted, last[:, None]), wanted > last[:, None]


def padded_chunks(
    action: np.ndarray, episode_index: np.ndarray, horizon: int, hold: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Physical action chunks (N, H, D) and is_pad (N, H): the actions of frames i .. i+H-1, padded past
    the episode end with the last frame's value on `hold` dims and 0 elsewhere."""
    index, is_pad = chunk_indices(episode_index, horizon)
    chunks = np.asarray(action, np.float32)[index]
    chunks[is_pad[..., None] & ~hold[None, None, :]] = 0.0
    return chunks, is_pad


def norm_stats_from_dataset(dataset: FrameDataset, dimension_names: Sequence[str]) -> NormStats:
    """NormStats from the dataset's own stats (mean/std/q01/q99 of "action" and "observation.state"), with
    OpenVLA's mask (grippers raw). Falls back to computing them from the frames when a feature is absent."""

    def stats(feature: str, data: np.ndarray) -> Stats:
        s = dataset.stats.get(feature)
        if s is None or any(k not in s for k in ("mean", "std", "q01", "q99")):
            return Stats.of(data)
        return Stats(*(np.asarray(s[k], np.float32).reshape(-1) for k in ("mean", "std", "q01", "q99")))

    return NormStats(
        stats(ACTION_FEATURE, dataset.action),
        stats(STATE_FEATURE, dataset.state),
        default_action_mask(tuple(dimension_names)),
    )


@dataclass(frozen=True)
class Augment:
    """Light augmentation (train only): random shift by up to `shift_px` on the cameras named, and
    re-wording of instructions (`rephrase`)."""

    shift_px: int = 0  # [px] at the model's image size; 0 = off
    cameras: tuple[str, ...] = ()  # cameras to shift (fixed cameras; a wrist view moves with the gripper)
    rephrase: float = 0.0  # chance that a frame's instruction is swapped for another training wording of its task


class ChunkBatcher:
    """Turns frame indices into training batches; the chunks are built and normalized once, up front."""

    def __init__(
        self, dataset: FrameDataset, config: FlowConfig, norm_stats: NormStats, augment: Augment = Augment()
    ) -> None:
        self.dataset, self.config, self.augment = dataset, config, augment
        hold = hold_dims(config.action_space, config.dimension_names)
        chunks, is_pad = padded_chunks(dataset.action, dataset.episode_index, config.horizon, hold)
        self.actions = torch.from_numpy(norm_stats.normalize_actions(chunks))  # (N, H, D)
        self.is_pad = torch.from_numpy(is_pad)  # (N, H)
        tcp = tcp_features_for(config)
        self.state = torch.from_numpy(model_state(dataset.state, norm_stats, tcp))  # (N, proprio_dim)
        goals = goal_targets(dataset.action, dataset.episode_index, config.dimension_names, hold)
        self.goals = torch.from_numpy(normalize_goals(goals))  # (N, D) targets of the goal loss
        self.instructions = [dataset.tasks[int(t)] for t in dataset.task_index]
        self._wordings = {text: _wordings(text) for text in set(self.instructions)}

    def __len__(self) -> int:
        return self.actions.shape[0]

    def batch(
        self,
        indices: Sequence[int] | np.ndarray | torch.Tensor,
        generator: torch.Generator | None = None,
        train: bool = True,
    ) -> dict:
        """Batch for frames `indices`: "images" camera -> (B, 3, h, w) in [-1, 1], "state" (B, S),
        "instruction" B strings, "actions" (B, H, D) normalized, "is_pad" (B, H), "goals" (B, D) normalized.
        Augmented when `train` (random draws from `generator`)."""
        idx = torch.as_tensor(np.asarray(indices), dtype=torch.int64)
        if idx.numel() == 0:
            raise PolicyError("an empty batch was asked for")
        images = {}
        for camera in self.config.cameras:
            frames = self.dataset.images[camera][idx.numpy()]
            x = images_to_tensor(frames, self.config.image_size)
            if train and self.augment.shift_px > 0 and camera in self.augment.cameras:
                x = random_shift(x, self.augment.shift_px, generator)
            images[camera] = x
        instructions = [self.instructions[i] for i in idx.tolist()]
        if train and self.augment.rephrase > 0:
            instructions = self._rephrase(instructions, generator)
        return {
            "images": images,
            "state": self.state[idx],
            "actions": self.actions[idx],
            "is_pad": self.is_pad[idx],
            "goals": self.goals[idx],
            "instruction": instructions,
        }

    def _rephrase(self, instructions: list[str], generator: torch.Generator | None) -> list[str]:
        """Each instruction, with chance `augment.rephrase`, said another way its task may be said in
        training (`sim.phrasings`); instructions in other words are kept as they are."""
        swap = (torch.rand(len(instructions), generator=generator) < self.augment.rephrase).tolist()
        picks = torch.randint(1 << 30, (len(instructions),), generator=generator).tolist()
        out = []
        for text, s, k in zip(instructions, swap, picks):
            options = self._wordings[text]
            out.append(options[k % len(options)] if s and options else text)
        return out


def _wordings(text: str) -> tuple[str, ...]:
    """Every training wording of the task `text` says (empty when it is not a sim phrasing)."""
    parsed = parse_instruction(text)
    if parsed is None:
        return ()
    kind, colors = parsed
    return tuple(fmt.format(*colors) for fmt in phrasings(kind, "train"))
