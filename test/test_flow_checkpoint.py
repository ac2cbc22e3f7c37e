"""Flow checkpoints: round trip, and every broken folder refused with the file named."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from flow_helpers import observation, one_torch_thread, random_model, tiny_config  # noqa: F401

from ros2_vla.errors import PolicyError
from ros2_vla.policies.flow import FlowPolicy, identity_norm_stats, load_checkpoint, save_checkpoint
from ros2_vla.policies.flow.norm import compute_norm_stats, default_action_mask


@pytest.fixture
def checkpoint(tmp_path):
    model = random_model()
    config = model.config
    rng = np.random.default_rng(0)
    stats = compute_norm_stats(
        rng.normal(size=(100, config.horizon, config.action_dim)),
        rng.normal(size=(100, config.state_dim)),
        default_action_mask(config.dimension_names),
    )
    save_checkpoint(tmp_path / "ckpt", model, config, stats)
    return tmp_path / "ckpt", model, stats


def test_round_trip_restores_weights_config_and_stats(checkpoint):
    folder, model, stats = checkpoint
    assert sorted(p.name for p in folder.iterdir()) == ["config.json", "model.safetensors", "norm_stats.json"]
    loaded, config, loaded_stats = load_checkpoint(folder)
    assert config == model.config
    for (name, a), (_, b) in zip(model.state_dict().items(), loaded.state_dict().items()):
        assert torch.equal(a, b), name
    np.testing.assert_array_equal(loaded_stats.action.q01, stats.action.q01)
    np.testing.assert_array_equal(loaded_stats.state.std, stats.state.std)
    np.testing.assert_array_equal(loaded_stats.action_mask, stats.action_mask)
    assert not loaded.training


def test_round_trip_gives_identical_chunks(checkpoint):
    folder, model, stats = checkpoint
    obs = observation(model.config)
    from_disk = FlowPolicy(folder, num_threads=1, seed=3).infer(obs)
    in_memory = FlowPolicy.from_model(model, stats, num_threads=1, seed=3).infer(obs)
    np.testing.assert_array_equal(from_disk.values, in_memory.values)
    np.testing.assert_array_equal(from_disk.low, in_memory.low)


def test_missing_folder(tmp_path):
    with pytest.raises(PolicyError, match="does not exist"):
        load_checkpoint(tmp_path / "nowhere")


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("config.json", "config.json is missing"),
        ("model.safetensors", "model.safetensors is missing"),
        ("norm_stats.json", "norm_stats.json is missing"),
    ],
)
def test_missing_file_is_named(checkpoint, name, message):
    folder = checkpoint[0]
    (folder / name).unlink()
    with pytest.raises(PolicyError, match=message):
        load_checkpoint(folder)


def _edit_config(folder, edit) -> None:
    doc = json.loads((folder / "config.json").read_text())
    edit(doc)
    (folder / "config.json").write_text(json.dumps(doc))


def test_wrong_architecture_is_refused(checkpoint):
    folder = checkpoint[0]
    _edit_config(folder, lambda d: d.update(architecture="openvla"))
    message = r"config.json: architecture is 'openvla', this backend loads 'ros2_vla\.flow'"
    with pytest.raises(PolicyError, match=message):
        load_checkpoint(folder)


def test_malformed_config_is_refused(checkpoint):
    folder = checkpoint[0]
    (folder / "config.json").write_text("{not json")
    with pytest.raises(PolicyError, match="config.json is not readable JSON"):
        load_checkpoint(folder)
    _edit_config_text = {"architecture": "ros2_vla.flow", "format_version": 1, "config": {"heads": 3}}
    (folder / "config.json").write_text(json.dumps(_edit_config_text))
    with pytest.raises(PolicyError, match="config.json: FlowConfig"):
        load_checkpoint(folder)


def test_shape_mismatch_names_the_weights_file(checkpoint):
    folder = checkpoint[0]
    _edit_config(folder, lambda d: d["config"].update(expert_width=64))
    with pytest.raises(PolicyError, match=r"model.safetensors: expert\.\S+ has shape .* config.json implies"):
        load_checkpoint(folder)


def test_missing_layers_name_the_weights_file(checkpoint):
    folder = checkpoint[0]
    _edit_config(folder, lambda d: d["config"].update(depth=3))
    with pytest.raises(PolicyError, match=r"model.safetensors does not match config.json: missing \['prefix.blocks.1"):
        load_checkpoint(folder)


def test_corrupt_weights_file(checkpoint):
    folder = checkpoint[0]
    (folder / "model.safetensors").write_bytes(b"\x00" * 64)
    with pytest.raises(PolicyError, match="model.safetensors is not a readable safetensors file"):
        load_checkpoint(folder)


def test_norm_stats_of_the_wrong_size(checkpoint):
    folder = checkpoint[0]
    stats = identity_norm_stats(3, tiny_config().state_dim)
    (folder / "norm_stats.json").write_text(json.dumps(stats.to_dict()))
    with pytest.raises(PolicyError, match=r"norm_stats.json: action.mean must be 7 finite numbers"):
        load_checkpoint(folder)
    (folder / "norm_stats.json").write_text(json.dumps({"action": {}}))
    with pytest.raises(PolicyError, match="norm_stats.json: missing or malformed entry"):
        load_checkpoint(folder)


def test_save_refuses_a_config_that_is_not_the_models(tmp_path):
    model = random_model()
    with pytest.raises(PolicyError, match="differs"):
        save_checkpoint(tmp_path, model, tiny_config(horizon=9), identity_norm_stats(7, 8))


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has a GPU")
def test_gpu_asked_for_and_absent(checkpoint):
    with pytest.raises(PolicyError, match="no CUDA GPU is available here; use device 'cpu'"):
        load_checkpoint(checkpoint[0], device="cuda")


@pytest.mark.parametrize("device", ["tpu", "banana"])
def test_unsupported_device(checkpoint, device):
    with pytest.raises(PolicyError, match=f"device '{device}'"):
        load_checkpoint(checkpoint[0], device=device)
