"""Loading OpenVLA checkpoints natively: every quantization on the CPU, and every refusal, each one line and
before any tensor is read where the files already tell."""

from __future__ import annotations

import json

import pytest
import torch
from openvla_helpers import checkpoint_variant

from ros2_vla.errors import PolicyError
from ros2_vla.policies.openvla.checkpoint import read_checkpoint_config
from ros2_vla.policies.openvla.loading import (
    is_out_of_memory,
    load_checkpoint,
    oom_as_policy_error,
    resolve_device,
    resolve_quantization,
)
from ros2_vla.policies.openvla.weights import INDEX_FILE

bnb = pytest.importorskip("bitsandbytes")
pytestmark = pytest.mark.slow


def _types(module) -> set[str]:
    return {type(m).__name__ for m in module.modules()}


@pytest.mark.parametrize("quantization, dtype", [("fp32", torch.float32), ("bf16", torch.bfloat16)])
def test_fp32_and_bf16_load_every_weight_in_that_dtype(openvla_checkpoint, quantization, dtype):
    loaded = load_checkpoint(openvla_checkpoint, quantization, device="cpu")
    assert loaded.quantization == quantization and loaded.dtype == dtype
    assert {p.dtype for p in loaded.model.parameters()} == {dtype}
    assert not any(p.is_meta for p in loaded.model.parameters())
    assert not loaded.model.training and not any(p.requires_grad for p in loaded.model.parameters())


def test_fp32_is_the_cpu_default(openvla_checkpoint):
    loaded = load_checkpoint(openvla_checkpoint, device="cpu")
    assert loaded.quantization == "fp32" and loaded.device == torch.device("cpu")


def test_4bit_quantizes_the_llms_linear_layers_only(openvla_checkpoint):
    loaded = load_checkpoint(openvla_checkpoint, "4bit", "cpu")
    llm = loaded.model.language_model
    layers = [m for m in llm.modules() if isinstance(m, bnb.nn.Linear4bit)]
    assert len(layers) == 2 * 7  # q k v o gate up down in each of the 2 layers
    assert {layer.weight.quant_type for layer in layers} == {"nf4"}
    assert type(llm.lm_head) is torch.nn.Linear  # the action scores stay unquantized
    assert "Linear4bit" not in _types(loaded.model.vision_backbone) | _types(loaded.model.projector)


def test_8bit_quantizes_the_llm_with_llm_int8(openvla_checkpoint):
    loaded = load_checkpoint(openvla_checkpoint, "8bit", "cpu")
    assert sum(isinstance(m, bnb.nn.Linear8bitLt) for m in loaded.model.language_model.modules()) == 14


def test_a_bf16_model_takes_fp32_pixels(openvla_checkpoint):
    """The towers cast their input to their own dtype: an fp32 frame never meets a bf16 convolution."""
    loaded = load_checkpoint(openvla_checkpoint, "bf16", "cpu")
    with torch.no_grad():
        features = loaded.model.vision_backbone(torch.zeros(1, 6, 224, 224, dtype=torch.float32))
    assert features.shape == (1, 256, 2176) and features.dtype == torch.bfloat16


def test_missing_path_is_refused(tmp_path):
    with pytest.raises(PolicyError, match="does not exist"):
        load_checkpoint(tmp_path / "nowhere")


def test_file_instead_of_dir_is_refused(tmp_path):
    (tmp_path / "model.safetensors").write_bytes(b"")
    with pytest.raises(PolicyError, match="not a directory"):
        load_checkpoint(tmp_path / "model.safetensors")


def test_dir_without_config_is_refused(tmp_path):
    with pytest.raises(PolicyError, match="no config.json"):
        load_checkpoint(tmp_path)


def test_unreadable_config_is_refused(tmp_path):
    (tmp_path / "config.json").write_text("{")
    with pytest.raises(PolicyError, match="cannot read"):
        read_checkpoint_config(tmp_path)


def test_a_model_of_another_kind_is_refused(tmp_path):
    (tmp_path / "config.json").write_text(json.dumps({"model_type": "llama", "architectures": ["LlamaForCausalLM"]}))
    with pytest.raises(PolicyError, match="'llama' model .*not an OpenVLA checkpoint"):
        load_checkpoint(tmp_path, device="cpu")


@pytest.mark.parametrize(
    "field, value, message",
    [
        (
            "vision_backbone_id",
            "dinosiglip-vit-so-224",
            r"unknown vision_backbone_id .*Did you mean 'dinosiglip-vit-so-224px'",
        ),
        ("vision_backbone_id", "clip-vit-l", "no OpenVLA checkpoint uses"),
        ("llm_backbone_id", "llama3-8b", "unknown llm_backbone_id 'llama3-8b'"),
        ("timm_model_ids", ["vit_large_patch14_dinov2.lvd142m", "vit_so400m_patch14_siglip_224"], "do not match"),
        ("arch_specifier", "no-align+linear", "OpenVLA's projector"),
        ("image_sizes", [384, 384], "image_sizes .* do not match"),
    ],
)
def test_config_fields_that_do_not_describe_openvla_are_refused(openvla_checkpoint, tmp_path, field, value, message):
    broken = checkpoint_variant(openvla_checkpoint, tmp_path / "ck", config=lambda c: c.update({field: value}))
    with pytest.raises(PolicyError, match=message):
        load_checkpoint(broken, device="cpu")


def test_a_missing_weight_is_refused(openvla_checkpoint, tmp_path):
    broken = checkpoint_variant(
        openvla_checkpoint, tmp_path / "ck", index=lambda d: d["weight_map"].pop("projector.fc3.bias")
    )
    with pytest.raises(PolicyError, match=r"lacks 1 weight\(s\) the network needs: projector.fc3.bias"):
        load_checkpoint(broken, device="cpu")


def test_an_unexpected_weight_is_refused(openvla_checkpoint, tmp_path):
    broken = checkpoint_variant(openvla_checkpoint, tmp_path / "ck", extra={"projector.fc4.weight": torch.zeros(2, 2)})
    with pytest.raises(PolicyError, match=r"1 weight\(s\) the network has no place for: projector.fc4.weight"):
        load_checkpoint(broken, device="cpu")


def test_a_weight_of_the_wrong_shape_is_refused(openvla_checkpoint, tmp_path):
    broken = checkpoint_variant(openvla_checkpoint, tmp_path / "ck", extra={"projector.fc3.bias": torch.zeros(65)})
    with pytest.raises(PolicyError, match=r"wrong shape: projector.fc3.bias \[65\] \(expected \[64\]\)"):
        load_checkpoint(broken, device="cpu")


def test_a_missing_shard_or_weight_file_is_refused(openvla_checkpoint, tmp_path):
    broken = checkpoint_variant(openvla_checkpoint, tmp_path / "ck")
    next(broken.glob("model-00002-*.safetensors")).unlink()
    with pytest.raises(PolicyError, match="lacks the shard"):
        load_checkpoint(broken, device="cpu")
    (broken / INDEX_FILE).unlink()
    (broken / "pytorch_model.bin").write_bytes(b"")
    with pytest.raises(PolicyError, match="no model.safetensors.index.json or model.safetensors .*pytorch_model.bin"):
        load_checkpoint(broken, device="cpu")


def test_an_openvla_oft_checkpoint_is_refused_by_name(openvla_checkpoint, tmp_path):
    """OFT keeps OpenVLA's config and weights but acts through action_head--*.pt: tokens would be garbage."""
    oft = checkpoint_variant(openvla_checkpoint, tmp_path / "oft")
    (oft / "action_head--150000_checkpoint.pt").write_bytes(b"")
    with pytest.raises(PolicyError, match="OpenVLA-OFT checkpoint .*action_head--150000_checkpoint.pt"):
        load_checkpoint(oft, device="cpu")


def test_a_checkpoint_without_tokenizer_is_refused(openvla_checkpoint, tmp_path):
    broken = checkpoint_variant(openvla_checkpoint, tmp_path / "ck")
    (broken / "tokenizer.json").unlink()
    with pytest.raises(PolicyError, match="has no tokenizer"):
        load_checkpoint(broken, device="cpu")


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the refusal when no GPU is present")
@pytest.mark.parametrize("device", ["cuda", "cuda:0"])
def test_cuda_asked_without_gpu_is_refused(device):
    with pytest.raises(PolicyError, match=f"device '{device}' asked for but no CUDA GPU"):
        resolve_device(device)


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the refusal when no GPU is present")
def test_cuda_refusal_comes_before_weights(openvla_checkpoint):
    with pytest.raises(PolicyError, match="no CUDA GPU"):
        load_checkpoint(openvla_checkpoint, device="cuda")


def test_device_names():
    assert resolve_device("cpu") == "cpu"
    assert resolve_device("auto") == ("cuda:0" if torch.cuda.is_available() else "cpu")
    with pytest.raises(PolicyError, match="unknown device 'tpu'"):
        resolve_device("tpu")


def test_quantization_defaults_and_names():
    assert resolve_quantization(None, "cpu") == "fp32"
    assert resolve_quantization(None, "cuda:0") == "4bit"
    assert resolve_quantization("8bit", "cpu") == "8bit"
    with pytest.raises(PolicyError, match="unknown quantization 'int4'"):
        resolve_quantization("int4", "cpu")


@pytest.mark.parametrize(
    "exc",
    [
        torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB"),
        RuntimeError("CUDA error: out of memory"),
        RuntimeError("[enforce fail at alloc_cpu.cpp:117] DefaultCPUAllocator: can't allocate memory"),
        MemoryError(),
    ],
)
def test_out_of_memory_becomes_a_one_line_policy_error(exc):
    assert is_out_of_memory(exc)
    with pytest.raises(PolicyError, match="out of memory while loading x") as err:
        with oom_as_policy_error("loading x"):
            raise exc
    assert "\n" not in str(err.value) and "4bit" in str(err.value)
    assert err.value.__cause__ is exc


def test_other_errors_pass_through_unchanged():
    assert not is_out_of_memory(RuntimeError("shape mismatch"))
    with pytest.raises(ValueError, match="boom"):
        with oom_as_policy_error("loading x"):
            raise ValueError("boom")
