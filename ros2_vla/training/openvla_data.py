"""Frames of a `FrameDataset` -> OpenVLA training examples, as OpenVLA's own fine-tuning builds them.

OpenVLA predicts one step: frame i's image and instruction in, frame i's action (D tokens) out.

- Actions: dims the mask marks are mapped with the dataset's q01/q99 to [-1, 1] and clipped
  (OpenVLA's BOUNDS_Q99); the others (grippers, already 0..1) pass through, clipped to [-1, 1]. Then
  each is digitized against 256 uniform bin edges over [-1, 1] and becomes the token id
  `V - digitized` (prismatic `ActionTokenizer`: the last 256 ids of the vocabulary V).
- Text: the prompt the backend sends at inference (`In: What action should the robot take to
  {instruction}?\\nOut:`, lower-cased, and the trailing "▁" token), then
  the D action ids and the end-of-sequence id. The model inputs of the prompt come from the very
  function the backend calls (`model_inputs`), so training and inference see the same ids and pixels.
- Labels: -100 everywhere but the D action ids and the stop token (OpenVLA: `labels[:-(D + 1)] = -100`).
- Statistics: saved beside the weights in OpenVLA's layout `{unnorm_key: {"action": {q01, q99, mask,
  mean, std, min, max}, "num_transitions", "num_trajectories"}}`, which `OpenVlaPolicy` reads.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from ros2_vla.actions.tokenization import bin_edges, normalize
from ros2_vla.data.frames import FrameDataset
from ros2_vla.errors import PolicyError
from ros2_vla.policies.flow.norm import default_action_mask
from ros2_vla.policies.openvla.inputs import model_inputs, to_pil
from ros2_vla.policies.openvla.model import IGNORE_INDEX
from ros2_vla.policies.openvla.prompt import format_prompt

ACTION_FEATURE = "action"  # LeRobot feature name in FrameDataset.stats


@dataclass(frozen=True, eq=False)
class ActionNorm:
    """How a dataset's actions are normalized before tokenization; arrays float64/bool (D,)."""

    q01: np.ndarray  # physical value mapped to -1
    q99: np.ndarray  # physical value mapped to +1
    mask: np.ndarray  # True: mapped through q01/q99; False: passed through (clipped to [-1, 1])
    extra: dict[str, np.ndarray]  # mean/std/min/max when known, saved for reference

    def openvla_stats(self, num_transitions: int, num_trajectories: int) -> dict[str, Any]:
        """One `norm_stats` entry in OpenVLA's JSON layout."""
        action = {k: np.asarray(v, np.float64).tolist() for k, v in self.extra.items()}
        action.update(q01=self.q01.tolist(), q99=self.q99.tolist(), mask=[bool(m) for m in self.mask])
        return {"action": action, "num_transitions": int(num_transitions), "num_trajectories": int(num_trajectories)}


def action_norm(dataset: FrameDataset) -> ActionNorm:
    """q01/q99 from the dataset's stats (computed from its actions when absent) and the mask: grippers
    pass through (OpenVLA's convention), unless their values leave [-1, 1], which clipping would destroy."""
    action = np.asarray(dataset.action, np.float64)
    stats = dataset.stats.get(ACTION_FEATURE, {}) if dataset.stats else {}
    q01 = np.asarray(stats["q01"], np.float64) if "q01" in stats else np.quantile(action, 0.01, axis=0)
    q99 = np.asarray(stats["q99"], np.float64) if "q99" in stats else np.quantile(action, 0.99, axis=0)
    dim = len(dataset.action_names)
    if q01.shape != (dim,) or q99.shape != (dim,) or action.ndim != 2 or action.shape[1] != dim:
        raise PolicyError(
            f"{dataset.root}: action statistics and actions do not have the {dim} dims of "
            f"{list(dataset.action_names)}; re-convert the dataset"
        )
    outside = np.any(np.abs(action) > 1.0, axis=0) if action.size else np.zeros(dim, bool)
    mask = default_action_mask(tuple(dataset.action_names)) | outside
    extra = {k: np.asarray(stats[k], np.float64) for k in ("mean", "std", "min", "max") if k in stats}
    return ActionNorm(q01, q99, mask, extra)


def action_token_ids(actions: np.ndarray, norm: ActionNorm, vocab_size: int, num_bins: int) -> np.ndarray:
    """Physical actions (..., D) -> vocabulary ids (..., D) int64, exactly as OpenVLA's ActionTokenizer:
    normalize (masked dims), clip to [-1, 1], digitize against the bin edges (1..num_bins), id = V - digitized."""
    x = normalize(actions, norm.q01, norm.q99, norm.mask)
    x = np.clip(x, -1.0, 1.0)  # unmasked dims are clipped too (the tokenizer clips every dim)
    return vocab_size - np.digitize(x, bin_edges(num_bins)).astype(np.int64)


def encode_example(
    processor: Any,
    instruction: str,
    image: np.ndarray,
    camera: str,
    action_ids: np.ndarray,
    suffix_id: int | None,
    eos_id: int,
) -> dict[str, torch.Tensor]:
    """One training example: input_ids, attention_mask, labels (L,) int64 and pixel_values (1, C, H, W).

    The ids are the inference prompt (with its trailing token), the D action ids, then `eos_id`.
    """
    prompt = format_prompt(instruction)
    inputs = model_inputs(processor, prompt, to_pil(image, camera), suffix_id, torch.device("cpu"), torch.float32)
    target = torch.as_tensor(np.append(action_ids, eos_id), dtype=torch.long)
    input_ids = torch.cat([inputs["input_ids"][0], target])
    labels = torch.full_like(input_ids, IGNORE_INDEX)
    labels[-target.numel() :] = target
    return {
        "input_ids": input_ids,
        "attention_mask": torch.ones_like(input_ids),
        "labels": labels,
        "pixel_values": inputs["pixel_values"],
    }


def collate(examples: list[dict[str, torch.Tensor]], pad_id: int) -> dict[str, torch.Tensor]:
    """Right-pad ids with `pad_id` (attention 0, labels -100) and stack the images; shapes (B, L), (B, C, H, W)."""
    length = max(e["input_ids"].numel() for e in examples)

    def pad(key: str, value: int) -> torch.Tensor:
        return torch.stack(
            [torch.nn.functional.pad(e[key], (0, length - e[key].numel()), value=value) for e in examples]
        )

    return {
        "input_ids": pad("input_ids", pad_id),
        "attention_mask": pad("attention_mask", 0),
        "labels": pad("labels", IGNORE_INDEX),
        "pixel_values": torch.cat([e["pixel_values"] for e in examples]),
    }


class ExampleSource:
    """Training examples of one dataset for one checkpoint's processor and vocabulary, built on demand."""

    def __init__(
        self,
        dataset: FrameDataset,
        processor: Any,
        camera: str,
        norm: ActionNorm,
        vocab_size: int,
        num_bins: int,
        suffix_id: int | None,
    ) -> None:
        if camera not in dataset.images:
            raise PolicyError(f"{dataset.root} has no images from camera {camera!r}; it has {sorted(dataset.images)}")
        tokenizer = processor.tokenizer
        self.dataset, self.processor, self.camera, self.suffix_id = dataset, processor, camera, suffix_id
        self.action_ids = action_token_ids(dataset.action, norm, vocab_size, num_bins)  # (N, D)
        self.eos_id = int(tokenizer.eos_token_id)
        self.pad_id = int(tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id)

    def __len__(self) -> int:
        return len(self.dataset)

    def example(self, i: int) -> dict[str, torch.Tensor]:
        ds = self.dataset
        instruction = ds.tasks[int(ds.task_index[i])]
        return encode_example(
            self.processor,
            instruction,
            ds.images[self.camera][i],
            self.camera,
            self.action_ids[i],
            self.suffix_id,
            self.eos_id,
        )

    def batch(self, indices: np.ndarray) -> dict[str, torch.Tensor]:
        return collate([self.example(int(i)) for i in indices], self.pad_id)


def batch_indices(step: int, batch_size: int, n: int, seed: int) -> np.ndarray:
    """Frame indices of optimizer step `step` (0-based): epoch-wise shuffles, a pure function of
    (seed, step), so a resumed run draws exactly the batches the uninterrupted run would have."""
    positions = step * batch_size + np.arange(batch_size)
    epochs, offsets = np.divmod(positions, n)
    out = np.empty(batch_size, np.int64)
    for epoch in np.unique(epochs):
        perm = np.random.default_rng([seed, int(epoch)]).permutation(n)
        out[epochs == epoch] = perm[offsets[epochs == epoch]]
    return out
