"""The random OpenVLA-convention checkpoints: tiny on disk, 7B-shaped on the meta device (no memory)."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from PIL import Image
from transformers import AutoModelForImageTextToText

from ros2_vla.policies.openvla.decoding import action_id_range, action_vocab_size
from ros2_vla.policies.openvla.published_stats import bridge_orig_norm_stats
from ros2_vla.policies.openvla.tiny import (
    build_processor,
    build_tiny_checkpoint,
    build_tokenizer,
    openvla_7b_shapes,
)


def _billions(module) -> float:
    return sum(p.numel() for p in module.parameters()) / 1e9


def test_tiny_checkpoint_dir_holds_config_weights_processor_and_stats(tmp_path):
    path = build_tiny_checkpoint(tmp_path / "ck")
    names = {p.name for p in path.iterdir()}
    assert {"config.json", "model.safetensors", "tokenizer.json", "processor_config.json"} <= names
    config = json.loads((path / "config.json").read_text())
    assert config["norm_stats"] == bridge_orig_norm_stats()
    assert config["pad_to_multiple_of"] == 64 and config["n_action_bins"] == 256


def test_tiny_checkpoint_takes_custom_norm_stats(tmp_path):
    stats = {"a": {"action": {"q01": [0.0], "q99": [1.0]}}, "b": {"action": {"q01": [0.0], "q99": [2.0]}}}
    config = json.loads((build_tiny_checkpoint(tmp_path / "ck", stats) / "config.json").read_text())
    assert config["norm_stats"] == stats


def test_text_never_produces_action_ids():
    # As in Llama 2, the action ids are base-vocabulary ids ordinary text does not use.
    tokenizer = build_tokenizer(1024)
    first, _ = action_id_range(tokenizer.vocab_size, 256)
    text = "In: What action should the robot take to put the carrot on the plate, then open the drawer?\nOut: "
    assert max(tokenizer(text)["input_ids"]) < first


def test_tokenizer_needs_room_for_the_action_bins():
    with pytest.raises(ValueError, match="base_vocab_size"):
        build_tokenizer(300)


def test_openvla_7b_shapes_match_the_published_model():
    tokenizer = build_tokenizer(32000)
    config = openvla_7b_shapes(tokenizer)
    assert len(tokenizer) == 32002 and config.text_config.vocab_size == 32064  # OpenVLA's padded embedding
    assert action_vocab_size(config, tokenizer, 256) == 32000
    assert config.image_seq_length == 256  # 224 px / 14 px patches, OpenVLA's 256 patch tokens
    with torch.device("meta"):  # shapes only: no 15 GB of weights
        model = AutoModelForImageTextToText.from_config(config, dtype=torch.bfloat16)
    assert _billions(model.model.language_model) + _billions(model.lm_head) == pytest.approx(6.74, abs=0.01)
    assert _billions(model.model.vision_tower) == pytest.approx(0.6, abs=0.05)
    assert _billions(model) == pytest.approx(7.4, abs=0.1)


def test_7b_processor_makes_256_image_tokens():
    tokenizer = build_tokenizer(32000)
    processor = build_processor(tokenizer, 224, 14)
    batch = processor(text="<image>In: hi?\nOut:", images=Image.fromarray(np.zeros((256, 256, 3), np.uint8)),
                      return_tensors="pt")
    assert batch["pixel_values"].shape == (1, 3, 224, 224)
    assert int((batch["input_ids"] == tokenizer.convert_tokens_to_ids("<image>")).sum()) == 256
