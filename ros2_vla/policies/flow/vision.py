"""Image tokens, trained from scratch: a convolutional stem, then ViT blocks per camera.

The stem replaces a ViT's single patchify convolution by stride-2 3x3 convolutions for the powers of
two in `patch_size` (Xiao et al. 2021, "Early convolutions help transformers see better"), which
trains faster from scratch on small robot datasets. A patch size without a factor 4 (pi0's 14)
falls back to a plain patchify convolution.

With `keypoints` > 0 each camera also gets one keypoint token: the instruction modulates the stem's
stride-4 features (FiLM, Perez et al. 2018) and K heatmaps are reduced to their expected image
coordinates (spatial softmax, Levine et al. 2016). A cube is a few pixels wide at 96 px: a patch
token blurs where it is, an expected coordinate over the stride-4 map does not, and FiLM lets the
words pick which cube the points follow.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ros2_vla.errors import PolicyError
from ros2_vla.policies.flow.config import FlowConfig
from ros2_vla.policies.flow.layers import SelfAttentionBlock

VISION_HEAD_DIM = 64
KEYPOINT_STEM_BLOCKS = 2  # stem blocks (stride 2 each) before the keypoint head reads the features: stride 4


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

    LAYERS_PER_BLOCK = 3  # conv, norm, activation

    def __init__(self, patch_size: int, width: int) -> None:
        n = _stride2_convs(patch_size)
        layers: list[nn.Module] = []
        channels_in = 3
        block_channels = []
        for i in range(n):
            channels = max(8, width >> (n - i))  # doubling to width / 2 before the patchify conv
            layers += [
                nn.Conv2d(channels_in, channels, 3, stride=2, padding=1, bias=False),
                nn.GroupNorm(min(8, channels), channels),
                nn.GELU(approximate="tanh"),
            ]
            channels_in = channels
            block_channels.append(channels)
        rest = patch_size >> n
        layers.append(nn.Conv2d(channels_in, width, rest, stride=rest))
        super().__init__(*layers)
        self.block_channels = tuple(block_channels)  # output channels of each stride-2 block

    def forward_tapped(self, x: torch.Tensor, blocks: int) -> tuple[torch.Tensor, torch.Tensor]:
        """(the stem's output, the features after its first `blocks` stride-2 blocks)."""
        tap = self.LAYERS_PER_BLOCK * blocks - 1
        early = x
        for i, layer in enumerate(self):
            x = layer(x)
            if i == tap:
                early = x
        return x, early


class KeypointHead(nn.Module):
    """(features (N, ch, h, w), instruction (N, width)) -> one token (N, width) from K expected image points."""

    def __init__(self, channels: int, keypoints: int, width: int) -> None:
        super().__init__()
        self.film = nn.Linear(width, 2 * channels)
        nn.init.zeros_(self.film.weight)  # start as the unmodulated features
        nn.init.zeros_(self.film.bias)
        self.conv = nn.Conv2d(channels, channels, 3, padding=1)
        self.heatmaps = nn.Conv2d(channels, keypoints, 1)
        self.log_temperature = nn.Parameter(torch.zeros(keypoints))
        self.out = nn.Sequential(nn.Linear(2 * keypoints, width), nn.GELU(approximate="tanh"), nn.Linear(width, width))

    def points(self, features: torch.Tensor, instruction: torch.Tensor) -> torch.Tensor:
        """Expected (x, y) in [-1, 1] of each heatmap: (N, K, 2)."""
        scale, shift = self.film(instruction)[:, :, None, None].chunk(2, dim=1)
        x = F.gelu(self.conv(features * (1 + scale) + shift), approximate="tanh")
        n, k, h, w = x.shape[0], self.heatmaps.out_channels, *x.shape[2:]
        logits = self.heatmaps(x).flatten(2) / self.log_temperature.exp()[None, :, None]
        weights = torch.softmax(logits.float(), dim=-1).to(x.dtype).view(n, k, h, w)
        xs = torch.linspace(-1.0, 1.0, w, device=x.device, dtype=x.dtype)
        ys = torch.linspace(-1.0, 1.0, h, device=x.device, dtype=x.dtype)
        return torch.stack([(weights.sum(2) * xs).sum(-1), (weights.sum(3) * ys).sum(-1)], dim=-1)

    def forward(self, features: torch.Tensor, instruction: torch.Tensor) -> torch.Tensor:
        return self.out(self.points(features, instruction).flatten(1))


class VisionEncoder(nn.Module):
    """Cameras (B, C, 3, h, w) in [-1, 1] -> image tokens (B, C * P, prefix width), P patches per camera.

    All cameras share the stem and blocks (batched as B * C images); each camera's tokens then get
    that camera's learned embedding, so the prefix can tell a wrist view from a scene view.
    """

    def __init__(self, config: FlowConfig) -> None:
        super().__init__()
        self.stem = ConvStem(config.patch_size, config.vision_width)
        self.keypoints = None
        if config.keypoints:
            channels = self.stem.block_channels[KEYPOINT_STEM_BLOCKS - 1]
            self.keypoints = KeypointHead(channels, config.keypoints, config.width)
        self.position = nn.Parameter(torch.randn(1, config.tokens_per_camera, config.vision_width) * 0.02)
        heads = max(1, config.vision_width // VISION_HEAD_DIM)
        self.blocks = nn.ModuleList(
            SelfAttentionBlock(config.vision_width, heads, config.mlp_ratio) for _ in range(config.vision_depth)
        )
        self.norm = nn.LayerNorm(config.vision_width)
        self.project = nn.Linear(config.vision_width, config.width)
        self.camera = nn.Parameter(torch.randn(len(config.cameras), config.width) * 0.02)

    def forward(self, images: torch.Tensor, instruction: torch.Tensor | None = None) -> torch.Tensor:
        """instruction: (B, width) pooled instruction embedding, required when the config has keypoints."""
        b, c = images.shape[:2]
        x = images.flatten(0, 1)
        points = None
        if self.keypoints is not None:
            if instruction is None:
                raise PolicyError("this vision encoder has keypoints: pass the pooled instruction embedding")
            x, early = self.stem.forward_tapped(x, KEYPOINT_STEM_BLOCKS)
            points = self.keypoints(early, instruction.repeat_interleave(c, dim=0))[:, None, :]  # (B*C, 1, W)
        else:
            x = self.stem(x)
        x = x.flatten(2).transpose(1, 2) + self.position  # (B*C, P, Wv)
        for block in self.blocks:
            x = block(x)
        x = self.project(self.norm(x))  # (B*C, P, W)
        if points is not None:
            x = torch.cat([x, points], dim=1)
        x = x.unflatten(0, (b, c)) + self.camera[None, :, None, :]  # (B, C, P (+1), W)
        return x.flatten(1, 2)
