"""Which ids are action tokens, and the logits processor that allows only them."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from transformers import LlamaConfig, LlavaConfig, SiglipVisionConfig

from ros2_vla.actions.tokenization import bin_indices_to_token_ids, token_ids_to_bin_indices
from ros2_vla.errors import PolicyError
from ros2_vla.policies.openvla.decoding import (
    ActionTokensOnly,
    action_id_range,
    action_vocab_size,
    num_action_bins,
)
from ros2_vla.policies.openvla.tiny import build_tokenizer, tiny_config


@pytest.fixture(scope="module")
def tokenizer():
    return build_tokenizer(1024)


def _llava(text_vocab: int, **extra) -> LlavaConfig:
    config = LlavaConfig(
        vision_config=SiglipVisionConfig(hidden_size=64, num_hidden_layers=1, num_attention_heads=1),
        text_config=LlamaConfig(vocab_size=text_vocab, hidden_size=64, num_hidden_layers=1),
    )
    for key, value in extra.items():
        setattr(config, key, value)
    return config


def test_openvla_vocab_size_reverts_padding(tokenizer):
    # predict_action: vocab_size = text_config.vocab_size - pad_to_multiple_of = 32064 - 64 = 32000
    assert action_vocab_size(_llava(32064, pad_to_multiple_of=64), tokenizer, 256) == 32000


def test_vocab_size_without_padding_field_is_the_tokenizer_base_vocab(tokenizer):
    # added tokens (<image>, <pad>) come after the base vocabulary and are not counted, as in ActionTokenizer
    assert len(tokenizer) == 1026
    assert action_vocab_size(_llava(1088), tokenizer, 256) == tokenizer.vocab_size == 1024


def test_tiny_config_follows_the_openvla_layout(tokenizer):
    config = tiny_config(tokenizer)
    assert config.text_config.vocab_size == 1088  # 1026 ids padded up to a multiple of 64
    assert action_vocab_size(config, tokenizer, num_action_bins(config)) == 1024
    assert config.image_token_id == 1024  # the first added id: outside the action range 768..1023


def test_vocab_size_that_cannot_hold_the_bins_is_refused(tokenizer):
    with pytest.raises(PolicyError, match="action vocabulary size"):
        action_vocab_size(_llava(300, pad_to_multiple_of=64), tokenizer, 256)
    with pytest.raises(PolicyError, match="output ids"):
        action_vocab_size(_llava(1000), tokenizer, 256)  # tokenizer says 1024 but the model scores only 1000


def test_num_bins_default_and_from_config():
    assert num_action_bins(_llava(1088)) == 256
    assert num_action_bins(_llava(1088, n_action_bins=128)) == 128


def test_id_range_is_the_last_num_bins_ids_and_matches_tokenization():
    first, last = action_id_range(32000, 256)
    assert (first, last) == (31744, 31999)
    ids = bin_indices_to_token_ids(np.arange(256), 32000)
    assert ids.min() == first and ids.max() == last
    # every id in the range decodes to a legal bin index; the lowest id clips onto the last center (254)
    bins = token_ids_to_bin_indices(np.arange(first, last + 1), 32000, 256, strict=True)
    assert bins.min() == 0 and bins.max() == 254


def test_processor_masks_every_other_id():
    scores = torch.randn(2, 1088, generator=torch.Generator().manual_seed(0))
    scores[:, 5] = 100.0  # the unconstrained favourite is a text token
    out = ActionTokensOnly(768, 1023)(torch.zeros(2, 3, dtype=torch.long), scores.clone())
    assert torch.all(torch.isinf(out[:, :768])) and torch.all(torch.isinf(out[:, 1024:]))
    assert torch.equal(out[:, 768:1024], scores[:, 768:1024])
    best = out.argmax(dim=-1)
    assert torch.all((best >= 768) & (best <= 1023))
    assert torch.equal(best, scores[:, 768:1024].argmax(dim=-1) + 768)


def test_processor_refuses_scores_shorter_than_the_range():
    with pytest.raises(PolicyError, match="scores 500 ids"):
        ActionTokensOnly(768, 1023)(torch.zeros(1, 1, dtype=torch.long), torch.zeros(1, 500))


def test_processor_refuses_a_bad_range():
    with pytest.raises(PolicyError):
        ActionTokensOnly(10, 5)
