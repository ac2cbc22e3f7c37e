"""Loading checkpoints: quantizations on CPU (bitsandbytes 4-bit and 8-bit), remote code, and every refusal."""

from __future__ import annotations

import json
import shutil

import pytest
import torch
from safetensors.torch import load_file, save_file
from transformers import LlamaConfig, LlavaForConditionalGeneration

from ros2_vla.errors import PolicyError
from ros2_vla.policies.openvla.checkpoint import read_checkpoint_config
from ros2_vla.policies.openvla.loading import (
    is_out_of_memory,
    load_checkpoint,
    oom_as_policy_error,
    resolve_device,
    resolve_quantization,
)
from ros2_vla.policies.openvla.tiny import build_tiny_checkpoint

bnb = pytest.importorskip("bitsandbytes")


@pytest.fixture(scope="module")
def tiny_dir(tmp_path_factory):
    return build_tiny_checkpoint(tmp_path_factory.mktemp("tiny_openvla"))


def _remote_variant(src, dst):
    """A copy of the tiny checkpoint laid out like a real OpenVLA one: its own config and model classes in the
    dir, named in auto_map under AutoModelForVision2Seq, a model_type transformers does not know."""
    shutil.copytree(src, dst)
    (dst / "configuration_tinyvla.py").write_text(
        "from transformers import LlavaConfig\n\n\nclass TinyVlaConfig(LlavaConfig):\n    model_type = 'tinyvla'\n"
    )
    (dst / "modeling_tinyvla.py").write_text(
        "from transformers import LlavaForConditionalGeneration\n\n"
        "from .configuration_tinyvla import TinyVlaConfig\n\n\n"
        "class TinyVlaForActionPrediction(LlavaForConditionalGeneration):\n    config_class = TinyVlaConfig\n"
    )
    config = json.loads((dst / "config.json").read_text())
    config.update(model_type="tinyvla", architectures=["TinyVlaForActionPrediction"], auto_map={
        "AutoConfig": "configuration_tinyvla.TinyVlaConfig",
        "AutoModelForVision2Seq": "modeling_tinyvla.TinyVlaForActionPrediction",
    })
    (dst / "config.json").write_text(json.dumps(config))
    # transformers renames legacy Llava weight names by model_type; an unknown type needs today's names
    model = LlavaForConditionalGeneration.from_pretrained(src)
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, dst / "model.safetensors", {"format": "pt"})
    return dst


def _linear_types(model) -> set[str]:
    return {type(m).__name__ for m in model.modules()}


def test_fp32_is_the_cpu_default(tiny_dir):
    loaded = load_checkpoint(tiny_dir, device="cpu")
    assert loaded.quantization == "fp32" and loaded.dtype == torch.float32
    assert loaded.device == torch.device("cpu")
    assert not loaded.model.training
    assert "Linear4bit" not in _linear_types(loaded.model)


def test_4bit_nf4_loads_as_linear4bit_on_cpu(tiny_dir):
    loaded = load_checkpoint(tiny_dir, "4bit", "cpu")
    layers = [m for m in loaded.model.modules() if isinstance(m, bnb.nn.Linear4bit)]
    assert len(layers) >= 10  # attention and MLP projections of both towers and the projector
    assert {layer.weight.quant_type for layer in layers} == {"nf4"}


def test_8bit_loads_as_linear8bitlt_on_cpu(tiny_dir):
    loaded = load_checkpoint(tiny_dir, "8bit", "cpu")
    assert any(isinstance(m, bnb.nn.Linear8bitLt) for m in loaded.model.modules())
    assert loaded.dtype == torch.float16  # LLM.int8's own compute dtype


def test_bf16_loads_bf16_weights(tiny_dir):
    loaded = load_checkpoint(tiny_dir, "bf16", "cpu")
    assert {p.dtype for p in loaded.model.parameters()} == {torch.bfloat16}


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


def test_text_only_model_is_refused_before_loading_weights(tmp_path):
    LlamaConfig(hidden_size=64, num_hidden_layers=1).save_pretrained(tmp_path)  # config only, no weights
    with pytest.raises(PolicyError, match="'llama' model .*not an image-text-to-text"):
        load_checkpoint(tmp_path, device="cpu")


def test_missing_weights_are_refused(tiny_dir, tmp_path):
    broken = tmp_path / "broken"
    shutil.copytree(tiny_dir, broken)
    weights = load_file(broken / "model.safetensors")
    dropped = next(k for k in weights if k.endswith("lm_head.weight"))
    del weights[dropped]
    save_file(weights, broken / "model.safetensors", {"format": "pt"})
    with pytest.raises(PolicyError, match="lacks 1 weights"):
        load_checkpoint(broken, device="cpu")


def test_remote_code_needs_trust(tiny_dir, tmp_path):
    remote = _remote_variant(tiny_dir, tmp_path / "remote")
    with pytest.raises(PolicyError, match="trust_remote_code"):
        load_checkpoint(remote, device="cpu")


def test_remote_code_vision2seq_entry_loads_when_trusted(tiny_dir, tmp_path):
    # transformers 5 has no AutoModelForVision2Seq: the entry real OpenVLA checkpoints use must still work
    remote = _remote_variant(tiny_dir, tmp_path / "remote")
    loaded = load_checkpoint(remote, "fp32", "cpu", trust_remote_code=True)
    assert type(loaded.model).__name__ == "TinyVlaForActionPrediction"
    assert type(loaded.model).__module__.startswith("transformers_modules")


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the refusal when no GPU is present")
@pytest.mark.parametrize("device", ["cuda", "cuda:0"])
def test_cuda_asked_without_gpu_is_refused(device):
    with pytest.raises(PolicyError, match=f"device '{device}' asked for but no CUDA GPU"):
        resolve_device(device)


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the refusal when no GPU is present")
def test_cuda_refusal_comes_before_weights(tiny_dir):
    with pytest.raises(PolicyError, match="no CUDA GPU"):
        load_checkpoint(tiny_dir, device="cuda")


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
