"""OpenVLA's prompt string and the token appended after it."""

from __future__ import annotations

import pytest
import torch
from tokenizers import Tokenizer, models
from transformers import PreTrainedTokenizerFast

from ros2_vla.errors import PolicyError
from ros2_vla.policies.openvla.inputs import append_token
from ros2_vla.policies.openvla.prompt import OPENVLA_PROMPT, format_prompt, suffix_token_id
from ros2_vla.policies.openvla.random_checkpoint import build_tokenizer


@pytest.fixture(scope="module")
def tokenizer():
    return build_tokenizer()


def test_prompt_matches_openvla_readme():
    # OpenVLA README / deploy.py: f"In: What action should the robot take to {instruction.lower()}?\nOut:"
    expected = "In: What action should the robot take to pick up the red cube?\nOut:"
    assert format_prompt("Pick up the Red Cube") == expected
    assert OPENVLA_PROMPT.format(instruction="x") == "In: What action should the robot take to x?\nOut:"


def test_prompt_strips_surrounding_whitespace_only():
    assert format_prompt("  open the drawer\n") == "In: What action should the robot take to open the drawer?\nOut:"
    assert format_prompt("open  the drawer").count("  ") == 1  # inner spacing is the user's


@pytest.mark.parametrize("instruction", ["", "   ", "\n\t"])
def test_empty_instruction_is_refused(instruction):
    with pytest.raises(PolicyError, match="empty"):
        format_prompt(instruction)


def test_custom_template():
    assert format_prompt("Wave", "USER: {instruction} ASSISTANT:") == "USER: wave ASSISTANT:"


def test_auto_suffix_is_the_lone_word_start_piece(tokenizer):
    sid = suffix_token_id(tokenizer, "auto")
    assert sid == tokenizer.convert_tokens_to_ids("\u2581") == 29871  # Llama 2's id, which predict_action appends


def test_auto_suffix_is_what_a_trailing_space_tokenizes_to(tokenizer):
    # Why OpenVLA appends 29871: "Out: " (the training text before the actions) ends in the lone "▁" piece,
    # while the prompt "Out:" does not. The same holds for the test tokenizer's Llama layout.
    prompt = format_prompt("pick up the cup")
    plain = tokenizer(prompt)["input_ids"]
    spaced = tokenizer(prompt + " ")["input_ids"]
    assert spaced[:-1] == plain
    assert spaced[-1] == suffix_token_id(tokenizer, "auto")
    assert plain[-1] != spaced[-1]


def test_suffix_explicit_id_and_none(tokenizer):
    assert suffix_token_id(tokenizer, 29871) == 29871
    assert suffix_token_id(tokenizer, None) is None
    with pytest.raises(PolicyError, match="prompt suffix"):
        suffix_token_id(tokenizer, "space")


def test_auto_suffix_is_none_without_a_word_start_piece():
    word_level = Tokenizer(models.WordLevel({"<unk>": 0, "a": 1}, unk_token="<unk>"))
    plain = PreTrainedTokenizerFast(tokenizer_object=word_level)
    assert suffix_token_id(plain, "auto") is None


def test_append_token_adds_once_and_extends_the_mask():
    inputs = {"input_ids": torch.tensor([[1, 5, 6]]), "attention_mask": torch.tensor([[1, 1, 1]])}
    once = append_token(inputs, 3)
    assert once["input_ids"].tolist() == [[1, 5, 6, 3]]
    assert once["attention_mask"].tolist() == [[1, 1, 1, 1]]
    twice = append_token(once, 3)  # predict_action appends only when the prompt does not already end with it
    assert twice["input_ids"].tolist() == [[1, 5, 6, 3]]
    assert append_token(inputs, None) is inputs
