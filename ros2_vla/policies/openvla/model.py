"""OpenVLA's network as one torch module, with the checkpoint's own parameter names.

    vision_backbone (DINOv2 + SigLIP, vit.py) -> projector (MLP) -> language_model (transformers causal LM)

The projected patches go right after the prompt's first token (<s>), before the text, as OpenVLA's
`PrismaticForConditionalGeneration.forward` puts them. Decoding (decoding.py) calls `prefill` once per
action with the image and the prompt, then `step` once per further token with the cache it returned: the
image is seen in the prefill and stays in the cache, so it cannot be dropped as in OpenVLA issue 346.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from ros2_vla.policies.openvla.architecture import OpenVlaArchitecture
from ros2_vla.policies.openvla.vit import VisionBackbone

IGNORE_INDEX = -100  # label of positions that carry no loss: the prompt and the image patches (transformers' value)


class Projector(nn.Module):
    """Patch features to LLM embeddings: fused backbones fc1 -> GELU -> fc2 -> GELU -> fc3 (4x wide inside);
    single ones fc1 -> GELU -> fc2 (OpenVLA's `PrismaticProjector`)."""

    def __init__(self, vision_width: int, llm_width: int, fused: bool) -> None:
        super().__init__()
        self.fused = fused
        if fused:
            self.fc1 = nn.Linear(vision_width, 4 * vision_width)
            self.fc2 = nn.Linear(4 * vision_width, llm_width)
            self.fc3 = nn.Linear(llm_width, llm_width)
        else:
            self.fc1 = nn.Linear(vision_width, llm_width)
            self.fc2 = nn.Linear(llm_width, llm_width)

    def forward(self, patches: torch.Tensor) -> torch.Tensor:
        x = self.fc2(F.gelu(self.fc1(patches)))
        return self.fc3(F.gelu(x)) if self.fused else x


@dataclass
class NextToken:
    """What `prefill` and `step` return: the next token's logits and the cache to continue from."""

    logits: torch.Tensor  # (B, vocab rows) float, scores of the token after the prompt
    cache: Any  # the LLM's key/value cache (a transformers Cache)


class OpenVlaModel(nn.Module):
    """The network of an OpenVLA checkpoint; state-dict keys equal the checkpoint's keys."""

    def __init__(self, arch: OpenVlaArchitecture) -> None:
        super().__init__()
        from transformers import AutoModelForCausalLM

        self.arch = arch
        self.vision_backbone = VisionBackbone(arch.towers, arch.image_size)
        self.projector = Projector(self.vision_backbone.width, arch.text_config.hidden_size, len(arch.towers) == 2)
        self.language_model = AutoModelForCausalLM.from_config(arch.text_config)

    def project_image(self, pixel_values: torch.Tensor) -> torch.Tensor:
        """(B, 3 * towers, S, S) -> (B, patches, LLM width), in the projector's dtype."""
        features = self.vision_backbone(pixel_values)
        return self.projector(features.to(self.projector.fc1.weight.dtype))

    def multimodal_embeddings(self, input_ids: torch.Tensor, pixel_values: torch.Tensor) -> torch.Tensor:
        """<s>, then the projected patches, then the rest of the prompt: (B, 1 + patches + T - 1, width)."""
        text = self.language_model.get_input_embeddings()(input_ids)
        patches = self.project_image(pixel_values).to(text.dtype)
        return torch.cat([text[:, :1], patches, text[:, 1:]], dim=1)

    def prefill(self, input_ids: torch.Tensor, pixel_values: torch.Tensor) -> NextToken:
        """Run the whole prompt with the image once; batch of one (OpenVLA decodes one robot at a time)."""
        out = self.language_model(
            inputs_embeds=self.multimodal_embeddings(input_ids, pixel_values), use_cache=True, logits_to_keep=1
        )
        return NextToken(out.logits[:, -1].float(), out.past_key_values)

    def step(self, token_id: torch.Tensor, cache: Any) -> NextToken:
        """One more token (B, 1) after `cache`; returns its successor's logits and the grown cache."""
        out = self.language_model(input_ids=token_id, past_key_values=cache, use_cache=True)
        return NextToken(out.logits[:, -1].float(), out.past_key_values)

    def forward(
        self,
        input_ids: torch.Tensor,
        pixel_values: torch.Tensor,
        attention_mask: torch.Tensor | None = None,
        labels: torch.Tensor | None = None,
    ) -> Any:
        """Training/scoring pass over prompt + image (+ labels shifted by transformers): returns the LM output
        (`loss` when labels are given, `logits` over the multimodal sequence)."""
        embeddings = self.multimodal_embeddings(input_ids, pixel_values)
        patches = embeddings.shape[1] - input_ids.shape[1]
        mask = None
        if attention_mask is not None:
            ones = attention_mask.new_ones((attention_mask.shape[0], patches))
            mask = torch.cat([attention_mask[:, :1], ones, attention_mask[:, 1:]], dim=1)
        full_labels = None
        if labels is not None:
            ignore = labels.new_full((labels.shape[0], patches), IGNORE_INDEX)
            full_labels = torch.cat([labels[:, :1], ignore, labels[:, 1:]], dim=1)
        return self.language_model(inputs_embeds=embeddings, attention_mask=mask, labels=full_labels)
