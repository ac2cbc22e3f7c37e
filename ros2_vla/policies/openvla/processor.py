"""Prompt and frame to model inputs: the checkpoint's tokenizer beside OpenVLA's image steps.

The tokenizer comes from the checkpoint's own files (tokenizer.json / tokenizer.model and
tokenizer_config.json: Llama 2's SentencePiece vocabulary, `<PAD>` added at 32000) through transformers'
AutoTokenizer, which needs no remote code for it. `save` copies the processor files unchanged, so a
fine-tuned checkpoint tokenizes exactly as its base.
"""

from __future__ import annotations

import logging
import shutil
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

import torch
from PIL import Image

from ros2_vla.errors import PolicyError, first_line
from ros2_vla.policies.openvla.architecture import OpenVlaArchitecture
from ros2_vla.policies.openvla.image_processing import PREPROCESSOR_FILE, OpenVlaImageProcessor, load_image_processor

PROCESSOR_FILES = (
    PREPROCESSOR_FILE,
    "processor_config.json",
    "tokenizer.json",
    "tokenizer.model",
    "tokenizer_config.json",
    "special_tokens_map.json",
    "added_tokens.json",
)


@dataclass(frozen=True, eq=False)
class OpenVlaProcessor:
    """`processor(text=..., images=...)` -> input_ids (1, T), attention_mask (1, T), pixel_values (1, 3k, S, S)."""

    tokenizer: Any  # a transformers tokenizer (LlamaTokenizer for OpenVLA)
    image_processor: OpenVlaImageProcessor
    source: Path  # the checkpoint dir the files came from

    def __call__(self, text: str, images: Image.Image) -> dict[str, torch.Tensor]:
        ids = self.tokenizer(text, return_tensors="pt")  # adds <s> as Llama's tokenizer does
        return {
            "input_ids": ids["input_ids"],
            "attention_mask": ids["attention_mask"],
            "pixel_values": self.image_processor(images).unsqueeze(0),
        }

    def save_pretrained(self, out: str | Path) -> None:
        """Copy the processor files of the source checkpoint into `out`."""
        out = Path(out)
        out.mkdir(parents=True, exist_ok=True)
        for name in PROCESSOR_FILES:
            if (self.source / name).is_file():
                shutil.copy2(self.source / name, out / name)


@contextmanager
def _quiet_config_warning() -> Iterator[None]:
    """AutoTokenizer reads config.json as a generic config and warns that model_type 'openvla' is not its
    own; the tokenizer does not depend on it, so that one logger is silenced while the tokenizer loads."""
    log = logging.getLogger("transformers.configuration_utils")
    level = log.level
    log.setLevel(logging.ERROR)
    try:
        yield
    finally:
        log.setLevel(level)


def load_processor(path: Path, arch: OpenVlaArchitecture) -> OpenVlaProcessor:
    """The tokenizer and image steps of a checkpoint dir; PolicyError when the tokenizer cannot load."""
    from transformers import AutoTokenizer

    if not any((path / name).is_file() for name in ("tokenizer.json", "tokenizer.model")):
        raise PolicyError(f"checkpoint {path} has no tokenizer (tokenizer.json or tokenizer.model)")
    try:
        with _quiet_config_warning():
            tokenizer = AutoTokenizer.from_pretrained(path, local_files_only=True, trust_remote_code=False)
    except Exception as exc:  # transformers raises OSError, ValueError, ImportError... for a bad tokenizer
        raise PolicyError(f"cannot load the tokenizer of {path}: {first_line(exc)}") from exc
    return OpenVlaProcessor(tokenizer, load_image_processor(path, arch), path)
