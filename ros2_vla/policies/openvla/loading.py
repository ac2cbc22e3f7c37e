"""Loading a local OpenVLA checkpoint natively: the package's own network, the checkpoint's weights.

No remote code runs and nothing is downloaded. In order, each step failing with one clear line:
config.json (architecture.py), the processor files (processor.py), the weight files' keys and shapes
against the network built on the meta device (weights.py), then the tensors, cast per part, and for
4-bit/8-bit the language model's linear layers quantized one by one onto the device (quantize.py).

Dtypes: fp32 and bf16 are what they say. 4-bit (NF4) and 8-bit quantize the language model's linear
layers; its other weights and the vision backbone and projector are bf16 on CUDA (OpenVLA's recipe),
fp16 for 8-bit (LLM.int8 multiplies in fp16), and fp32 on the CPU, where bf16 matmuls are several times
slower (tiny model: fp32 17 ms a step, bf16 61 ms on this CPU).
"""

from __future__ import annotations

import importlib.util
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import torch

from ros2_vla.errors import PolicyError, first_line
from ros2_vla.policies.openvla.architecture import OpenVlaArchitecture, read_architecture
from ros2_vla.policies.openvla.model import OpenVlaModel
from ros2_vla.policies.openvla.processor import OpenVlaProcessor, load_processor
from ros2_vla.policies.openvla.quantize import quantize_linears
from ros2_vla.policies.openvla.weights import check_keys, checkpoint_shapes, read_weights, weight_files

QUANTIZATIONS = ("4bit", "8bit", "bf16", "fp32")
LLM_PREFIX = "language_model."


@dataclass(frozen=True, eq=False)
class LoadedModel:
    """A model ready for decoding, with what is needed to feed it."""

    model: OpenVlaModel  # in eval mode, gradients off
    processor: OpenVlaProcessor  # tokenizer + image steps
    arch: OpenVlaArchitecture  # what config.json said
    device: torch.device  # where inputs must go
    dtype: torch.dtype  # floating dtype of the unquantized parts (pixel_values are cast to the towers' own)
    quantization: str  # one of QUANTIZATIONS


def resolve_device(device: str) -> str:
    """'cpu', 'cuda', 'cuda:N' or 'auto' (cuda when available) to a concrete torch device string."""
    device = (device or "auto").strip().lower()
    if device == "auto":
        return "cuda:0" if torch.cuda.is_available() else "cpu"
    if device == "cpu":
        return device
    if device == "cuda" or device.startswith("cuda:"):
        if not torch.cuda.is_available():
            build = "without CUDA" if torch.version.cuda is None else f"with CUDA {torch.version.cuda}"
            raise PolicyError(
                f"device {device!r} asked for but no CUDA GPU is usable (torch {torch.__version__} built {build}); "
                "set device to 'cpu' or 'auto'"
            )
        return "cuda:0" if device == "cuda" else device
    raise PolicyError(f"unknown device {device!r}: use 'cpu', 'cuda', 'cuda:N' or 'auto'")


def resolve_quantization(quantization: str | None, device: str) -> str:
    """The quantization to load with: as given, or '4bit' on CUDA (fits a 7B model in ~7 GB) and 'fp32' on CPU."""
    if quantization is None or quantization in ("", "auto"):
        return "4bit" if device.startswith("cuda") else "fp32"
    if quantization not in QUANTIZATIONS:
        raise PolicyError(f"unknown quantization {quantization!r}: use one of {', '.join(QUANTIZATIONS)}")
    return quantization


def is_out_of_memory(exc: BaseException) -> bool:
    """True for the ways torch reports exhausted GPU or host memory."""
    oom_types = tuple(t for t in (getattr(torch, "OutOfMemoryError", None), MemoryError) if t is not None)
    if isinstance(exc, oom_types):
        return True
    text = str(exc).lower()
    return isinstance(exc, RuntimeError) and ("out of memory" in text or "can't allocate memory" in text)


@contextmanager
def oom_as_policy_error(doing: str) -> Iterator[None]:
    """Turn an out-of-memory error raised inside into a one-line PolicyError; other errors pass unchanged."""
    try:
        yield
    except Exception as exc:
        if not is_out_of_memory(exc):
            raise
        if torch.cuda.is_available():
            torch.cuda.empty_cache()  # give back what the failed allocation left cached, so a retry can fit
        raise PolicyError(
            f"out of memory while {doing} ({first_line(exc)}); try quantization '4bit', a smaller model or "
            "another device"
        ) from exc


def _require(module: str, why: str) -> None:
    if importlib.util.find_spec(module) is None:
        raise PolicyError(f"{why} needs the {module!r} package: pip install {module}")


def part_dtype(quantization: str, device: str) -> torch.dtype:
    """The floating dtype of every unquantized weight for a quantization on a device (see the module doc)."""
    if quantization == "fp32":
        return torch.float32
    if quantization == "bf16":
        return torch.bfloat16
    if not device.startswith("cuda"):
        return torch.float32
    return torch.float16 if quantization == "8bit" else torch.bfloat16


def _build(arch: OpenVlaArchitecture) -> OpenVlaModel:
    """The network with its parameters on the meta device (no memory) and its small buffers (rotary
    frequencies) real, ready for `load_state_dict(assign=True)`."""
    from accelerate import init_empty_weights

    with init_empty_weights(include_buffers=False):
        return OpenVlaModel(arch)


def _load_weights(model: OpenVlaModel, path: Path, dtype: torch.dtype, device: str, quantization: str) -> None:
    files = weight_files(path)
    expected = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    check_keys(expected, checkpoint_shapes(files), path)
    staging = "cpu" if quantization in ("4bit", "8bit") else device  # quantized layer by layer from the host
    state = read_weights(files, dtype, staging)
    model.load_state_dict(state, strict=True, assign=True)
    del state
    if quantization in ("4bit", "8bit"):
        _require("bitsandbytes", f"quantization {quantization!r}")
        quantize_linears(model.language_model, quantization, dtype, device)
    model.to(device)


def load_checkpoint(path: str | Path, quantization: str | None = None, device: str = "auto") -> LoadedModel:
    """Load model and processor from a local dir. Raises PolicyError with a one-line reason on any failure."""
    path = Path(path).expanduser()
    arch = read_architecture(path)
    processor = load_processor(path, arch)
    device = resolve_device(device)
    quantization = resolve_quantization(quantization, device)
    dtype = part_dtype(quantization, device)
    try:
        with oom_as_policy_error(f"loading {path} ({quantization}) on {device}"):
            model = _build(arch)
            _load_weights(model, path, dtype, device, quantization)
    except PolicyError:
        raise
    except Exception as exc:  # safetensors, torch and bitsandbytes raise many types for a damaged file
        raise PolicyError(f"cannot load checkpoint {path} ({quantization} on {device}): {first_line(exc)}") from exc
    model.eval().requires_grad_(False)
    model.name_or_path = str(path)  # peft records it as an adapter's base_model_name_or_path
    return LoadedModel(model, processor, arch, torch.device(device), dtype, quantization)
