"""Discrete action tokens and [-1, 1] normalization, exactly as OpenVLA does them.

OpenVLA's scheme (prismatic `ActionTokenizer` and `predict_action`):

- `num_bins` (256) uniform bin *edges* over [-1, 1]: `np.linspace(-1, 1, num_bins)`. The bin centers are the
  midpoints of neighbouring edges, so there are `num_bins - 1` (255) centers, spacing `2 / (num_bins - 1)`.
- Encoding clips an action to [-1, 1] and digitizes it against the edges (1..num_bins); the token id is
  `vocab_size - digitized`, i.e. the action tokens are the last `num_bins` ids of the vocabulary.
- Decoding takes `vocab_size - token_id - 1`, clips it to [0, num_bins - 2] (the digitize overflow of exactly
  +1 lands on the last center) and looks up the bin center.
- Normalized dims map to physical units by `0.5 * (a + 1) * (high - low) + low` with low = q01 and
  high = q99 of the training data; dims whose mask is False (the gripper in `bridge_orig`) pass through as
  the bin center itself. Training normalized with `clip(2 * (x - low) / (high - low + 1e-8) - 1, -1, 1)`.

What an ActionChunk's `tokens` field holds: **bin indices** (0 .. num_bins - 1), not vocabulary ids. The
vocabulary id of an action token depends on the language model's tokenizer (32000 - k for OpenVLA's Llama 2,
other numbers for Qwen-based variants), while the bridge must decode a chunk with no knowledge of the model.
So the policy node converts ids once with `token_ids_to_bin_indices(ids, vocab_size, num_bins)` and the chunk
carries indices that mean the same for every model with the same `num_bins`. Index `num_bins - 1` is legal (it
is what digitizing exactly +1 gives) and decodes, as in OpenVLA, to the last center.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np

from ros2_vla.errors import ChunkError

OPENVLA_NUM_BINS = 256
NORMALIZE_EPS = 1e-8  # OpenVLA's guard against high == low when normalizing


def _check_num_bins(num_bins: int) -> int:
    if int(num_bins) != num_bins or num_bins < 2:
        raise ChunkError(f"num_bins must be an integer >= 2 (OpenVLA uses 256), got {num_bins}")
    return int(num_bins)


@lru_cache(maxsize=16)
def bin_edges(num_bins: int = OPENVLA_NUM_BINS) -> np.ndarray:
    """Uniform bin edges over [-1, 1], shape (num_bins,), read-only."""
    edges = np.linspace(-1.0, 1.0, _check_num_bins(num_bins))
    edges.setflags(write=False)
    return edges


@lru_cache(maxsize=16)
def bin_centers(num_bins: int = OPENVLA_NUM_BINS) -> np.ndarray:
    """Midpoints of neighbouring edges in [-1, 1], shape (num_bins - 1,), read-only."""
    edges = bin_edges(num_bins)
    centers = (edges[:-1] + edges[1:]) / 2.0
    centers.setflags(write=False)
    return centers


def tokens_to_normalized(bin_indices: np.ndarray, num_bins: int = OPENVLA_NUM_BINS) -> np.ndarray:
    """Bin indices (any shape, integers) to normalized actions in [-1, 1], same shape, float64.

    Indices above the last center clip to it, as in OpenVLA; negative indices are an error.
    """
    centers = bin_centers(num_bins)
    idx = np.asarray(bin_indices)
    if idx.size and (idx.dtype.kind not in "iu" or idx.min() < 0):
        raise ChunkError(f"bin indices must be non-negative integers, got dtype {idx.dtype} min {idx.min()}")
    return centers[np.minimum(idx.astype(np.intp), centers.shape[0] - 1)]


def normalized_to_tokens(x: np.ndarray, num_bins: int = OPENVLA_NUM_BINS) -> np.ndarray:
    """Normalized actions (any shape) to bin indices in [0, num_bins - 2], same shape, uint16.

    Clips to [-1, 1] and digitizes against the edges as OpenVLA's tokenizer does; decoding the result gives
    the center of the bin x fell in, so the round trip is within half a bin (1 / (num_bins - 1)).
    """
    edges = bin_edges(num_bins)
    x = np.asarray(x, dtype=np.float64)
    if not np.all(np.isfinite(x)):
        raise ChunkError("cannot tokenize NaN or infinite actions")
    digitized = np.digitize(np.clip(x, -1.0, 1.0), edges)  # 1 .. num_bins
    return np.clip(digitized - 1, 0, num_bins - 2).astype(np.uint16)


def token_ids_to_bin_indices(
    token_ids: np.ndarray, vocab_size: int, num_bins: int = OPENVLA_NUM_BINS, strict: bool = False
) -> np.ndarray:
    """Language-model token ids (any shape) to bin indices in [0, num_bins - 2], same shape, uint16.

    `vocab_size` is the tokenizer's vocabulary without padding (OpenVLA: text vocab 32064 - pad 64 = 32000).
    OpenVLA clips ids outside the action range silently; with `strict=True` an id that is not one of the last
    `num_bins` ids (a text token the model emitted instead of an action) raises ChunkError instead.
    """
    num_bins = _check_num_bins(num_bins)
    ids = np.asarray(token_ids, dtype=np.int64)
    if strict and ids.size and (ids.min() < vocab_size - num_bins or ids.max() > vocab_size - 1):
        raise ChunkError(
            f"token ids {ids.min()}..{ids.max()} are not all action tokens "
            f"[{vocab_size - num_bins}, {vocab_size - 1}]; the model emitted non-action tokens"
        )
    return np.clip(vocab_size - ids - 1, 0, num_bins - 2).astype(np.uint16)


def bin_indices_to_token_ids(bin_indices: np.ndarray, vocab_size: int) -> np.ndarray:
    """Inverse of `token_ids_to_bin_indices` on the action range, int64: id = vocab_size - 1 - index."""
    return vocab_size - 1 - np.asarray(bin_indices, dtype=np.int64)


def unnormalize(x: np.ndarray, low: np.ndarray, high: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Normalized actions (..., D) to physical units (..., D), float64: OpenVLA's q01/q99 map.

    `low`, `high`: physical value at -1 and +1, shape (D,); `mask`: bool (D,), False dims pass through.
    """
    x = np.asarray(x, dtype=np.float64)
    low = np.asarray(low, dtype=np.float64)
    high = np.asarray(high, dtype=np.float64)
    return np.where(np.asarray(mask, dtype=bool), 0.5 * (x + 1.0) * (high - low) + low, x)


def normalize(
    x: np.ndarray, low: np.ndarray, high: np.ndarray, mask: np.ndarray, eps: float = NORMALIZE_EPS
) -> np.ndarray:
    """Physical actions (..., D) to [-1, 1] (..., D), float64, as OpenVLA normalized its training data.

    Masked dims are clipped to [-1, 1]; dims whose mask is False pass through untouched.
    """
    x = np.asarray(x, dtype=np.float64)
    low = np.asarray(low, dtype=np.float64)
    high = np.asarray(high, dtype=np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):  # only unmasked dims may have high == low
        scaled = np.clip(2.0 * (x - low) / (high - low + eps) - 1.0, -1.0, 1.0)
    return np.where(np.asarray(mask, dtype=bool), scaled, x)
