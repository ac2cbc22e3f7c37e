"""OpenVLA's prompt, and the one token it appends after the prompt's last word.

The prompt is `In: What action should the robot take to {instruction.lower()}?\\nOut:` (OpenVLA's
README, `vla-scripts/deploy.py`; the Vicuna-based v01 models used a chat template instead).

The trailing token: in training the action tokens followed "Out:" after a space, and Llama's SentencePiece
tokenizer writes that space as the lone word-start piece "▁" (id 29871 in Llama 2's vocabulary).
Tokenizing the prompt alone ends at ":", so `predict_action` appends 29871 when the prompt does not
already end with it. The id is the tokenizer's, not a constant: here it is looked up as the id of "▁" in
the checkpoint's own vocabulary, which gives 29871 for Llama 2 and the right id for any SentencePiece-style
tokenizer; a tokenizer without that piece (byte-level BPE) gets nothing appended unless told an id.

The image needs no placeholder in the text: the model puts its patches right after <s> (model.py).
"""

from __future__ import annotations

from typing import Any

from ros2_vla.errors import PolicyError

OPENVLA_PROMPT = "In: What action should the robot take to {instruction}?\nOut:"
SENTENCEPIECE_SPACE = "\u2581"  # "▁", SentencePiece's word-start marker


def format_prompt(instruction: str, template: str = OPENVLA_PROMPT) -> str:
    """The model's prompt for an instruction: stripped of surrounding whitespace and lower-cased, as OpenVLA."""
    text = instruction.strip()
    if not text:
        raise PolicyError("the instruction is empty: say what the robot should do")
    return template.format(instruction=text.lower())


def suffix_token_id(tokenizer: Any, suffix: str | int | None = "auto") -> int | None:
    """The id appended after the prompt: 'auto' = the vocabulary's "▁" if it has one; an int as given; None = none."""
    if suffix is None:
        return None
    if isinstance(suffix, int) and not isinstance(suffix, bool):
        return suffix
    if suffix != "auto":
        raise PolicyError(f"prompt suffix must be 'auto', a token id or None, got {suffix!r}")
    vocab = tokenizer.get_vocab()
    return vocab.get(SENTENCEPIECE_SPACE)
