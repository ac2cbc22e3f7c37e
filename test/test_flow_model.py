"""FlowModel: shapes, the prefix cache, masking of padded language tokens, the Euler sampler."""

from __future__ import annotations

import pytest
import torch
from flow_helpers import one_torch_thread, random_model, tensor_batch, tiny_config  # noqa: F401

from ros2_vla.errors import PolicyError
from ros2_vla.policies.flow.sampling import euler_sample

INSTRUCTIONS = ["pick up the red cube", "push the blue block to the left of the green bowl"]


def _inputs(model, instructions=INSTRUCTIONS, seed=1):
    batch = tensor_batch(model.config, instructions, seed)
    return model.make_inputs(batch["images"], batch["state"], batch["instruction"])


def test_prefix_cache_has_per_layer_keys_values_over_all_prefix_tokens():
    config = tiny_config(expert_depth=3)
    model = random_model(config)
    cache = model.encode_prefix(_inputs(model))
    words = len(INSTRUCTIONS[1].split())  # the longest instruction sets the padded length
    length = len(config.cameras) * config.tokens_per_camera + words + 1
    head_dim = config.expert_width // config.expert_heads
    assert len(cache.keys) == len(cache.values) == 3
    for k, v in zip(cache.keys, cache.values):
        assert k.shape == v.shape == (2, config.expert_heads, length, head_dim)
    assert cache.mask.shape == (2, length)
    assert cache.mask[0].sum() == length - (words - len(INSTRUCTIONS[0].split()))  # padding masked
    assert cache.mask[1].all()


def test_velocity_and_sample_have_chunk_shape():
    model = random_model()
    cache = model.encode_prefix(_inputs(model))
    x = torch.randn(2, model.config.horizon, model.config.action_dim)
    assert model.velocity(cache, x, torch.full((2,), 0.5)).shape == x.shape
    assert model.sample(cache).shape == x.shape
    assert model.sample(cache, steps=3).shape == x.shape


def test_cached_prefix_gives_exactly_the_recomputed_sample():
    model = random_model()
    inputs = _inputs(model)
    noise = model.noise(2, torch.Generator().manual_seed(7))
    with torch.inference_mode():
        cached = model.sample(model.encode_prefix(inputs), noise)
        recomputed = model.sample_recomputing(inputs, noise)
    assert torch.equal(cached, recomputed)
    assert not torch.equal(cached, noise)


def test_padding_does_not_change_an_instructions_chunk():
    model = random_model()
    noise = model.noise(2, torch.Generator().manual_seed(3))
    with torch.inference_mode():
        batched = model.sample(model.encode_prefix(_inputs(model)), noise)
        inputs = _inputs(model)
        alone = model.make_inputs(inputs.images[:1], inputs.state[:1], [INSTRUCTIONS[0]])
        single = model.sample(model.encode_prefix(alone), noise[:1])
    torch.testing.assert_close(single[0], batched[0], rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("part", ["images", "state", "instruction"])
def test_each_prefix_part_reaches_the_velocity(part):
    model = random_model()
    batch = tensor_batch(model.config, ["pick up the red cube"], seed=1)
    other = tensor_batch(model.config, ["pick up the blue cube"], seed=2)
    changed = dict(batch, **{part: other[part]})
    x, t = torch.randn(1, model.config.horizon, model.config.action_dim), torch.full((1,), 0.7)
    with torch.inference_mode():
        v = [
            model.velocity(model.encode_prefix(model.make_inputs(b["images"], b["state"], b["instruction"])), x, t)
            for b in (batch, changed)
        ]
    assert (v[0] - v[1]).abs().max() > 1e-4


def test_time_reaches_the_velocity():
    model = random_model()
    cache = model.encode_prefix(_inputs(model))
    x = torch.randn(2, model.config.horizon, model.config.action_dim)
    with torch.inference_mode():
        late, early = (model.velocity(cache, x, torch.full((2,), t)) for t in (0.9, 0.1))
    assert (late - early).abs().max() > 1e-4


def test_euler_integration_of_the_straight_flow_lands_on_the_target():
    """For a single target a, x_t = t * noise + (1 - t) * a has velocity (x_t - a) / t = noise - a; Euler steps
    from t = 1 follow that straight line exactly."""
    target = torch.randn(3, 5, 2)
    noise = torch.randn(3, 5, 2)
    for steps in (1, 4, 10):
        out = euler_sample(lambda x, t: (x - target) / t[:, None, None], noise, steps)
        torch.testing.assert_close(out, target, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("steps", [0, -2, 1.5])
def test_bad_step_counts_are_refused(steps):
    with pytest.raises(PolicyError, match="flow steps must be a positive integer"):
        euler_sample(lambda x, t: x, torch.zeros(1, 2, 2), steps)


def test_make_inputs_refuses_missing_cameras_and_bad_shapes():
    model = random_model()
    batch = tensor_batch(model.config, ["go"])
    images = dict(batch["images"])
    del images["wrist"]
    with pytest.raises(PolicyError, match=r"lack cameras \['wrist'\]"):
        model.make_inputs(images, batch["state"], ["go"])
    small = {c: img[..., :16, :16] for c, img in batch["images"].items()}
    with pytest.raises(PolicyError, match="images have shape"):
        model.make_inputs(small, batch["state"], ["go"])
    with pytest.raises(PolicyError, match="state has shape"):
        model.make_inputs(batch["images"], batch["state"][:, :3], ["go"])


def test_a_fresh_model_predicts_zero_velocity():
    """The output layer starts at zero, so an untrained model does not drift the noise."""
    from ros2_vla.policies.flow import FlowModel

    model = FlowModel(tiny_config())
    cache = model.encode_prefix(_inputs(model))
    x = torch.randn(2, model.config.horizon, model.config.action_dim)
    assert torch.equal(model.velocity(cache, x, torch.full((2,), 0.5)), torch.zeros_like(x))


def test_noise_of_the_wrong_shape_is_refused():
    model = random_model()
    cache = model.encode_prefix(_inputs(model))
    with pytest.raises(PolicyError, match=r"noise has shape \(2, 3, 7\); expected \(2, 4, 7\)"):
        model.sample(cache, torch.zeros(2, 3, 7))


def test_zero_steps_is_refused_not_replaced_by_the_default():
    model = random_model()
    with pytest.raises(PolicyError, match="flow steps must be a positive integer, got 0"):
        model.sample(model.encode_prefix(_inputs(model)), steps=0)
