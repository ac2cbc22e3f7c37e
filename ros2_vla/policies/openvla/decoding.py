"""Greedy decoding of exactly D action tokens, constrained to the action-token ids.

OpenVLA's action tokens are the last `num_bins` ids of the language model's vocabulary (before padding):
ids V - num_bins .. V - 1, where V is `text_config.vocab_size - pad_to_multiple_of` (predict_action:
Llama 2's 32064 padded rows minus 64 = 32000). A checkpoint without `pad_to_multiple_of` counts from the
tokenizer's base vocabulary (`tokenizer.vocab_size`, added tokens excluded), which is what OpenVLA's
ActionTokenizer counted from in training.

OpenVLA itself decodes unconstrained and clips any stray id into the bin range. Here every other id is set
to -inf before the argmax, so each of the D tokens is a valid action token whatever the model prefers; for a
well-trained model the result is the same, for an undertrained or random one it is still a legal action.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from transformers import GenerationConfig, LogitsProcessor, LogitsProcessorList

from ros2_vla.actions.tokenization import OPENVLA_NUM_BINS
from ros2_vla.errors import PolicyError


def num_action_bins(config: Any) -> int:
    """Bins per action dimension: the config's `n_action_bins` (OpenVLA's field), else OpenVLA's 256."""
    return int(getattr(config, "n_action_bins", None) or OPENVLA_NUM_BINS)


def action_vocab_size(config: Any, tokenizer: Any, num_bins: int) -> int:
    """V, the vocabulary size action ids count back from (id = V - 1 - bin index)."""
    text_config = config.get_text_config() if hasattr(config, "get_text_config") else config
    rows = int(text_config.vocab_size)  # logits per step, padding included
    pad = getattr(config, "pad_to_multiple_of", None)
    vocab = rows - int(pad) if pad else int(tokenizer.vocab_size)
    if not num_bins <= vocab <= rows:
        raise PolicyError(
            f"action vocabulary size {vocab} does not fit: it must hold the {num_bins} action tokens and be at "
            f"most the model's {rows} output ids (check pad_to_multiple_of / n_action_bins in config.json)"
        )
    return vocab


def action_id_range(vocab_size: int, num_bins: int) -> tuple[int, int]:
    """First and last (inclusive) vocabulary id of an action token."""
    return vocab_size - num_bins, vocab_size - 1


class ActionTokensOnly(LogitsProcessor):
    """Sets the score of every id outside [first_id, last_id] to -inf, shape (batch, vocab) in and out."""

    def __init__(self, first_id: int, last_id: int) -> None:
        if not 0 <= first_id <= last_id:
            raise PolicyError(f"bad action id range [{first_id}, {last_id}]")
        self.first_id, self.last_id = first_id, last_id

    def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor) -> torch.FloatTensor:
        if scores.shape[-1] <= self.last_id:
            raise PolicyError(f"the model scores {scores.shape[-1]} ids but action ids go up to {self.last_id}")
        out = torch.full_like(scores, float("-inf"))
        out[:, self.first_id : self.last_id + 1] = scores[:, self.first_id : self.last_id + 1]
        return out


def greedy_action_ids(
    model: Any, inputs: dict, action_dim: int, id_range: tuple[int, int], pad_id: int | None
) -> np.ndarray:
    """Generate exactly `action_dim` tokens greedily within `id_range`; returns their ids, int64 (action_dim,)."""
    generation = GenerationConfig(
        max_new_tokens=action_dim,
        min_new_tokens=action_dim,  # an end-of-sequence id can never cut the action short
        do_sample=False,
        num_beams=1,
        pad_token_id=pad_id,
    )
    out = model.generate(
        **inputs, generation_config=generation, logits_processor=LogitsProcessorList([ActionTokensOnly(*id_range)])
    )
    new = out.shape[1] - inputs["input_ids"].shape[1]  # generate returns prompt + new ids
    if new != action_dim:
        raise PolicyError(f"the model generated {new} new ids, expected exactly {action_dim} action tokens")
    return out[0, -action_dim:].detach().cpu().numpy().astype(np.int64)
