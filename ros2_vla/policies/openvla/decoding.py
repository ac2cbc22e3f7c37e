"""Greedy decoding of exactly D action tokens, constrained to the action-token ids, with a key/value cache.

OpenVLA's action tokens are the last `num_bins` ids of the language model's vocabulary (before padding):
ids V - num_bins .. V - 1, where V is `text_config.vocab_size - pad_to_multiple_of` (predict_action:
Llama 2's 32064 padded rows minus 64 = 32000). A checkpoint without `pad_to_multiple_of` counts from the
tokenizer's base vocabulary (`tokenizer.vocab_size`, added tokens excluded), which is what OpenVLA's
ActionTokenizer counted from in training.

OpenVLA itself decodes unconstrained and clips any stray id into the bin range. Here every other id is
left out of the argmax, so each of the D tokens is a valid action token whatever the model prefers; for
a well-trained model the result is the same, for an undertrained or random one it is still a legal
action. The loop is the package's own (not transformers' `generate`): the prompt and image run once
(`prefill`), then one token per step from the cache that holds them.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from ros2_vla.errors import PolicyError
from ros2_vla.policies.openvla.architecture import OpenVlaArchitecture
from ros2_vla.policies.openvla.model import OpenVlaModel


def action_vocab_size(arch: OpenVlaArchitecture, tokenizer: Any) -> int:
    """V, the vocabulary size action ids count back from (id = V - 1 - bin index)."""
    rows = int(arch.text_config.vocab_size)  # logits per step, padding included
    vocab = rows - arch.pad_to_multiple_of if arch.pad_to_multiple_of else int(tokenizer.vocab_size)
    if not arch.n_action_bins <= vocab <= rows:
        raise PolicyError(
            f"action vocabulary size {vocab} does not fit: it must hold the {arch.n_action_bins} action tokens and "
            f"be at most the model's {rows} output ids (check pad_to_multiple_of / n_action_bins in config.json)"
        )
    return vocab


def action_id_range(vocab_size: int, num_bins: int) -> tuple[int, int]:
    """First and last (inclusive) vocabulary id of an action token."""
    return vocab_size - num_bins, vocab_size - 1


def best_action_id(logits: torch.Tensor, id_range: tuple[int, int]) -> int:
    """The highest-scoring id within `id_range` of logits (vocab rows,); ties go to the lowest id."""
    first, last = id_range
    if logits.shape[-1] <= last:
        raise PolicyError(f"the model scores {logits.shape[-1]} ids but action ids go up to {last}")
    window = logits[first : last + 1]
    if not torch.isfinite(window).all():
        raise PolicyError("the model's scores of the action tokens are not finite (NaN or inf): no action")
    return first + int(torch.argmax(window))


def greedy_action_ids(model: OpenVlaModel, inputs: dict, action_dim: int, id_range: tuple[int, int]) -> np.ndarray:
    """Decode exactly `action_dim` tokens greedily within `id_range`; their ids, int64 (action_dim,).

    `inputs`: input_ids (1, T) and pixel_values (1, 3k, S, S) on the model's device.
    """
    if inputs["input_ids"].shape[0] != 1:
        raise PolicyError(f"decoding takes one observation at a time, got a batch of {inputs['input_ids'].shape[0]}")
    out = model.prefill(inputs["input_ids"], inputs["pixel_values"])
    ids = [best_action_id(out.logits[0], id_range)]
    device = inputs["input_ids"].device
    while len(ids) < action_dim:
        out = model.step(torch.tensor([[ids[-1]]], device=device), out.cache)
        ids.append(best_action_id(out.logits[0], id_range))
    return np.asarray(ids, dtype=np.int64)
