"""FlowPolicy: the backend contract (spec, chunk layout, normalization), preprocessing and bad input."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch
from flow_helpers import observation, one_torch_thread, random_model, tiny_config  # noqa: F401

from ros2_vla.actions.chunk import Chunk, chunk_to_array
from ros2_vla.errors import PolicyError
from ros2_vla.policies.base import PolicyOutput
from ros2_vla.policies.flow import FlowPolicy, compute_norm_stats, default_action_mask, save_checkpoint
from ros2_vla.policies.flow.preprocess import images_to_tensor


@pytest.fixture
def stats():
    config = tiny_config()
    rng = np.random.default_rng(0)
    actions = rng.normal(size=(200, config.action_dim)) * np.arange(1, config.action_dim + 1)
    actions[:, -1] = rng.integers(0, 2, 200)  # gripper openness 0 / 1
    state = rng.normal(size=(200, config.state_dim))
    return compute_norm_stats(actions, state, default_action_mask(config.dimension_names))


@pytest.fixture
def policy(stats):
    return FlowPolicy.from_model(random_model(), stats, num_threads=1)


def test_spec_comes_from_the_config(tmp_path, stats):
    model = random_model(tiny_config(cameras=("front", "side", "wrist"), dt=0.05))
    save_checkpoint(tmp_path, model, model.config, stats)
    spec = FlowPolicy(tmp_path, num_threads=1).spec
    assert spec.name == f"flow:{tmp_path}"
    assert spec.cameras == ("front", "side", "wrist")
    assert spec.image_size == model.config.image_size and spec.horizon == model.config.horizon
    assert spec.dimension_names == model.config.dimension_names and spec.dt == 0.05
    assert spec.action_space == "ee_delta"


def test_chunk_is_normalized_with_q01_q99_and_the_gripper_passes_through(policy, stats):
    out = policy.infer(observation(policy.model.config))
    cfg = policy.model.config
    assert isinstance(out, PolicyOutput)
    assert out.values.shape == (cfg.horizon, cfg.action_dim) and out.values.dtype == np.float32
    assert out.tokens.size == 0
    np.testing.assert_array_equal(out.low, stats.action.q01)
    np.testing.assert_array_equal(out.high, stats.action.q99)
    np.testing.assert_array_equal(out.normalized, [True] * 6 + [False])
    assert np.all(np.abs(out.values[:, :6]) <= 1.0)
    assert np.abs(out.values[:, 6]).max() > 1.0  # random weights: the raw gripper dim is not clipped


def test_the_bridge_decodes_the_chunk_through_low_high(policy):
    out = policy.infer(observation(policy.model.config))
    cfg = policy.model.config
    chunk = Chunk(
        stamp=1.0,
        embodiment="franka",
        action_space=cfg.action_space,
        dimension_names=cfg.dimension_names,
        dt=cfg.dt,
        horizon=cfg.horizon,
        values=out.values,
        low=out.low,
        high=out.high,
        normalized=out.normalized,
    )
    physical = chunk_to_array(chunk)
    expected = out.low + (out.values + 1) / 2 * (out.high - out.low)
    np.testing.assert_allclose(physical[:, :6], expected[:, :6], rtol=1e-6)
    np.testing.assert_array_equal(physical[:, 6], out.values[:, 6])


def test_equal_seeds_give_equal_chunks_and_each_call_draws_new_noise(stats):
    model = random_model()
    obs = observation(model.config)
    a = FlowPolicy.from_model(model, stats, num_threads=1, seed=4)
    b = FlowPolicy.from_model(model, stats, num_threads=1, seed=4)
    first = a.infer(obs).values
    np.testing.assert_array_equal(first, b.infer(obs).values)
    assert not np.array_equal(first, a.infer(obs).values)


def test_any_frame_size_is_resized_and_extra_cameras_are_ignored(policy):
    cfg = policy.model.config
    obs = observation(cfg, size=(120, 90))
    obs = dataclasses.replace(obs, images={**obs.images, "spare": np.zeros((10, 10, 3), np.uint8)})
    assert policy.infer(obs).values.shape == (cfg.horizon, cfg.action_dim)


def test_camera_order_comes_from_the_spec_not_the_dict(policy):
    cfg = policy.model.config
    obs = observation(cfg)
    reordered = dataclasses.replace(obs, images=dict(reversed(list(obs.images.items()))))
    swapped = dataclasses.replace(obs, images=dict(zip(cfg.cameras, reversed(list(obs.images.values())))))
    run = [
        FlowPolicy.from_model(policy.model, policy.state.norm_stats, num_threads=1, seed=0).infer(o).values
        for o in (obs, reordered, swapped)
    ]
    np.testing.assert_array_equal(run[0], run[1])
    assert not np.array_equal(run[0], run[2])


def test_images_scale_to_minus_one_one_and_resize():
    frames = np.zeros((2, 10, 12, 3), np.uint8)
    frames[0] = 255
    x = images_to_tensor(frames, (10, 12))
    assert x.shape == (2, 3, 10, 12) and x.dtype == torch.float32
    assert torch.all(x[0] == 1.0) and torch.all(x[1] == -1.0)
    assert images_to_tensor(frames, (32, 32)).shape == (2, 3, 32, 32)


def _bad(obs, **changes):
    return dataclasses.replace(obs, **changes)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda o: _bad(o, images={"scene": o.images["scene"]}), r"observation lacks cameras \['wrist'\]"),
        (
            lambda o: _bad(o, images={**o.images, "wrist": o.images["wrist"].astype(np.float32)}),
            "camera 'wrist': image dtype is float32, expected uint8",
        ),
        (
            lambda o: _bad(o, images={**o.images, "scene": o.images["scene"][..., 0]}),
            r"camera 'scene': image shape is \(48, 64\)",
        ),
        (
            lambda o: _bad(o, images={**o.images, "scene": np.zeros((48, 64, 4), np.uint8)}),
            "expected \\(H, W, 3\\) RGB",
        ),
        (lambda o: _bad(o, images={**o.images, "scene": np.zeros((0, 64, 3), np.uint8)}), "expected \\(H, W, 3\\) RGB"),
        (lambda o: _bad(o, images={**o.images, "scene": [[0, 0, 0]]}), "must be a numpy array"),
        (lambda o: _bad(o, images=[1, 2]), "must be a dict"),
        (lambda o: _bad(o, state=o.state[:3]), r"state has shape \(3,\), this model takes \(8,\)"),
        (lambda o: _bad(o, state=np.full(8, np.nan, np.float32)), "state must be finite"),
        (lambda o: _bad(o, state=np.zeros(8, np.int64)), "state must be finite floats"),
        (lambda o: _bad(o, instruction=""), "instruction is empty"),
        (lambda o: _bad(o, instruction="   "), "instruction is empty"),
        (lambda o: _bad(o, instruction="go " * 300), "instruction is 900 characters long; the limit is 512"),
        (lambda o: _bad(o, instruction="go " * 100), "instruction is 100 tokens long; this model takes at most 16"),
        (lambda o: _bad(o, instruction="?!"), "has no words"),
    ],
)
def test_bad_observations_are_refused_with_the_reason(policy, change, message):
    with pytest.raises(PolicyError, match=message):
        policy.infer(change(observation(policy.model.config)))


def test_non_observation_is_refused(policy):
    with pytest.raises(PolicyError, match="infer takes an Observation"):
        policy.infer({"images": {}})


def test_the_policy_keeps_working_after_a_refusal(policy):
    obs = observation(policy.model.config)
    with pytest.raises(PolicyError):
        policy.infer(_bad(obs, instruction=""))
    assert policy.infer(obs).values.shape[0] == policy.model.config.horizon


def test_unknown_dtype_is_refused(stats):
    with pytest.raises(PolicyError, match="dtype 'float16' unknown"):
        FlowPolicy.from_model(random_model(), stats, dtype="float16")


def test_bfloat16_runs_on_cpu(stats):
    policy = FlowPolicy.from_model(random_model(), stats, dtype="bfloat16", num_threads=1)
    out = policy.infer(observation(tiny_config()))
    assert out.values.dtype == np.float32 and np.all(np.isfinite(out.values))


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has a GPU")
def test_gpu_asked_for_and_absent(tmp_path, stats):
    model = random_model()
    save_checkpoint(tmp_path, model, model.config, stats)
    with pytest.raises(PolicyError, match="no CUDA GPU"):
        FlowPolicy(tmp_path, device="cuda")


@pytest.fixture
def franka_checkpoint(tmp_path):
    from ros2_vla.config import load_robot_config
    from ros2_vla.policies.flow import config_for_robot, identity_norm_stats

    robot = load_robot_config("franka")
    model = random_model(config_for_robot("tiny", robot))
    save_checkpoint(tmp_path, model, model.config, identity_norm_stats(model.config.action_dim, model.config.state_dim))
    return tmp_path, robot


def test_from_options_builds_for_the_robot_it_was_made_for(franka_checkpoint):
    from ros2_vla.policies.registry import LoadOptions, load_policy

    folder, robot = franka_checkpoint
    policy = load_policy("flow", robot, LoadOptions(model=str(folder), device="auto", quantization="bf16"))
    assert isinstance(policy, FlowPolicy)
    assert policy.spec.cameras == tuple(c.name for c in robot.cameras)
    assert policy.model.expert.position.dtype == torch.bfloat16


def test_from_options_refuses_quantization_it_cannot_do(franka_checkpoint):
    from ros2_vla.policies.registry import LoadOptions

    folder, robot = franka_checkpoint
    with pytest.raises(PolicyError, match="not quantization '4bit'"):
        FlowPolicy.from_options(robot, LoadOptions(model=str(folder), quantization="4bit"))


def test_from_options_refuses_a_robot_without_the_models_cameras_or_state(franka_checkpoint):
    from ros2_vla.config import load_robot_config
    from ros2_vla.policies.registry import LoadOptions

    folder, _ = franka_checkpoint
    with pytest.raises(PolicyError, match=r"reads cameras \['scene'"):
        FlowPolicy.from_options(load_robot_config("aloha"), LoadOptions(model=str(folder)))
    with pytest.raises(PolicyError, match="takes a state of 8 values; robot 'widowx' has 7"):
        FlowPolicy.from_options(load_robot_config("widowx"), LoadOptions(model=str(folder)))
