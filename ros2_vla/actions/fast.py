"""FAST action tokens (pi0-FAST, arXiv 2501.09747) to a continuous chunk, and back.

A FAST tokenizer compresses an action chunk (H steps x D dims, normalized) in three steps:
1. a DCT-II (orthonormal) along time, per dimension: (H, D) coefficients, row k = frequency k;
2. the coefficients times `scale` (default 10), rounded to integers, flattened row by row (every
   dimension's lowest frequency first), shifted by `-min_token` and written as the characters
   chr(0), chr(1), ... of one string;
3. that string byte-pair encoded by the tokenizer's own vocabulary (a `tokenizers` BPE).
Decoding runs it backwards: BPE-decode to the string, ord() + min_token, reshape to (H, D), divide
by `scale`, inverse DCT. `FastTokenizer.load` reads a tokenizer folder as physical-intelligence/fast
publishes it (tokenizer.json, and processor_config.json with scale and min_token).

The chunk stays normalized: the policy's statistics map it to physical units afterwards, as for any
continuous chunk. H and D are not in the tokens: the caller says them.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np

from ros2_vla.errors import ChunkError


@lru_cache(maxsize=32)
def dct_matrix(n: int) -> np.ndarray:
    """The orthonormal DCT-II matrix (n, n): coefficients = M @ x; its transpose is the inverse."""
    k, t = np.meshgrid(np.arange(n), np.arange(n), indexing="ij")
    m = np.sqrt(2.0 / n) * np.cos(np.pi * (2 * t + 1) * k / (2 * n))
    m[0] /= np.sqrt(2.0)
    m.setflags(write=False)
    return m


def coefficients_to_chunk(coefficients: np.ndarray, scale: float) -> np.ndarray:
    """Integer coefficients (H, D) -> normalized chunk (H, D), float64."""
    return dct_matrix(coefficients.shape[0]).T @ (np.asarray(coefficients, np.float64) / scale)


def chunk_to_coefficients(chunk: np.ndarray, scale: float) -> np.ndarray:
    """Normalized chunk (H, D) -> rounded, scaled DCT coefficients (H, D), int64."""
    chunk = np.asarray(chunk, np.float64)
    return np.around(dct_matrix(chunk.shape[0]) @ chunk * scale).astype(np.int64)


@dataclass(frozen=True)
class FastTokenizer:
    """A FAST tokenizer: its BPE (a `tokenizers.Tokenizer`), scale and min_token."""

    bpe: Any  # tokenizers.Tokenizer over the characters chr(0)..chr(vocab range)
    scale: float = 10.0
    min_token: int = 0  # the smallest integer coefficient the vocabulary covers

    @classmethod
    def load(cls, folder: str | Path) -> FastTokenizer:
        """tokenizer.json and processor_config.json (scale, min_token) of a FAST tokenizer folder."""
        from tokenizers import Tokenizer

        folder = Path(folder)
        try:
            config = json.loads((folder / "processor_config.json").read_text())
            bpe = Tokenizer.from_file(str(folder / "tokenizer.json"))
        except (OSError, ValueError, Exception) as exc:  # tokenizers raises its own Exception type
            raise ChunkError(f"{folder} is not a FAST tokenizer folder ({type(exc).__name__}: {exc})") from exc
        return cls(bpe, float(config.get("scale", 10.0)), int(config.get("min_token", 0)))

    def decode(self, ids: list[int] | np.ndarray, horizon: int, action_dim: int) -> np.ndarray:
        """Token ids -> normalized chunk float64 (horizon, action_dim); ChunkError when they do not make one."""
        ids = [int(i) for i in np.asarray(ids).reshape(-1)]
        size = self.bpe.get_vocab_size()
        if any(not 0 <= i < size for i in ids):
            raise ChunkError(f"FAST token ids must be in 0..{size - 1}, got {ids}")
        text = self.bpe.decode(ids, skip_special_tokens=False)
        values = np.array([ord(c) for c in text], np.int64) + self.min_token
        if values.size != horizon * action_dim:
            raise ChunkError(
                f"FAST tokens decode to {values.size} coefficients, not {horizon} x {action_dim}: "
                "a cut-off or foreign token sequence"
            )
        return coefficients_to_chunk(values.reshape(horizon, action_dim), self.scale)

    def encode(self, chunk: np.ndarray) -> list[int]:
        """Normalized chunk (H, D) -> token ids (the inverse of `decode`, up to the rounding of step 2)."""
        coefficients = chunk_to_coefficients(chunk, self.scale).reshape(-1) - self.min_token
        if np.any(coefficients < 0):
            raise ChunkError("the chunk has a coefficient below the tokenizer's min_token: outside its range")
        return self.bpe.encode("".join(map(chr, coefficients)), add_special_tokens=False).ids
