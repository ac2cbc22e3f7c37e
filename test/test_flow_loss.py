"""flow_matching_loss: the flow-time distribution, gradients, and a real learning signal."""

from __future__ import annotations

import math

import pytest
import torch
from flow_helpers import one_torch_thread, random_model, tensor_batch, tiny_config  # noqa: F401

from ros2_vla.errors import PolicyError
from ros2_vla.policies.flow import FlowModel, flow_matching_loss
from ros2_vla.policies.flow.loss import sample_flow_time

INSTRUCTIONS = ["pick red", "pick blue", "push red", "push blue"]


def test_flow_time_is_beta_1_5_1_skewed_to_noise():
    t = sample_flow_time(200_000, torch.Generator().manual_seed(0))
    assert t.min() >= 0.001 and t.max() <= 1.0
    s = (t - 0.001) / 0.999
    assert abs(s.mean().item() - 1.5 / 2.5) < 0.005  # Beta(1.5, 1) mean
    assert abs((s > 0.5).float().mean().item() - (1 - 0.5**1.5)) < 0.005  # its CDF is s**1.5
    assert (t > 0.5).float().mean() > 0.6  # mostly noisy


def test_loss_is_a_finite_scalar_reaching_every_trainable_part():
    model = random_model().train()
    loss = flow_matching_loss(model, tensor_batch(model.config, INSTRUCTIONS), torch.Generator().manual_seed(0))
    assert loss.dim() == 0 and math.isfinite(loss.item())
    loss.backward()
    for name in (
        "prefix.vision.stem.0.weight",
        "prefix.text.embed.weight",
        "prefix.state.weight",
        "prefix.blocks.0.qkv.weight",
        "expert.blocks.0.prefix_kv.weight",
        "expert.time_mix.0.weight",
    ):
        grad = dict(model.named_parameters())[name].grad
        assert grad is not None and grad.abs().sum() > 0, name


def test_untrained_model_loss_is_the_target_velocity_energy():
    """v = 0 at init, so the loss is mean |noise - actions|^2 ~ 1 + E[a^2] (noise N(0, 1), a uniform in [-1, 1])."""
    model = FlowModel(tiny_config())
    batch = tensor_batch(model.config, INSTRUCTIONS * 8)
    loss = flow_matching_loss(model, batch, torch.Generator().manual_seed(0)).item()
    assert abs(loss - (1 + 1 / 3)) < 0.1


def test_overfitting_a_tiny_batch_lowers_the_loss():
    torch.manual_seed(0)
    model = FlowModel(tiny_config())
    batch = tensor_batch(model.config, INSTRUCTIONS)

    def held_loss() -> float:  # same noise and times every call, so the numbers compare
        with torch.no_grad():
            return flow_matching_loss(model, batch, torch.Generator().manual_seed(123)).item()

    before = held_loss()
    opt = torch.optim.AdamW(model.parameters(), lr=3e-3)
    g = torch.Generator().manual_seed(1)
    for _ in range(50):
        loss = flow_matching_loss(model, batch, g)
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert held_loss() < 0.8 * before


def test_trained_sampler_follows_the_instruction():
    """Two identical scenes, "red" -> chunk of +0.6, "blue" -> chunk of -0.6: after a short training the
    sampled chunks separate the right way round (loss and sampler agree on the flow's direction)."""
    torch.manual_seed(0)
    model = FlowModel(tiny_config())
    cfg = model.config
    g = torch.Generator().manual_seed(1)
    images = {c: (torch.rand(1, 3, *cfg.image_size, generator=g) * 2 - 1).expand(2, -1, -1, -1) for c in cfg.cameras}
    actions = torch.stack([torch.full((cfg.horizon, cfg.action_dim), v) for v in (0.6, -0.6)])
    batch = {
        "images": images,
        "state": torch.zeros(2, cfg.state_dim),
        "instruction": ["pick the red cube", "pick the blue cube"],
        "actions": actions,
    }
    opt = torch.optim.AdamW(model.parameters(), lr=3e-3)
    for _ in range(60):
        loss = flow_matching_loss(model, batch, g)
        opt.zero_grad()
        loss.backward()
        opt.step()
    with torch.no_grad():
        inputs = model.make_inputs(images, batch["state"], batch["instruction"])
        chunk = model.sample(model.encode_prefix(inputs), generator=torch.Generator().manual_seed(5))
    red, blue = chunk.mean(dim=(1, 2)).tolist()
    assert red - blue > 0.4, (red, blue)


@pytest.mark.parametrize("key", ["images", "state", "instruction", "actions"])
def test_missing_batch_entries_are_named(key):
    model = random_model()
    batch = tensor_batch(model.config, INSTRUCTIONS)
    del batch[key]
    with pytest.raises(PolicyError, match=key):
        flow_matching_loss(model, batch)


def test_wrong_action_shape_is_refused():
    model = random_model()
    batch = tensor_batch(model.config, INSTRUCTIONS)
    batch["actions"] = batch["actions"][:, :2]
    with pytest.raises(PolicyError, match="actions have shape"):
        flow_matching_loss(model, batch)


def test_training_works_after_inference_met_the_instructions_first():
    """The text cache filled inside `torch.inference_mode` (by `infer`) must still serve a training step."""
    model = random_model().train()
    batch = tensor_batch(model.config, INSTRUCTIONS)
    with torch.inference_mode():
        model.encode_text(INSTRUCTIONS)
    flow_matching_loss(model, batch).backward()
    assert model.prefix.text.embed.weight.grad is not None
