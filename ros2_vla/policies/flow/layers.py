"""Transformer pieces shared by the vision encoder, the prefix and the action expert.

Pre-LayerNorm blocks over (B, L, W) token tensors; attention through
`torch.nn.functional.scaled_dot_product_attention` with boolean masks (True = may attend).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn


def split_heads(x: torch.Tensor, heads: int) -> torch.Tensor:
    """(B, L, W) -> (B, heads, L, W // heads)."""
    b, n, w = x.shape
    return x.view(b, n, heads, w // heads).transpose(1, 2)


def merge_heads(x: torch.Tensor) -> torch.Tensor:
    """(B, heads, L, d) -> (B, L, heads * d)."""
    b, h, n, d = x.shape
    return x.transpose(1, 2).reshape(b, n, h * d)


class Mlp(nn.Sequential):
    """Linear, tanh-approximated GELU, linear: width -> width * ratio -> width."""

    def __init__(self, width: int, ratio: int) -> None:
        super().__init__(nn.Linear(width, width * ratio), nn.GELU(approximate="tanh"), nn.Linear(width * ratio, width))


class SelfAttentionBlock(nn.Module):
    """Bidirectional self-attention + MLP, pre-LayerNorm; `key_mask` (B, L) bool hides padding keys."""

    def __init__(self, width: int, heads: int, mlp_ratio: int) -> None:
        super().__init__()
        self.heads = heads
        self.norm1 = nn.LayerNorm(width)
        self.qkv = nn.Linear(width, 3 * width)
        self.proj = nn.Linear(width, width)
        self.norm2 = nn.LayerNorm(width)
        self.mlp = Mlp(width, mlp_ratio)

    def forward(self, x: torch.Tensor, key_mask: torch.Tensor | None = None) -> torch.Tensor:
        q, k, v = (split_heads(t, self.heads) for t in self.qkv(self.norm1(x)).chunk(3, dim=-1))
        mask = None if key_mask is None else key_mask[:, None, None, :]
        x = x + self.proj(merge_heads(F.scaled_dot_product_attention(q, k, v, attn_mask=mask)))
        return x + self.mlp(self.norm2(x))


def sinusoidal_embedding(t: torch.Tensor, dim: int, min_period: float = 4e-3, max_period: float = 4.0) -> torch.Tensor:
    """Flow time t (B,) in [0, 1] -> (B, dim) float32 sin/cos features with periods from min_period to max_period
    (pi0's choice: fine enough to tell t = 0.001 from 0.002, coarse enough to span [0, 1])."""
    half = dim // 2
    fraction = torch.linspace(0.0, 1.0, half, device=t.device, dtype=torch.float32)
    period = min_period * (max_period / min_period) ** fraction
    angle = (2 * math.pi / period)[None, :] * t.float()[:, None]
    return torch.cat([torch.sin(angle), torch.cos(angle)], dim=-1)
