"""RT-1's discrete actions (and RT-2's, their first 8 tokens), decoded to physical values.

RT-1 (google-research/robotics_transformer) predicts 11 tokens per step, one per action dimension, each
one of 256 bins. Float dimensions map a token t to `low + t / (bins - 1) * (high - low)` (the bin's lower
edge, not a center: RT-1's `RT1ActionTokenizer.detokenize`), with the bounds of RT-1's action spec. The
mode is one token that indexes RT-1's `terminate_episode` one-hot: 0 terminate, 1 arm, 2 base.

Token order (RT-1's recommended `action_order`, and the order RT-2 writes its 8 numbers in):

    mode | world_vector x y z [-1, 1] | rotation_delta roll pitch yaw [-pi/2, pi/2] | gripper [-1, 1]
         | base yaw [-pi, pi] | base x y [-1, 1]

RT-2 keeps the first 8 (mode, 6 arm deltas, gripper). The units are RT-1's own: the world vector and
gripper are normalized commands of its robot, not metres; a deployment scales them to its arm.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from ros2_vla.errors import ChunkError, PolicyDone

RT_NUM_BINS = 256
MODES = ("terminate", "arm", "base")  # terminate_episode one-hot index -> meaning


@dataclass(frozen=True)
class Field:
    """One float dimension of the layout: its name and RT-1's bounds."""

    name: str
    low: float
    high: float


ARM_FIELDS = (
    Field("x", -1.0, 1.0),
    Field("y", -1.0, 1.0),
    Field("z", -1.0, 1.0),
    Field("roll", -math.pi / 2, math.pi / 2),
    Field("pitch", -math.pi / 2, math.pi / 2),
    Field("yaw", -math.pi / 2, math.pi / 2),
    Field("gripper", -1.0, 1.0),  # gripper_closedness_action: +1 close, -1 open
)
BASE_FIELDS = (Field("base_yaw", -math.pi, math.pi), Field("base_x", -1.0, 1.0), Field("base_y", -1.0, 1.0))
RT1_TOKENS = 1 + len(ARM_FIELDS) + len(BASE_FIELDS)  # 11
RT2_TOKENS = 1 + len(ARM_FIELDS)  # 8


@dataclass(frozen=True)
class RtAction:
    """One decoded RT-1/RT-2 step."""

    mode: str  # terminate | arm | base
    arm: np.ndarray  # float64 (7,): x y z roll pitch yaw gripper in RT-1's units
    base: np.ndarray  # float64 (3,): base_yaw base_x base_y (zeros for RT-2, which has none)

    @property
    def terminate(self) -> bool:
        """The policy says the episode is over: the robot must hold."""
        return self.mode == "terminate"


def token_to_value(token: np.ndarray, low: float, high: float, num_bins: int = RT_NUM_BINS) -> np.ndarray:
    """RT-1's detokenization of float tokens 0..num_bins - 1."""
    return low + np.asarray(token, np.float64) / (num_bins - 1) * (high - low)


def value_to_token(value: np.ndarray, low: float, high: float, num_bins: int = RT_NUM_BINS) -> np.ndarray:
    """RT-1's tokenization: clip to the bounds, scale to 0..num_bins - 1, truncate."""
    x = (np.clip(np.asarray(value, np.float64), low, high) - low) / (high - low)
    return (x * (num_bins - 1)).astype(np.int64)


def _check(tokens: np.ndarray, count: int, num_bins: int) -> np.ndarray:
    tokens = np.asarray(tokens)
    if tokens.shape != (count,):
        raise ChunkError(f"expected {count} action tokens, got shape {tokens.shape}")
    if not np.issubdtype(tokens.dtype, np.integer):
        raise ChunkError(f"action tokens must be integers, got {tokens.dtype}")
    if np.any(tokens < 0) or np.any(tokens >= num_bins):
        raise ChunkError(f"action tokens must be in 0..{num_bins - 1}, got {tokens.tolist()}")
    if tokens[0] >= len(MODES):
        raise ChunkError(f"mode token {int(tokens[0])} is not 0 (terminate), 1 (arm) or 2 (base)")
    return tokens.astype(np.int64)


def _decode(tokens: np.ndarray, fields: tuple[Field, ...], num_bins: int) -> np.ndarray:
    return np.array([token_to_value(t, f.low, f.high, num_bins) for t, f in zip(tokens, fields)])


def decode_rt1(tokens: np.ndarray, num_bins: int = RT_NUM_BINS) -> RtAction:
    """11 RT-1 tokens -> mode, arm (7) and base (3); ChunkError for a wrong count or an out-of-range token."""
    tokens = _check(tokens, RT1_TOKENS, num_bins)
    arm = _decode(tokens[1:RT2_TOKENS], ARM_FIELDS, num_bins)
    return RtAction(MODES[tokens[0]], arm, _decode(tokens[RT2_TOKENS:], BASE_FIELDS, num_bins))


def decode_rt2(tokens: np.ndarray, num_bins: int = RT_NUM_BINS) -> RtAction:
    """RT-2's 8 tokens (mode, 6 arm deltas, gripper) -> the same RtAction with a zero base."""
    tokens = _check(tokens, RT2_TOKENS, num_bins)
    return RtAction(MODES[tokens[0]], _decode(tokens[1:], ARM_FIELDS, num_bins), np.zeros(len(BASE_FIELDS)))


def check_not_terminated(action: RtAction) -> RtAction:
    """The action, unless its mode ends the episode: then PolicyDone, so vla_node stops and the arm holds."""
    if action.terminate:
        raise PolicyDone("the policy ended the episode (RT-1 mode token: terminate)")
    return action


def encode_rt1(action: RtAction, num_bins: int = RT_NUM_BINS) -> np.ndarray:
    """The inverse of `decode_rt1` (up to a bin): int64 (11,)."""
    arm = [value_to_token(v, f.low, f.high, num_bins) for v, f in zip(action.arm, ARM_FIELDS)]
    base = [value_to_token(v, f.low, f.high, num_bins) for v, f in zip(action.base, BASE_FIELDS)]
    return np.array([MODES.index(action.mode), *arm, *base], np.int64)
