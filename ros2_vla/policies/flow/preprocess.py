"""Observation -> model inputs, as small frozen-dataclass steps that `FlowPolicy` composes in order.

Each step checks what it consumes and raises PolicyError naming the camera, field and fix.
The same steps serve training (`images_to_tensor` on a batch of frames), so a model never sees
pixels scaled differently at run time than it was trained on.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from ros2_vla.errors import PolicyError
from ros2_vla.policies.base import Observation, check_instruction
from ros2_vla.policies.flow.norm import NormStats
from ros2_vla.policies.flow.proprio import TcpFeatures, model_state


def images_to_tensor(frames: np.ndarray | torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """uint8 RGB frames (..., H, W, 3) -> float32 (..., 3, h, w) in [-1, 1], resized (bilinear, antialiased)
    to `size` = (h, w) when they differ. The model's pixel scale: 0 -> -1, 255 -> +1."""
    x = torch.as_tensor(frames)
    lead = x.shape[:-3]
    x = x.reshape(-1, *x.shape[-3:]).permute(0, 3, 1, 2).float().div_(127.5).sub_(1.0)
    if tuple(x.shape[-2:]) != tuple(size):
        x = F.interpolate(x, size=tuple(size), mode="bilinear", align_corners=False, antialias=True)
    return x.reshape(*lead, *x.shape[1:])


@dataclass(frozen=True)
class CameraImages:
    """Observation images -> (1, C, 3, h, w) in the model's camera order; extra cameras are ignored."""

    cameras: tuple[str, ...]
    size: tuple[int, int]  # (height, width) [px]

    def __call__(self, images: Mapping[str, np.ndarray]) -> torch.Tensor:
        missing = [c for c in self.cameras if c not in images]
        if missing:
            raise PolicyError(
                f"observation lacks cameras {missing}; this model needs {list(self.cameras)} (got {sorted(images)})"
            )
        for name in self.cameras:
            _check_frame(name, images[name])
        stacked = [images_to_tensor(np.ascontiguousarray(images[c]), self.size) for c in self.cameras]
        return torch.stack(stacked)[None]


def _check_frame(name: str, frame: object) -> None:
    if not isinstance(frame, np.ndarray):
        raise PolicyError(f"camera {name!r}: image must be a numpy array, got {type(frame).__name__}")
    if frame.dtype != np.uint8:
        raise PolicyError(f"camera {name!r}: image dtype is {frame.dtype}, expected uint8 RGB (convert it first)")
    if frame.ndim != 3 or frame.shape[2] != 3 or frame.shape[0] < 1 or frame.shape[1] < 1:
        raise PolicyError(f"camera {name!r}: image shape is {frame.shape}, expected (H, W, 3) RGB")


@dataclass(frozen=True)
class StateVector:
    """Observation state (S,) -> (1, S') float32: z-scores, then the TCP features of a tcp_state model."""

    norm_stats: NormStats
    tcp: TcpFeatures | None = None

    def __call__(self, state: np.ndarray) -> torch.Tensor:
        s = np.asarray(state)
        n = self.norm_stats.state.mean.size
        if s.shape != (n,):
            raise PolicyError(f"state has shape {s.shape}, this model takes ({n},) (arm joints, then grippers)")
        if not np.issubdtype(s.dtype, np.floating) or not np.all(np.isfinite(s)):
            raise PolicyError(f"state must be finite floats, got dtype {s.dtype} with values {s}")
        return torch.from_numpy(model_state(s, self.norm_stats, self.tcp))[None]


@dataclass(frozen=True)
class Instruction:
    """Observation instruction -> [instruction], refusing empty or over-long text (never truncating)."""

    max_chars: int

    def __call__(self, text: str) -> list[str]:
        return [check_instruction(text, self.max_chars)]


def check_observation(obs: object) -> Observation:
    if not isinstance(obs, Observation):
        raise PolicyError(f"infer takes an Observation, got {type(obs).__name__}")
    if not isinstance(obs.images, Mapping):
        raise PolicyError(f"observation images must be a dict camera -> array, got {type(obs.images).__name__}")
    return obs
