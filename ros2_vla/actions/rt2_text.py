"""RT-2's actions as a vision-language model writes them: text integers, e.g. "1 128 91 241 5 101 127 217".

RT-2 reuses its VLM's number tokens for RT-1's 256 bins: the generated text is 8 integers separated by
spaces (mode, 6 arm deltas, gripper; rt1.py has the order and bounds). A generation is parsed strictly:
anything that is not exactly 8 integers in 0..255 is refused with the text in the message, because a
half-parsed action would move the arm by a guess.
"""

from __future__ import annotations

import numpy as np

from ros2_vla.actions.rt1 import RT2_TOKENS, RT_NUM_BINS, RtAction, decode_rt2
from ros2_vla.errors import ChunkError

_SHOWN = 80  # characters of a refused text quoted in the error


def parse_action_text(text: str, count: int = RT2_TOKENS, num_bins: int = RT_NUM_BINS) -> np.ndarray:
    """The `count` integers of a generated action string, int64 (count,); ChunkError for anything else."""
    words = text.split()
    quoted = repr(text if len(text) <= _SHOWN else text[:_SHOWN] + "...")
    if len(words) != count or not all(w.isascii() and w.isdigit() for w in words):
        raise ChunkError(f"an RT-2 action is {count} integers separated by spaces, got {quoted}")
    tokens = np.array([int(w) for w in words], np.int64)
    if np.any(tokens >= num_bins):
        raise ChunkError(f"RT-2 action tokens must be 0..{num_bins - 1}, got {quoted}")
    return tokens


def decode_action_text(text: str, num_bins: int = RT_NUM_BINS) -> RtAction:
    """A generated RT-2 action string -> mode, arm deltas and gripper."""
    return decode_rt2(parse_action_text(text, RT2_TOKENS, num_bins), num_bins)


def format_action_text(tokens: np.ndarray) -> str:
    """The inverse of `parse_action_text`: "t0 t1 ... t7"."""
    return " ".join(str(int(t)) for t in np.asarray(tokens).reshape(-1))
