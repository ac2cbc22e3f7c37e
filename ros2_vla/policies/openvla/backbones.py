"""The Prismatic backbone ids an OpenVLA config.json names, and what each means as an architecture.

OpenVLA's config.json names its vision encoder by `vision_backbone_id` (a Prismatic id, e.g.
`dinosiglip-vit-so-224px`: a DINOv2 ViT-L/14 with 4 registers beside a SigLIP SO400M/14, fused per patch)
and its language model by `llm_backbone_id` (e.g. `llama2-7b-pure`). Both lists are OpenVLA's own
(`configuration_prismatic.py`); this package implements the vision towers every published OpenVLA
checkpoint uses (DINOv2 and SigLIP, alone or fused) and the LLM families transformers builds from
`text_config`. An id outside these tables is refused by name, never guessed.

Tower facts are timm's (`vit_large_patch14_reg4_dinov2`, `vit_so400m_patch14_siglip_224/384`) as OpenVLA
creates them: `num_classes=0`, the image size of the id, the default (exact) GELU.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass

from ros2_vla.errors import PolicyError

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
SIGLIP_MEAN = (0.5, 0.5, 0.5)
SIGLIP_STD = (0.5, 0.5, 0.5)


@dataclass(frozen=True)
class TowerSpec:
    """One timm ViT as OpenVLA builds it; sizes in channels and tokens."""

    timm_id: str  # the name config.json's `timm_model_ids` lists
    width: int  # embedding channels
    depth: int  # transformer blocks
    heads: int  # attention heads
    mlp_hidden: int  # channels inside each block's MLP
    patch: int  # [px] square patch side
    class_token: bool  # a class token precedes the patches
    registers: int  # register tokens after the class token (DINOv2-reg4: 4)
    layer_scale: bool  # per-channel LayerScale after attention and MLP (DINOv2)
    attention_pool: bool  # a MAP head (`attn_pool.*`) exists in the weights; OpenVLA never runs it
    mean: tuple[float, float, float]  # pixel normalization the tower was trained with
    std: tuple[float, float, float]

    @property
    def prefix_tokens(self) -> int:
        """Tokens before the patches (class + registers), dropped from the features."""
        return int(self.class_token) + self.registers

    @property
    def feature_block(self) -> int:
        """Index of the block whose output OpenVLA uses: the second to last."""
        return self.depth - 2


_DINOV2_L = dict(
    width=1024,
    depth=24,
    heads=16,
    mlp_hidden=4096,
    patch=14,
    class_token=True,
    registers=4,
    layer_scale=True,
    attention_pool=False,
    mean=IMAGENET_MEAN,
    std=IMAGENET_STD,
)
_SIGLIP_SO400M = dict(
    width=1152,
    depth=27,
    heads=16,
    mlp_hidden=4304,
    patch=14,
    class_token=False,
    registers=0,
    layer_scale=False,
    attention_pool=True,
    mean=SIGLIP_MEAN,
    std=SIGLIP_STD,
)

TOWERS: dict[str, TowerSpec] = {
    "vit_large_patch14_reg4_dinov2.lvd142m": TowerSpec("vit_large_patch14_reg4_dinov2.lvd142m", **_DINOV2_L),
    "vit_so400m_patch14_siglip_224": TowerSpec("vit_so400m_patch14_siglip_224", **_SIGLIP_SO400M),
    "vit_so400m_patch14_siglip_384": TowerSpec("vit_so400m_patch14_siglip_384", **_SIGLIP_SO400M),
}

_DINO, _SIG224, _SIG384 = TOWERS.values()

# Prismatic vision_backbone_id -> (towers, image side [px] of each)
VISION_BACKBONES: dict[str, tuple[tuple[TowerSpec, ...], int]] = {
    "dinov2-vit-l": ((_DINO,), 224),
    "siglip-vit-so400m": ((_SIG224,), 224),
    "siglip-vit-so400m-384px": ((_SIG384,), 384),
    "dinosiglip-vit-so-224px": ((_DINO, _SIG224), 224),
    "dinosiglip-vit-so-384px": ((_DINO, _SIG384), 384),
}
# Prismatic ids OpenVLA knows that need towers this package does not implement (CLIP's quick-GELU ViTs)
_UNIMPLEMENTED_VISION = ("clip-vit-l", "clip-vit-l-336px", "dinoclip-vit-l-336px", "in1k-vit-l")

# Prismatic llm_backbone_id -> transformers model_type of `text_config`
LLM_BACKBONES: dict[str, str] = {
    "llama2-7b-pure": "llama",
    "llama2-13b-pure": "llama",
    "llama2-7b-chat": "llama",
    "llama2-13b-chat": "llama",
    "vicuna-v15-7b": "llama",
    "vicuna-v15-13b": "llama",
    "mistral-v0.1-7b-pure": "mistral",
    "mistral-v0.1-7b-instruct": "mistral",
    "phi-2-3b": "phi",
}


def _unknown(kind: str, value: str, known: list[str]) -> PolicyError:
    close = difflib.get_close_matches(value, known, n=1)
    hint = f" Did you mean {close[0]!r}?" if close else ""
    return PolicyError(f"unknown {kind} {value!r}; known: {', '.join(known)}.{hint}")


def vision_backbone(backbone_id: str) -> tuple[tuple[TowerSpec, ...], int]:
    """The towers and image side of a Prismatic vision_backbone_id; PolicyError for any other id."""
    if backbone_id in _UNIMPLEMENTED_VISION:
        raise PolicyError(
            f"vision_backbone_id {backbone_id!r} (a CLIP or ImageNet ViT) is a Prismatic VLM backbone no OpenVLA "
            f"checkpoint uses; this package implements {', '.join(VISION_BACKBONES)}"
        )
    if backbone_id not in VISION_BACKBONES:
        raise _unknown("vision_backbone_id", backbone_id, list(VISION_BACKBONES))
    return VISION_BACKBONES[backbone_id]


def llm_family(backbone_id: str) -> str:
    """transformers model_type for a Prismatic llm_backbone_id; PolicyError for any other id."""
    if backbone_id not in LLM_BACKBONES:
        raise _unknown("llm_backbone_id", backbone_id, list(LLM_BACKBONES))
    return LLM_BACKBONES[backbone_id]
