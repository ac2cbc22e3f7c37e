"""Real-time chunking in the flow backend: which steps are frozen to what, the guided sampler, the delay
measured online, and the chunk's frozen_steps reaching the bridge."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch
from flow_helpers import observation, one_torch_thread, random_model, tiny_config  # noqa: F401

from ros2_vla.config import load_robot_config
from ros2_vla.errors import ConfigError, PolicyError
from ros2_vla.policies.flow import FlowPolicy, compute_norm_stats, default_action_mask
from ros2_vla.policies.flow.rtc import (
    ChunkHistory,
    DelayEstimate,
    Guidance,
    PreviousChunk,
    RtcConfig,
    guidance_for,
    guidance_scale,
    prefix_weights,
)
from ros2_vla.policies.registry import LoadOptions, load_policy

DT = 0.1


@pytest.fixture
def stats():
    config = tiny_config()
    rng = np.random.default_rng(0)
    actions = rng.normal(size=(200, config.action_dim))
    state = rng.normal(size=(200, config.state_dim))
    return compute_norm_stats(actions, state, default_action_mask(config.dimension_names))


def _chunk(stamp: float, value: float, horizon: int = 10, dim: int = 2, instruction: str = "go") -> PreviousChunk:
    """Step k holds value + k, so a target row says which chunk and step it came from."""
    actions = value + torch.arange(horizon, dtype=torch.float32)[:, None].repeat(1, dim)
    return PreviousChunk(stamp, instruction, actions)


def test_prefix_weights_freeze_then_decay_to_zero_at_the_end_of_the_overlap():
    w = prefix_weights(10, 3, 8)
    np.testing.assert_array_equal(w[:3], 1.0)
    assert np.all(np.diff(w[3:8]) < 0) and 0 < w[7] < w[3] < 1
    np.testing.assert_array_equal(w[8:], 0.0)
    np.testing.assert_array_equal(prefix_weights(10, 12, 8), [1.0] * 8 + [0.0] * 2)  # never past the overlap


def test_one_chunk_in_flight_freezes_the_previous_chunks_steps():
    history = ChunkHistory()
    history.add(_chunk(0.0, 100.0))
    # Observation 0.3 s later, delay 0.3 s: the previous chunk (delivered at 0.3) plays steps 3, 4, 5 meanwhile.
    g = guidance_for(history, 0.3, "go", DT, 0.3)
    assert g.frozen == 3
    np.testing.assert_array_equal(g.target[:7, 0].numpy(), 100.0 + np.arange(3, 10))
    np.testing.assert_array_equal(g.target[7:].numpy(), 0.0)
    np.testing.assert_allclose(g.weights.numpy(), prefix_weights(10, 3, 7), rtol=1e-6)


def test_several_chunks_in_flight_each_frozen_step_comes_from_the_chunk_played_then():
    history = ChunkHistory()
    for i, value in enumerate((100.0, 200.0, 300.0)):  # asked for every 0.1 s, each delivered 0.3 s later
        history.add(_chunk(0.1 * i, value))
    g = guidance_for(history, 0.3, "go", DT, 0.3)
    # Slot 0 (0.3-0.4 s): the first chunk, delivered at 0.3, at its step 3; slot 1: the second at its step 3; ...
    np.testing.assert_allclose(g.target[:3, 0].numpy(), [103.0, 203.0, 303.0])
    assert g.frozen == 3
    np.testing.assert_allclose(g.target[3:8, 0].numpy(), 300.0 + np.arange(4, 9))  # then the newest, softly


def test_no_guidance_without_a_chunk_to_continue():
    history = ChunkHistory()
    assert guidance_for(history, 0.0, "go", DT, 0.3) is None
    history.add(_chunk(0.0, 1.0))
    assert guidance_for(history, 0.5, "stop", DT, 0.3) is None  # another task
    assert guidance_for(history, 1.0, "go", DT, 0.3) is None  # the previous chunk is over


def test_a_clock_that_goes_back_or_a_new_task_empties_the_history():
    history = ChunkHistory()
    history.add(_chunk(5.0, 1.0))
    history.add(_chunk(0.0, 2.0))  # a sim reset
    assert history.played_at(10.0, 0.0).stamp == 0.0 and history.played_at(4.0, 0.0).stamp == 0.0
    history.add(_chunk(0.1, 3.0, instruction="other"))
    assert history.played_at(10.0, 0.0).instruction == "other" and history.played_at(0.05, 0.0) is None


def test_the_delay_estimate_is_the_largest_recent_and_ignores_nonsense():
    delay = DelayEstimate(window=3, initial=0.05)
    assert delay.seconds == 0.05
    for s in (0.2, 0.35, float("nan"), -1.0, 0.1, 0.12, 0.11):
        delay.observe(s)
    assert delay.seconds == pytest.approx(0.12)  # 0.35 has left the window of 3


def test_guidance_scale_is_capped_at_the_noise_end():
    assert guidance_scale(1.0, 5.0) == 5.0
    assert guidance_scale(0.5, 5.0) == pytest.approx(2.0)
    assert guidance_scale(0.05, 5.0) == 5.0


def test_rtc_config_is_checked():
    with pytest.raises(ConfigError, match="max_guidance"):
        RtcConfig(max_guidance=0.0)
    with pytest.raises(ConfigError, match="delay_window"):
        RtcConfig(delay_window=0)


def test_guided_sampling_holds_the_frozen_steps_and_pulls_the_overlap():
    model = random_model()
    cfg = model.config
    with torch.no_grad():
        obs_cache = model.encode_prefix(
            model.make_inputs(
                {c: torch.zeros(1, 3, *cfg.image_size) for c in cfg.cameras},
                torch.zeros(1, cfg.state_dim),
                model.encode_text(["go"]),
            )
        )
        noise = model.noise(1, torch.Generator().manual_seed(0))
        free = model.sample(obs_cache, noise=noise.clone())[0]
        target = torch.randn(cfg.horizon, cfg.action_dim, generator=torch.Generator().manual_seed(1))
        weights = torch.as_tensor(prefix_weights(cfg.horizon, 2, cfg.horizon), dtype=torch.float32)
        guided = model.sample_guided(obs_cache, Guidance(target, weights, 2), 5.0, noise=noise.clone())[0]
    torch.testing.assert_close(guided[:2], target[:2], atol=1e-5, rtol=0)
    soft = slice(2, cfg.horizon - 1)
    assert (guided[soft] - target[soft]).abs().mean() < (free[soft] - target[soft]).abs().mean()


def test_flow_policy_with_rtc_continues_its_own_chunks(stats):
    model = random_model(tiny_config(horizon=10))
    policy = FlowPolicy.from_model(model, stats, num_threads=1, rtc=RtcConfig())
    obs = observation(model.config)
    first = policy.infer(obs)
    assert first.frozen_steps == 0  # nothing to continue yet
    policy.observe_delay(0.25)  # the chunk reached the robot 0.25 s after its observation: 3 steps of 0.1 s
    # The next observation when inference runs back to back: 0.3 s on. Its steps 0-2 (1.3-1.6 s) are played
    # from the first chunk, delivered at 1.25 s: its steps 3-5.
    second = policy.infer(dataclasses.replace(obs, stamp=obs.stamp + 0.3))
    assert second.frozen_steps == 3
    np.testing.assert_allclose(second.values[:3], first.values[3:6], atol=1e-5)
    policy.reset()  # a new episode
    assert policy.infer(dataclasses.replace(obs, stamp=obs.stamp + 0.3)).frozen_steps == 0


def test_flow_policy_without_rtc_never_freezes(stats):
    policy = FlowPolicy.from_model(random_model(), stats, num_threads=1)
    obs = observation(policy.model.config)
    policy.infer(obs)
    policy.observe_delay(0.3)
    assert policy.infer(dataclasses.replace(obs, stamp=obs.stamp + 0.1)).frozen_steps == 0


def test_rtc_is_refused_for_backends_that_cannot_do_it():
    with pytest.raises(PolicyError, match="real-time chunking"):
        load_policy("openpi", load_robot_config("franka"), LoadOptions(model="", server="localhost:1", rtc=True))
