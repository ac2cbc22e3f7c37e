"""Builders shared by the test_flow_* files: tiny models, batches and observations (no MiniLM)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from ros2_vla.policies.base import Observation
from ros2_vla.policies.flow import FlowConfig, FlowModel, get_config


@pytest.fixture(autouse=True)
def one_torch_thread():
    """Tiny models run fastest on one thread, and two threads on a shared 2-core machine spin-wait."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def tiny_config(**overrides) -> FlowConfig:
    return get_config("tiny", **overrides)


def random_model(config: FlowConfig | None = None, seed: int = 0) -> FlowModel:
    """A tiny model whose output layer is random too (a fresh model predicts v = 0 everywhere, which would
    hide whether the prefix reaches the output)."""
    torch.manual_seed(seed)
    model = FlowModel(config or tiny_config()).eval()
    torch.nn.init.normal_(model.expert.action_out.weight, std=0.5)
    torch.nn.init.normal_(model.expert.action_out.bias, std=0.5)
    return model


def tensor_batch(config: FlowConfig, instructions: list[str], seed: int = 1) -> dict:
    """Preprocessed images in [-1, 1], normalized state and actions, as `flow_matching_loss` takes them."""
    g = torch.Generator().manual_seed(seed)
    b, (h, w) = len(instructions), config.image_size
    return {
        "images": {c: torch.rand(b, 3, h, w, generator=g) * 2 - 1 for c in config.cameras},
        "state": torch.randn(b, config.state_dim, generator=g),
        "instruction": list(instructions),
        "actions": torch.rand(b, config.horizon, config.action_dim, generator=g) * 2 - 1,
    }


def observation(
    config: FlowConfig, seed: int = 0, size: tuple[int, int] = (48, 64), instruction: str = "pick up the red cube"
) -> Observation:
    rng = np.random.default_rng(seed)
    images = {c: rng.integers(0, 256, (*size, 3), dtype=np.uint8) for c in config.cameras}
    return Observation(
        stamp=1.0, images=images, state=rng.normal(size=config.state_dim).astype(np.float32), instruction=instruction
    )
