"""The ViT towers of OpenVLA's vision backbone in plain torch, with timm's parameter names.

OpenVLA builds its towers with timm and stores their weights under timm's names (LayerScale's `gamma`
renamed `scale_factor`), so these modules use the same names and a checkpoint loads with no key mapping.
They are written here rather than imported from timm because timm imports torchvision, whose PyPI wheels
are CUDA builds that cannot load beside a CPU torch; the arithmetic is timm's VisionTransformer:
pre-norm blocks (LayerNorm eps 1e-6, fused qkv with bias, exact GELU MLP), learned position embeddings
added to the patches only when there are registers (DINOv2's `no_embed_class`), class and register
tokens in front.

OpenVLA reads the output of the second-to-last block without the final norm and drops the prefix
tokens (timm's `get_intermediate_layers(n={depth - 2})`). The last block, the final `norm` and SigLIP's
attention-pool head are in every checkpoint and are loaded, but never run.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ros2_vla.policies.openvla.backbones import TowerSpec

LAYER_NORM_EPS = 1e-6  # timm's ViT default


class PatchEmbed(nn.Module):
    """Non-overlapping patches to tokens: (B, 3, H, W) -> (B, H/p * W/p, width)."""

    def __init__(self, patch: int, width: int) -> None:
        super().__init__()
        self.proj = nn.Conv2d(3, width, kernel_size=patch, stride=patch)

    def forward(self, pixels: torch.Tensor) -> torch.Tensor:
        return self.proj(pixels).flatten(2).transpose(1, 2)


class Attention(nn.Module):
    """Multi-head self-attention with one fused qkv projection."""

    def __init__(self, width: int, heads: int) -> None:
        super().__init__()
        self.heads = heads
        self.qkv = nn.Linear(width, 3 * width)
        self.proj = nn.Linear(width, width)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, n, c = x.shape
        q, k, v = self.qkv(x).reshape(b, n, 3, self.heads, c // self.heads).permute(2, 0, 3, 1, 4)
        out = F.scaled_dot_product_attention(q, k, v)
        return self.proj(out.transpose(1, 2).reshape(b, n, c))


class Mlp(nn.Module):
    """A ViT block's MLP under timm's names: fc1, exact GELU, fc2."""

    def __init__(self, width: int, hidden: int) -> None:
        super().__init__()
        self.fc1 = nn.Linear(width, hidden)
        self.fc2 = nn.Linear(hidden, width)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(F.gelu(self.fc1(x)))


class LayerScale(nn.Module):
    """Per-channel scale; the parameter carries OpenVLA's name for timm's `gamma`."""

    def __init__(self, width: int) -> None:
        super().__init__()
        self.scale_factor = nn.Parameter(torch.full((width,), 1e-5))  # DINOv2's init value

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.scale_factor


class Block(nn.Module):
    """One pre-norm ViT block under timm's names: attention and MLP, each with an optional LayerScale."""

    def __init__(self, spec: TowerSpec) -> None:
        super().__init__()
        self.norm1 = nn.LayerNorm(spec.width, eps=LAYER_NORM_EPS)
        self.attn = Attention(spec.width, spec.heads)
        self.ls1 = LayerScale(spec.width) if spec.layer_scale else nn.Identity()
        self.norm2 = nn.LayerNorm(spec.width, eps=LAYER_NORM_EPS)
        self.mlp = Mlp(spec.width, spec.mlp_hidden)
        self.ls2 = LayerScale(spec.width) if spec.layer_scale else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.ls1(self.attn(self.norm1(x)))
        return x + self.ls2(self.mlp(self.norm2(x)))


class AttentionPool(nn.Module):
    """SigLIP's MAP head (timm's AttentionPoolLatent): held so every checkpoint key has a place; unused."""

    def __init__(self, width: int, hidden: int) -> None:
        super().__init__()
        self.latent = nn.Parameter(torch.zeros(1, 1, width))
        self.q = nn.Linear(width, width)
        self.kv = nn.Linear(width, 2 * width)
        self.proj = nn.Linear(width, width)
        self.norm = nn.LayerNorm(width, eps=LAYER_NORM_EPS)
        self.mlp = Mlp(width, hidden)


class VisionTower(nn.Module):
    """One timm-layout ViT; `forward` gives OpenVLA's features: (B, 3, S, S) -> (B, (S/p)^2, width)."""

    def __init__(self, spec: TowerSpec, image_size: int) -> None:
        super().__init__()
        if image_size % spec.patch:
            raise ValueError(f"image size {image_size} is not a multiple of the {spec.patch} px patch")
        self.spec, self.image_size = spec, image_size
        patches = (image_size // spec.patch) ** 2
        self.patch_embed = PatchEmbed(spec.patch, spec.width)
        if spec.class_token:
            self.cls_token = nn.Parameter(torch.zeros(1, 1, spec.width))
        if spec.registers:
            self.reg_token = nn.Parameter(torch.zeros(1, spec.registers, spec.width))
        # timm: position embeddings cover the prefix tokens too unless the model has registers (no_embed_class)
        embedded = patches if spec.registers or not spec.class_token else patches + 1
        self.pos_embed = nn.Parameter(torch.zeros(1, embedded, spec.width))
        self.blocks = nn.ModuleList(Block(spec) for _ in range(spec.depth))
        self.norm = nn.LayerNorm(spec.width, eps=LAYER_NORM_EPS)
        if spec.attention_pool:
            self.attn_pool = AttentionPool(spec.width, spec.mlp_hidden)

    def _prefix(self, batch: int) -> list[torch.Tensor]:
        tokens = []
        if self.spec.class_token:
            tokens.append(self.cls_token.expand(batch, -1, -1))
        if self.spec.registers:
            tokens.append(self.reg_token.expand(batch, -1, -1))
        return tokens

    def tokens(self, pixels: torch.Tensor) -> torch.Tensor:
        """Patch tokens with position embeddings and the prefix tokens in front, before any block."""
        x = self.patch_embed(pixels)
        prefix = self._prefix(x.shape[0])
        if self.spec.registers or not self.spec.class_token:
            return torch.cat([*prefix, x + self.pos_embed], dim=1)
        return torch.cat([*prefix, x], dim=1) + self.pos_embed

    def forward(self, pixels: torch.Tensor) -> torch.Tensor:
        if pixels.shape[-2:] != (self.image_size, self.image_size):
            raise ValueError(f"expected {self.image_size}x{self.image_size} pixels, got {tuple(pixels.shape[-2:])}")
        x = self.tokens(pixels.to(self.pos_embed.dtype))  # the tower's own dtype, whatever the caller's
        for block in self.blocks[: self.spec.feature_block + 1]:
            x = block(x)
        return x[:, self.spec.prefix_tokens :]


class VisionBackbone(nn.Module):
    """OpenVLA's vision backbone: `featurizer` (and `fused_featurizer`), features concatenated per patch.

    Input: (B, 3 * towers, S, S), each tower's normalized image stacked along channels, as the processor
    makes it. Output: (B, patches, sum of widths), 2176 channels for DINOv2 + SigLIP.
    """

    def __init__(self, towers: tuple[TowerSpec, ...], image_size: int) -> None:
        super().__init__()
        if not 1 <= len(towers) <= 2:
            raise ValueError(f"OpenVLA's backbone has one or two towers, got {len(towers)}")
        self.featurizer = VisionTower(towers[0], image_size)
        if len(towers) == 2:
            self.fused_featurizer = VisionTower(towers[1], image_size)
        self.width = sum(t.width for t in towers)

    @property
    def towers(self) -> list[VisionTower]:
        return [self.featurizer] + ([self.fused_featurizer] if hasattr(self, "fused_featurizer") else [])

    def forward(self, pixel_values: torch.Tensor) -> torch.Tensor:
        towers = self.towers
        if pixel_values.shape[1] != 3 * len(towers):
            raise ValueError(f"expected {3 * len(towers)} stacked channels, got {pixel_values.shape[1]}")
        images = torch.split(pixel_values, 3, dim=1)
        return torch.cat([tower(image) for tower, image in zip(towers, images)], dim=2)
