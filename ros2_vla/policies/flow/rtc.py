"""Real-time chunking (RTC) for the flow backend: inference-time RTC (Black, Galliker, Levine 2025,
"Real-Time Execution of Action Chunking Flow Policies", arXiv 2506.07339).

While the model thinks, the robot keeps playing the previous chunk; by the time a new chunk reaches the
bridge, its first d steps (d = the delay in steps) have already been played from the old one. Sampled
freely, the new chunk can disagree with the old one there and after, and the arm jerks or switches mode
at every chunk boundary. RTC samples the new chunk as an inpainting problem, aligned in time with the
previous chunk:
- steps 0..d-1 are frozen to the previous chunk's (weight 1): they will have been played anyway;
- the rest of the overlap with the previous chunk is pulled toward it with weights decaying to 0
  (c (e^c - 1) / (e - 1), c falling linearly), so the new chunk may still change its mind later on;
- the steps past the previous chunk's end are free.
The pull is guidance during the Euler steps (pseudo-inverse guidance): from x_t the model's velocity
predicts the clean chunk x0 = x_t - t v; the weighted error W (target - x0), carried back through
d x0 / d x_t (one vector-Jacobian product through the action expert), is added to the velocity,
scaled by min(beta, (1 - tau) / (tau r^2)) with tau = 1 - t and r^2 = (1 - tau)^2 / (tau^2 + (1 - tau)^2)
(the paper's schedule; beta = 5 caps it near the noise end). The frozen steps are, in addition, held on
their noise-to-target path at every Euler step, so they come out equal to the previous chunk's: for an
ee-delta chunk, which the bridge integrates from the pose commanded at its stamp, that makes the new
chunk start exactly where the old one has taken the arm by the time it arrives.

The delay d is measured online: the caller reports each chunk's delay from its observation's stamp to
its delivery (`observe_delay`) and d covers the largest of the recent ones. When chunks are asked for
faster than they take (several in flight), each frozen step is taken from the chunk the bridge plays
then, not all from the previous one.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass

import numpy as np
import torch

from ros2_vla.errors import ConfigError
from ros2_vla.policies.flow.sampling import Velocity


@dataclass(frozen=True)
class RtcConfig:
    """Settings of real-time chunking: the guidance cap, the delay window and initial delay, the soft mask."""

    max_guidance: float = 5.0  # beta: the cap on the guidance weight (the paper's value)
    delay_window: int = 10  # recent chunk delays kept; d covers the largest
    initial_delay: float = 0.0  # [s] assumed before the first delay is measured
    soft_mask: bool = True  # pull the rest of the overlap toward the newest chunk (the paper); False: frozen steps only

    def __post_init__(self) -> None:
        if not (self.max_guidance > 0.0 and math.isfinite(self.max_guidance)):
            raise ConfigError(f"RTC max_guidance must be finite and > 0 (the paper uses 5); got {self.max_guidance}")
        if self.delay_window < 1:
            raise ConfigError(f"RTC delay_window must be >= 1; got {self.delay_window}")
        if not (self.initial_delay >= 0.0 and math.isfinite(self.initial_delay)):
            raise ConfigError(f"RTC initial_delay must be finite and >= 0 [s]; got {self.initial_delay}")


class DelayEstimate:
    """The delay [s] from an observation to its chunk's delivery: the largest of the last few measured."""

    def __init__(self, window: int, initial: float = 0.0) -> None:
        self._recent: deque[float] = deque(maxlen=window)
        self._initial = initial

    def observe(self, seconds: float) -> None:
        if math.isfinite(seconds) and seconds >= 0.0:  # a clock jump (sim reset) is no measurement
            self._recent.append(float(seconds))

    @property
    def seconds(self) -> float:
        return max(self._recent) if self._recent else self._initial


@dataclass(frozen=True)
class PreviousChunk:
    """A chunk this backend made: normalized actions (H, D), as sent."""

    stamp: float  # [s] its observation's stamp
    instruction: str
    actions: torch.Tensor  # (H, D)


class ChunkHistory:
    """The recent chunks, newest last: enough to say which one the robot plays at any step of the next."""

    def __init__(self, size: int = 32) -> None:
        self._chunks: deque[PreviousChunk] = deque(maxlen=size)

    def clear(self) -> None:
        self._chunks.clear()

    def add(self, chunk: PreviousChunk) -> None:
        if self._chunks and (
            chunk.stamp <= self._chunks[-1].stamp or chunk.instruction != self._chunks[-1].instruction
        ):
            self._chunks.clear()  # a clock that went back (a reset) or a new task: the old chunks say nothing
        self._chunks.append(chunk)

    @property
    def latest(self) -> PreviousChunk | None:
        return self._chunks[-1] if self._chunks else None

    def played_at(self, t: float, delay: float) -> PreviousChunk | None:
        """The chunk the bridge plays from time t [s]: the newest delivered by then (stamp + delay <= t)."""
        for chunk in reversed(self._chunks):
            if chunk.stamp + delay <= t + 1e-6:
                return chunk
        return None


@dataclass(frozen=True)
class Guidance:
    """What one RTC sample is pulled toward: target (H, D) and per-step weights (H,)."""

    target: torch.Tensor
    weights: torch.Tensor
    frozen: int  # leading steps with weight 1, held on the target


def prefix_weights(horizon: int, frozen: int, overlap: int) -> np.ndarray:
    """(H,) weights: 1 on steps < frozen, c (e^c - 1) / (e - 1) with c = (overlap - i) / (overlap - frozen + 1)
    on frozen <= i < overlap, 0 from `overlap` on (the previous chunk has no action there)."""
    frozen, overlap = min(frozen, overlap), min(overlap, horizon)
    w = np.zeros(horizon)
    w[:frozen] = 1.0
    i = np.arange(frozen, overlap)
    c = (overlap - i) / (overlap - frozen + 1)
    w[frozen:overlap] = c * np.expm1(c) / math.expm1(1.0)
    return w


def _step_of(chunk: PreviousChunk, t: float, dt: float) -> int:
    """Index of the step of `chunk` that runs from time t [s] (step k runs from stamp + k dt)."""
    return round((t - chunk.stamp) / dt)


def guidance_for(
    history: ChunkHistory, stamp: float, instruction: str, dt: float, delay: float, soft_mask: bool = True
) -> Guidance | None:
    """The target of the chunk for the observation at `stamp` [s], arriving `delay` [s] later, or None when
    there is nothing to continue (no earlier chunk for this instruction, or none overlapping it).

    Step i of the new chunk runs from stamp + i dt. For the steps played before it arrives (i < d, d the
    delay in steps) the target is what the bridge plays then: the step of the chunk delivered by that time
    (with one chunk in flight that is the previous chunk; with several, as when chunks are asked for
    faster than they take, each slot's own). Those are frozen. With `soft_mask` the later steps are pulled
    toward the newest chunk, softly, as far as it reaches."""
    latest = history.latest
    if latest is None or latest.instruction != instruction:
        return None
    horizon = latest.actions.shape[0]
    shift = _step_of(latest, stamp, dt)
    overlap = horizon - shift
    if shift < 0 or overlap <= 0:
        return None
    delay_steps = min(math.ceil(delay / dt - 1e-9), horizon)
    target = torch.zeros_like(latest.actions)
    frozen = 0
    for i in range(delay_steps):  # each played step from its own chunk; stop at the first unknown
        chunk = history.played_at(stamp + i * dt, delay)
        k = _step_of(chunk, stamp + i * dt, dt) if chunk is not None else horizon
        if not 0 <= k < horizon:
            break
        target[i], frozen = chunk.actions[k], i + 1
    target[frozen:overlap] = latest.actions[shift + frozen :]
    if not soft_mask:
        overlap = frozen
    weights = torch.as_tensor(prefix_weights(horizon, frozen, overlap), dtype=target.dtype, device=target.device)
    return Guidance(target, weights, frozen)


def guidance_scale(t: float, max_guidance: float) -> float:
    """min(beta, (1 - tau) / (tau r^2)) at flow time t (1: noise, 0: actions), tau = 1 - t."""
    tau = 1.0 - t
    if tau <= 0.0:
        return max_guidance
    r2 = (1.0 - tau) ** 2 / (tau**2 + (1.0 - tau) ** 2)
    return min(max_guidance, (1.0 - tau) / (tau * r2)) if r2 > 0.0 else max_guidance


def guided_euler_sample(
    velocity: Velocity, noise: torch.Tensor, steps: int, guidance: Guidance, max_guidance: float
) -> torch.Tensor:
    """`sampling.euler_sample` with the RTC pull toward guidance.target; x (B, H, D).

    The frozen steps are also held on the straight path from their noise to the target at every step
    (x_t = t noise + (1 - t) target, which ends on the target itself): guidance alone moves a chunk only as
    far as the model's prediction depends on x_t, and a model that has all but collapsed onto one chunk
    per observation barely lets it. The free steps still attend to the frozen ones in the expert."""
    x = noise
    ones = torch.ones(noise.shape[0], device=noise.device)
    weights = guidance.weights[None, :, None].to(noise.dtype)
    target = guidance.target[None].to(noise.dtype)
    d = guidance.frozen
    for i in range(steps):
        t = 1.0 - i / steps
        with torch.enable_grad():
            x_in = x.detach().requires_grad_(True)
            v = velocity(x_in, ones * t)
            x0 = x_in - t * v
            # J^T W (target - x0), J = d x0 / d x_t: one vector-Jacobian product through the expert.
            (pull,) = torch.autograd.grad(x0, x_in, grad_outputs=weights * (target - x0))
        x = x.detach() - (v.detach() - guidance_scale(t, max_guidance) * pull) / steps
        t_next = 1.0 - (i + 1) / steps
        x[:, :d] = t_next * noise[:, :d] + (1.0 - t_next) * target[:, :d]
    return x
