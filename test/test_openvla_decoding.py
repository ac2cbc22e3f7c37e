"""Which ids are action tokens, and the constrained choice among them."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from transformers import LlamaConfig

from ros2_vla.actions.tokenization import bin_indices_to_token_ids, token_ids_to_bin_indices
from ros2_vla.errors import PolicyError
from ros2_vla.policies.openvla.architecture import OpenVlaArchitecture
from ros2_vla.policies.openvla.decoding import action_id_range, action_vocab_size, best_action_id


@pytest.fixture(scope="module")
def tokenizer():
    from ros2_vla.policies.openvla.random_checkpoint import build_tokenizer

    return build_tokenizer()  # Llama 2's layout: 32000 base ids, <PAD> added at 32000


def _arch(rows: int, pad: int = 64, bins: int = 256) -> OpenVlaArchitecture:
    return OpenVlaArchitecture(
        "dinosiglip-vit-so-224px", "llama2-7b-pure", (), 224, LlamaConfig(vocab_size=rows), pad, bins, {}
    )


def test_openvla_vocab_size_reverts_padding(tokenizer):
    # predict_action: vocab_size = text_config.vocab_size - pad_to_multiple_of = 32064 - 64 = 32000
    assert action_vocab_size(_arch(32064), tokenizer) == 32000


def test_vocab_size_without_padding_field_is_the_tokenizer_base_vocab(tokenizer):
    assert len(tokenizer) == 32001  # <PAD> is added after the base vocabulary and not counted
    assert action_vocab_size(_arch(32064, pad=0), tokenizer) == 32000


def test_vocab_size_that_cannot_hold_the_bins_is_refused(tokenizer):
    with pytest.raises(PolicyError, match="action vocabulary size"):
        action_vocab_size(_arch(300), tokenizer)
    with pytest.raises(PolicyError, match="output ids"):
        action_vocab_size(_arch(31000, pad=0), tokenizer)  # the tokenizer has 32000 but the model scores 31000


def test_id_range_is_the_last_num_bins_ids_and_matches_tokenization():
    first, last = action_id_range(32000, 256)
    assert (first, last) == (31744, 31999)
    ids = bin_indices_to_token_ids(np.arange(256), 32000)
    assert ids.min() == first and ids.max() == last
    # every id in the range decodes to a legal bin index; the lowest id clips onto the last center (254)
    bins = token_ids_to_bin_indices(np.arange(first, last + 1), 32000, 256, strict=True)
    assert bins.min() == 0 and bins.max() == 254


def test_best_action_id_ignores_every_other_id():
    scores = torch.randn(32064, generator=torch.Generator().manual_seed(0))
    scores[5] = 100.0  # the unconstrained favourite is a text token
    scores[32010] = 90.0  # and a padding row
    best = best_action_id(scores, (31744, 31999))
    assert best == 31744 + int(scores[31744:32000].argmax())


def test_best_action_id_refuses_scores_shorter_than_the_range():
    with pytest.raises(PolicyError, match="scores 500 ids"):
        best_action_id(torch.zeros(500), (31744, 31999))


def test_non_finite_scores_give_no_action():
    scores = torch.zeros(32064)
    scores[31800] = float("nan")
    with pytest.raises(PolicyError, match="not finite"):
        best_action_id(scores, (31744, 31999))
