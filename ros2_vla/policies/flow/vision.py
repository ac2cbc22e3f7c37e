"""Image tokens, trained from scratch: a convolutional stem, then ViT blocks per camera.

The stem replaces a ViT's single patchify convolution by stride-2 3x3 convolutions for the powers of
two in `patch_size` (Xiao et al. 2021, "Early convolutions help transformers see better"), which
trains faster from scratch on small robot datasets. A patch size without a factor 4 (pi0's 14)
falls back to a plain patchify convolution.
"""

from __future__ import annotations

import torch
from torch import nn

from ros2_vla.policies.flow.config import FlowConfig
from ros2_vla.policies.flow.layers import SelfAttentionBlock

VISION_HEAD_DIM = 64


def _stride2_convs(patch_size: int) -> int:
    """How many stride-2 3x3 convolutions precede the final patchify conv: one per factor 2, keeping
    the last for the patchify itself."""
    twos = 0
    while patch_size % 2 == 0:
        patch_size //= 2
        twos += 1
    return max(0, twos - 1)


class ConvStem(nn.Sequential):
    """(B, 3, h, w) image in [-1, 1] -> (B, width, h / patch, w / patch) features."""

    def __init__(self, patch_size: int, width: int) -> None:
        n = _stride2_convs(patch_size)
        layers: list[nn.Module] = []
        channels_in = 3
        for i in range(n):
            channels = max(8, width >> (n - i))  # doubling to width / 2 before the patchify conv
            layers += [nn.Conv2d(channels_in, channels, 3, stride=2, padding=1, bias=False),
                       nn.GroupNorm(min(8, channels), channels), nn.GELU(approximate="tanh")]
            channels_in = channels
        rest = patch_size >> n
        layers.append(nn.Conv2d(channels_in, width, rest, stride=rest))
        super().__init__(*layers)


class VisionEncoder(nn.Module):
    """Cameras (B, C, 3, h, w) in [-1, 1] -> image tokens (B, C * P, prefix width), P patches per camera.

    All cameras share the stem and blocks (batched as B * C images); each camera's tokens then get
    that camera's learned embedding, so the prefix can tell a wrist view from a scene view.
    """

    def __init__(self, config: FlowConfig) -> None:
        super().__init__()
        self.stem = ConvStem(config.patch_size, config.vision_width)
        self.position = nn.Parameter(torch.randn(1, config.tokens_per_camera, config.vision_width) * 0.02)
        heads = max(1, config.vision_width // VISION_HEAD_DIM)
        self.blocks = nn.ModuleList(SelfAttentionBlock(config.vision_width, heads, config.mlp_ratio)
                                    for _ in range(config.vision_depth))
        self.norm = nn.LayerNorm(config.vision_width)
        self.project = nn.Linear(config.vision_width, config.width)
        self.camera = nn.Parameter(torch.randn(len(config.cameras), config.width) * 0.02)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        b, c = images.shape[:2]
        x = self.stem(images.flatten(0, 1)).flatten(2).transpose(1, 2) + self.position  # (B*C, P, Wv)
        for block in self.blocks:
            x = block(x)
        x = self.project(self.norm(x)).unflatten(0, (b, c)) + self.camera[None, :, None, :]  # (B, C, P, W)
        return x.flatten(1, 2)
