"""The policy backend interface: one observation in, one action chunk out.

`vla_node` knows nothing else about a model. A backend is built once (heavy loading outside any
callback), then `infer(obs)` is called from the node's inference thread, one at a time. Adapting
another policy family (a LeRobot pi0 / pi0.5 / SmolVLA policy, say) means writing one class with
these two members: `spec` and `infer`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

import numpy as np

from ros2_vla.errors import PolicyError

MAX_INSTRUCTION_CHARS = 512  # longer instructions are refused (vla_node's max_instruction_chars by default)


@dataclass(frozen=True)
class Observation:
    """What the robot saw and felt at one instant, already decoded from messages."""

    stamp: float  # [s] capture time of the oldest frame used (the chunk's header stamp)
    images: dict[str, np.ndarray]  # camera name -> (H, W, 3) uint8 RGB, in the config's camera order
    state: np.ndarray  # proprioception, float32 (S,): arm joints (then grippers) in config order
    instruction: str  # non-empty natural-language instruction


@dataclass(frozen=True)
class PolicySpec:
    """What a backend needs and what its chunks look like; fixed once the model is loaded."""

    name: str  # backend and model id, e.g. "flow:models/franka_default" (goes into ActionChunk.policy)
    cameras: tuple[str, ...]  # camera names the model consumes, in its input order
    image_size: tuple[int, int]  # (height, width) the backend resizes to
    action_space: str  # ee_delta | ee_absolute | joint_position | joint_delta
    dimension_names: tuple[str, ...]  # D
    horizon: int  # H steps per chunk
    dt: float  # [s] between steps
    max_instruction_chars: int = MAX_INSTRUCTION_CHARS  # longer instructions are refused, not truncated silently


@dataclass(frozen=True)
class PolicyOutput:
    """One chunk, in the fields of the ActionChunk message the bridge decodes."""

    values: np.ndarray = field(default_factory=lambda: np.zeros(0, np.float32))  # (H, D) continuous, or empty
    tokens: np.ndarray = field(default_factory=lambda: np.zeros(0, np.uint16))  # (H, D) bin indices, or empty
    num_bins: int = 0  # with tokens
    low: np.ndarray = field(default_factory=lambda: np.zeros(0, np.float32))  # (D,) physical value at -1
    high: np.ndarray = field(default_factory=lambda: np.zeros(0, np.float32))  # (D,) physical value at +1
    normalized: np.ndarray = field(default_factory=lambda: np.zeros(0, bool))  # (D,) dims mapped via low/high
    inference_time: float | None = None  # [s] the model's own time when known (a server's infer_ms); None: measured
    frozen_steps: int = 0  # leading steps kept equal to the previous chunk's (real-time chunking)


def check_instruction(text: str, max_chars: int) -> str:
    """The instruction as given, or PolicyError when it is empty or over `max_chars` (never truncated)."""
    if not isinstance(text, str) or not text.strip():
        raise PolicyError("instruction is empty; send a non-empty instruction")
    if len(text) > max_chars:
        raise PolicyError(f"instruction is {len(text)} characters long; the limit is {max_chars}")
    return text


class Policy(Protocol):
    """A policy backend: its `spec`, and `infer` from one observation to one chunk."""

    spec: PolicySpec

    def infer(self, obs: Observation) -> PolicyOutput:
        """One chunk for `obs`. Raises PolicyError (ros2_vla.errors) for input it cannot use."""
        ...

    # Optional, called when a backend has them (the flow backend's real-time chunking does):
    #   reset() -> None: a new episode begins, forget the chunks before it;
    #   observe_delay(seconds: float) -> None: one chunk's delay from its observation's stamp to its delivery.
