"""AdamW with linear warmup then cosine decay (openpi's and LeRobot's pi0 recipe, sizes aside).

Weight decay applies to matrices only: biases, LayerNorm gains and learned position/kind embeddings
(1-D parameters) are left alone, as is usual for transformers.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn

BETAS = (0.9, 0.95)  # openpi's AdamW betas
FINAL_LR_FRACTION = 0.1  # cosine decays to 10 % of the peak (openpi: 2.5e-5 -> 2.5e-6)
MAX_AUTO_WARMUP = 500  # [steps]


def auto_warmup(steps: int) -> int:
    """Warmup length when none is given: a tenth of the run, at most MAX_AUTO_WARMUP steps."""
    return min(MAX_AUTO_WARMUP, steps // 10)


@dataclass
class WarmupCosine:
    """LR multiplier at a step: linear 0 -> 1 over `warmup` steps, then cosine 1 -> `final` at `total`.
    A callable object (not a lambda) so LambdaLR's state_dict holds it for resuming."""

    warmup: int
    total: int
    final: float = FINAL_LR_FRACTION

    def __call__(self, step: int) -> float:
        if step < self.warmup:
            return (step + 1) / (self.warmup + 1)
        span = max(1, self.total - self.warmup)
        progress = min(1.0, (step - self.warmup) / span)
        return self.final + (1.0 - self.final) * 0.5 * (1.0 + math.cos(math.pi * progress))


def make_optimizer(
    model: nn.Module, lr: float, weight_decay: float, warmup: int, total: int
) -> tuple[torch.optim.AdamW, torch.optim.lr_scheduler.LambdaLR]:
    """AdamW over the trainable parameters of `model` and its warmup-cosine schedule (stepped per step)."""
    params = [p for p in model.parameters() if p.requires_grad]
    groups = [
        {"params": [p for p in params if p.ndim >= 2], "weight_decay": weight_decay},
        {"params": [p for p in params if p.ndim < 2], "weight_decay": 0.0},
    ]
    optimizer = torch.optim.AdamW(groups, lr=lr, betas=BETAS)
    return optimizer, torch.optim.lr_scheduler.LambdaLR(optimizer, WarmupCosine(warmup, total))
