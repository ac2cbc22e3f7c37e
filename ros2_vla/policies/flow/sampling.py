"""Euler integration of a flow from noise (t = 1) to actions (t = 0)."""

from __future__ import annotations

from collections.abc import Callable

import torch

from ros2_vla.errors import PolicyError

Velocity = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]  # (x_t (B, H, D), t (B,)) -> v (B, H, D)


def euler_sample(velocity: Velocity, noise: torch.Tensor, steps: int) -> torch.Tensor:
    """x_{t - 1/N} = x_t - v(x_t, t) / N for t = 1, 1 - 1/N, ..., 1/N; returns x_0, same shape as `noise`.

    With x_t = t * noise + (1 - t) * actions the true velocity is noise - actions, so stepping against
    it walks from the noise to the actions.
    """
    if int(steps) != steps or steps < 1:
        raise PolicyError(f"flow steps must be a positive integer, got {steps!r}")
    x = noise
    ones = torch.ones(noise.shape[0], device=noise.device)  # float32 t even for a bf16 model
    for i in range(steps):
        t = 1.0 - i / steps  # computed, not accumulated, so the last step lands on t = 1/N exactly
        x = x - velocity(x, ones * t) / steps
    return x
