"""The flow-matching VLA: a prefix computed once per observation, an action expert run N times.

Prefix: [image tokens of every camera, language tokens, one proprioception token] -> a bidirectional
transformer -> final embeddings (B, L, width). Each action-expert layer projects them once into its
own keys/values: that per-layer K/V is the `PrefixCache` (pi0 keeps the VLM's K/V per layer; here the
expert's layer i reads the final prefix, so prefix and expert depths and widths stay independent).

Action expert: H action tokens (the noisy chunk x_t plus the flow time t) whose attention in every
layer sees [prefix K/V ; action K/V] in one softmax, bidirectionally, and predicts the velocity
v(x_t, t) ~ noise - actions. Flow convention (openpi): t = 1 is pure noise, t = 0 the actions.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from ros2_vla.errors import PolicyError
from ros2_vla.policies.flow.config import FlowConfig
from ros2_vla.policies.flow.layers import Mlp, SelfAttentionBlock, merge_heads, sinusoidal_embedding, split_heads
from ros2_vla.policies.flow.proprio import proprio_dim
from ros2_vla.policies.flow.rtc import Guidance, guided_euler_sample
from ros2_vla.policies.flow.sampling import euler_sample
from ros2_vla.policies.flow.text import CachedTextEncoder, TextEmbedding, TextTokens, build_text_encoder
from ros2_vla.policies.flow.vision import VisionEncoder


@dataclass(frozen=True)
class PrefixInputs:
    """One batch of observations, preprocessed."""

    images: torch.Tensor  # (B, C, 3, h, w) float in [-1, 1], cameras in config order
    state: torch.Tensor  # (B, S) normalized joint state, then the TCP features of a tcp_state model
    text: TextTokens  # encoded instructions


@dataclass(frozen=True)
class PrefixCache:
    """What the action expert needs from one observation, computed once by `FlowModel.encode_prefix`."""

    keys: tuple[torch.Tensor, ...]  # per expert layer, (B, expert_heads, L, head_dim)
    values: tuple[torch.Tensor, ...]  # per expert layer, (B, expert_heads, L, head_dim)
    mask: torch.Tensor  # (B, L) bool, False on padded language tokens

    @property
    def batch_size(self) -> int:
        return self.mask.shape[0]


class PrefixEncoder(nn.Module):
    """PrefixInputs -> final prefix embeddings (B, L, width) and their key mask (B, L)."""

    def __init__(self, config: FlowConfig) -> None:
        super().__init__()
        self.vision = VisionEncoder(config)
        self.text = TextEmbedding(config)
        self.state = nn.Linear(proprio_dim(config), config.width)
        self.blocks = nn.ModuleList(
            SelfAttentionBlock(config.width, config.heads, config.prefix_mlp_ratio) for _ in range(config.depth)
        )
        self.norm = nn.LayerNorm(config.width)

    def forward(self, inputs: PrefixInputs) -> tuple[torch.Tensor, torch.Tensor]:
        text = self.text(inputs.text)
        image = self.vision(inputs.images, _masked_mean(text, inputs.text.mask))
        state = self.state(inputs.state)[:, None, :]
        x = torch.cat([image, text, state], dim=1)
        b = x.shape[0]
        ones = torch.ones((b, 1), dtype=torch.bool, device=x.device)
        mask = torch.cat([ones.expand(b, image.shape[1]), inputs.text.mask, ones], dim=1)
        for block in self.blocks:
            x = block(x, mask)
        return self.norm(x), mask


def _masked_mean(tokens: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """(B, T, W) tokens, (B, T) bool -> (B, W) mean over the unmasked ones."""
    weights = mask.to(tokens.dtype)[:, :, None]
    return (tokens * weights).sum(1) / weights.sum(1).clamp(min=1.0)


class ExpertBlock(nn.Module):
    """Action tokens attend to [this layer's prefix K/V ; their own K/V], then an MLP; pre-LayerNorm."""

    def __init__(self, config: FlowConfig) -> None:
        super().__init__()
        w = config.expert_width
        self.heads = config.expert_heads
        self.prefix_kv = nn.Linear(config.width, 2 * w)
        self.norm1 = nn.LayerNorm(w)
        self.qkv = nn.Linear(w, 3 * w)
        self.proj = nn.Linear(w, w)
        self.norm2 = nn.LayerNorm(w)
        self.mlp = Mlp(w, config.mlp_ratio)

    def prefix_keys_values(self, prefix: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        k, v = self.prefix_kv(prefix).chunk(2, dim=-1)
        return split_heads(k, self.heads), split_heads(v, self.heads)

    def forward(
        self, x: torch.Tensor, k_prefix: torch.Tensor, v_prefix: torch.Tensor, mask: torch.Tensor
    ) -> torch.Tensor:
        q, k, v = (split_heads(t, self.heads) for t in self.qkv(self.norm1(x)).chunk(3, dim=-1))
        k = torch.cat([k_prefix.expand(q.shape[0], -1, -1, -1), k], dim=2)
        v = torch.cat([v_prefix.expand(q.shape[0], -1, -1, -1), v], dim=2)
        x = x + self.proj(merge_heads(F.scaled_dot_product_attention(q, k, v, attn_mask=mask)))
        return x + self.mlp(self.norm2(x))


class ActionExpert(nn.Module):
    """(x_t (B, H, D), t (B,), PrefixCache) -> velocity (B, H, D)."""

    def __init__(self, config: FlowConfig) -> None:
        super().__init__()
        w = config.expert_width
        self.action_in = nn.Linear(config.action_dim, w)
        # pi0 mixes the time into every action token: MLP([action embedding, time embedding]).
        self.time_mix = nn.Sequential(nn.Linear(2 * w, w), nn.SiLU(), nn.Linear(w, w))
        self.position = nn.Parameter(torch.randn(1, config.horizon, w) * 0.02)
        self.blocks = nn.ModuleList(ExpertBlock(config) for _ in range(config.expert_depth))
        self.norm = nn.LayerNorm(w)
        self.action_out = nn.Linear(w, config.action_dim)
        nn.init.zeros_(self.action_out.weight)  # start at v = 0: no random drift before training
        nn.init.zeros_(self.action_out.bias)

    def forward(self, x_t: torch.Tensor, t: torch.Tensor, cache: PrefixCache) -> torch.Tensor:
        a = self.action_in(x_t)
        time = sinusoidal_embedding(t, a.shape[-1]).to(a.dtype)[:, None, :].expand_as(a)
        x = self.time_mix(torch.cat([a, time], dim=-1)) + self.position
        b, h = x.shape[:2]
        mask = torch.cat([cache.mask, torch.ones((cache.batch_size, h), dtype=torch.bool, device=x.device)], dim=1)
        mask = mask[:, None, None, :]
        for block, k, v in zip(self.blocks, cache.keys, cache.values):
            x = block(x, k, v, mask)
        return self.action_out(self.norm(x))


class FlowModel(nn.Module):
    """Prefix encoder + action expert; the frozen text encoder (if MiniLM) is held outside the weights."""

    def __init__(self, config: FlowConfig) -> None:
        super().__init__()
        self.config = config
        self.prefix = PrefixEncoder(config)
        self.expert = ActionExpert(config)
        # Training only: the pooled prefix -> where the demo goes next (normalized, `training.goals`). It makes
        # the prefix say which object the words name from the first frame on; inference never calls it.
        self.goal = nn.Linear(config.width, config.action_dim) if config.goal_head else None
        self._text_encoder: CachedTextEncoder | None = None  # built on first use: MiniLM takes ~0.5 s to load

    @property
    def device(self) -> torch.device:
        return self.expert.position.device

    @property
    def text_encoder(self) -> CachedTextEncoder:
        if self._text_encoder is None:
            self._text_encoder = build_text_encoder(self.config, self.device)
        return self._text_encoder

    def encode_text(self, instructions: Sequence[str]) -> TextTokens:
        return self.text_encoder.encode(instructions, self.device)

    def make_inputs(
        self,
        images: Mapping[str, torch.Tensor] | torch.Tensor,
        state: torch.Tensor,
        instructions: Sequence[str] | TextTokens,
    ) -> PrefixInputs:
        """Preprocessed tensors -> PrefixInputs: images a dict camera -> (B, 3, h, w) (or already stacked
        (B, C, 3, h, w) in config order), state (B, S), instructions strings or TextTokens."""
        if isinstance(images, Mapping):
            missing = [c for c in self.config.cameras if c not in images]
            if missing:
                raise PolicyError(f"images lack cameras {missing}; the model takes {list(self.config.cameras)}")
            images = torch.stack([images[c] for c in self.config.cameras], dim=1)
        text = instructions if isinstance(instructions, TextTokens) else self.encode_text(instructions)
        expected = (len(self.config.cameras), 3, *self.config.image_size)
        if images.dim() != 5 or tuple(images.shape[1:]) != expected:
            raise PolicyError(f"images have shape {tuple(images.shape)}; expected (B, {', '.join(map(str, expected))})")
        s = proprio_dim(self.config)
        if state.dim() != 2 or state.shape != (images.shape[0], s):
            raise PolicyError(
                f"state has shape {tuple(state.shape)}; expected ({images.shape[0]}, {s})"
                + (" (joint state, then TCP features)" if self.config.tcp_state else "")
            )
        dtype = self.expert.position.dtype  # float32, or bfloat16 for a half-precision model
        values = text.values.to(self.device, dtype) if text.values.is_floating_point() else text.values.to(self.device)
        return PrefixInputs(
            images.to(self.device, dtype), state.to(self.device, dtype), TextTokens(values, text.mask.to(self.device))
        )

    def encode_prefix(self, inputs: PrefixInputs) -> PrefixCache:
        return self.cache_of(*self.prefix(inputs))

    def cache_of(self, prefix: torch.Tensor, mask: torch.Tensor) -> PrefixCache:
        """Final prefix embeddings (B, L, width) and key mask (B, L) -> each expert layer's keys/values."""
        kv = [block.prefix_keys_values(prefix) for block in self.expert.blocks]
        return PrefixCache(tuple(k for k, _ in kv), tuple(v for _, v in kv), mask)

    def predict_goal(self, prefix: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """(B, D) normalized goal from the final prefix embeddings; PolicyError without a goal head."""
        if self.goal is None:
            raise PolicyError("this model has no goal head (FlowConfig.goal_head is false)")
        return self.goal(_masked_mean(prefix, mask))

    def velocity(self, cache: PrefixCache, x_t: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        return self.expert(x_t, t, cache)

    def noise(self, batch_size: int, generator: torch.Generator | None = None) -> torch.Tensor:
        shape = (batch_size, self.config.horizon, self.config.action_dim)
        where = generator.device if generator is not None else self.device
        return torch.randn(shape, generator=generator, device=where).to(self.device, self.expert.position.dtype)

    def _steps(self, steps: int | None) -> int:
        return self.config.flow_steps if steps is None else steps

    def _check_noise(self, noise: torch.Tensor, batch_size: int) -> torch.Tensor:
        expected = (batch_size, self.config.horizon, self.config.action_dim)
        if tuple(noise.shape) != expected:
            raise PolicyError(f"noise has shape {tuple(noise.shape)}; expected {expected} (B, H, D)")
        return noise

    def sample(
        self,
        cache: PrefixCache,
        noise: torch.Tensor | None = None,
        steps: int | None = None,
        generator: torch.Generator | None = None,
    ) -> torch.Tensor:
        """Actions (B, H, D), normalized: N Euler steps from `noise` (default N(0, I)) at t = 1 to t = 0,
        reusing the prefix cache at every step."""
        x = self.noise(cache.batch_size, generator) if noise is None else self._check_noise(noise, cache.batch_size)
        return euler_sample(lambda x_t, t: self.velocity(cache, x_t, t), x, self._steps(steps))

    def sample_guided(
        self,
        cache: PrefixCache,
        guidance: Guidance,
        max_guidance: float,
        noise: torch.Tensor | None = None,
        steps: int | None = None,
        generator: torch.Generator | None = None,
    ) -> torch.Tensor:
        """As `sample`, pulled toward `guidance.target` (real-time chunking, `rtc.py`). Needs autograd through
        the action expert: call it under torch.no_grad(), not inference_mode()."""
        x = self.noise(cache.batch_size, generator) if noise is None else self._check_noise(noise, cache.batch_size)
        return guided_euler_sample(
            lambda x_t, t: self.velocity(cache, x_t, t), x, self._steps(steps), guidance, max_guidance
        )

    def sample_recomputing(
        self,
        inputs: PrefixInputs,
        noise: torch.Tensor | None = None,
        steps: int | None = None,
        generator: torch.Generator | None = None,
    ) -> torch.Tensor:
        """As `sample`, but encodes the prefix again at every step (the baseline the cache is measured against)."""
        b = inputs.state.shape[0]
        x = self.noise(b, generator) if noise is None else self._check_noise(noise, b)
        return euler_sample(lambda x_t, t: self.velocity(self.encode_prefix(inputs), x_t, t), x, self._steps(steps))
