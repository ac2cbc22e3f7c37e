"""The flow-matching training loss, beside the sampler it trains (pi0 / openpi convention).

x_t = t * noise + (1 - t) * actions, target velocity u = noise - actions, loss = mean |v(x_t, t) - u|^2.
The flow time t = 0.999 * s + 0.001 with s ~ Beta(1.5, 1): skewed to t near 1 (mostly noise), the hard
part of denoising, and never exactly 0.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch

from ros2_vla.errors import PolicyError
from ros2_vla.policies.flow.model import FlowModel

BETA_ALPHA = 1.5  # s ~ Beta(1.5, 1)
T_MIN = 0.001


def sample_flow_time(
    batch_size: int, generator: torch.Generator | None = None, device: torch.device | str = "cpu"
) -> torch.Tensor:
    """(B,) flow times in [0.001, 1]. Beta(a, 1) has CDF s**a, so s = u**(1/a) samples it exactly
    (and, unlike torch.distributions.Beta, honours `generator`)."""
    where = generator.device if generator is not None else device
    u = torch.rand(batch_size, generator=generator, device=where).to(device)
    return (1.0 - T_MIN) * u ** (1.0 / BETA_ALPHA) + T_MIN


def flow_matching_loss(
    model: FlowModel, batch: Mapping[str, Any], generator: torch.Generator | None = None
) -> torch.Tensor:
    """Scalar loss for one batch.

    batch: "images" dict camera -> (B, 3, h, w) in [-1, 1] (or stacked (B, C, 3, h, w)), "state" (B, S)
    normalized, "instruction" list of B strings or TextTokens, "actions" (B, H, D) normalized.
    """
    return training_losses(model, batch, generator)["flow"]


def training_losses(
    model: FlowModel, batch: Mapping[str, Any], generator: torch.Generator | None = None, goal_weight: float = 0.0
) -> dict[str, torch.Tensor]:
    """{"flow": the flow-matching loss, "goal": mean squared error of the goal head on batch["goals"]
    (B, D) (only with `goal_weight` > 0), "total": flow + goal_weight * goal}; one prefix pass serves both."""
    missing = [k for k in ("images", "state", "instruction", "actions") if k not in batch]
    if missing:
        raise PolicyError(f"flow batch lacks {missing}")
    inputs = model.make_inputs(batch["images"], batch["state"], batch["instruction"])
    actions = batch["actions"].to(model.device)
    cfg = model.config
    if actions.shape != (inputs.state.shape[0], cfg.horizon, cfg.action_dim):
        raise PolicyError(
            f"actions have shape {tuple(actions.shape)}; expected "
            f"({inputs.state.shape[0]}, {cfg.horizon}, {cfg.action_dim})"
        )
    where = generator.device if generator is not None else model.device
    noise = torch.randn(actions.shape, generator=generator, device=where).to(model.device, actions.dtype)
    t = sample_flow_time(actions.shape[0], generator, model.device)
    tb = t[:, None, None].to(actions.dtype)
    x_t = tb * noise + (1.0 - tb) * actions
    prefix, mask = model.prefix(inputs)
    v = model.velocity(model.cache_of(prefix, mask), x_t, t)
    losses = {"flow": torch.mean((v.float() - (noise - actions).float()) ** 2)}
    losses["total"] = losses["flow"]
    if goal_weight > 0:
        if "goals" not in batch:
            raise PolicyError("goal_weight > 0 needs batch['goals'] (training.goals.goal_targets)")
        goals = batch["goals"].to(model.device)
        losses["goal"] = torch.mean((model.predict_goal(prefix, mask).float() - goals.float()) ** 2)
        losses["total"] = losses["flow"] + goal_weight * losses["goal"]
    return losses
