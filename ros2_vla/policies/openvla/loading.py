"""Loading a local OpenVLA-format checkpoint through transformers, quantized or not, failing clearly.

The JSON-only checks of checkpoint.py run first, so a wrong path or architecture costs milliseconds, not a
model load. Nothing is downloaded: `local_files_only=True`.

Auto classes: transformers 5 dropped `AutoModelForVision2Seq`; `AutoModelForImageTextToText` replaces it.
Real OpenVLA checkpoints ship their own model code and name it under `auto_map["AutoModelForVision2Seq"]`
in config.json. With `trust_remote_code=True` that entry is aliased to whichever auto class this
transformers has, so transformers' own remote-code path loads it (from the checkpoint dir only).
"""

from __future__ import annotations

import importlib.util
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

import torch

from ros2_vla.errors import PolicyError
from ros2_vla.policies.openvla.checkpoint import check_vision_to_text, read_checkpoint_config, remote_model_key

QUANTIZATIONS = ("4bit", "8bit", "bf16", "fp32")


@dataclass(frozen=True, eq=False)
class LoadedModel:
    """A model ready for `generate`, with what is needed to feed it."""

    model: Any  # a transformers PreTrainedModel in eval mode
    processor: Any  # the checkpoint's processor: tokenizer + image processor
    device: torch.device  # where inputs must go
    dtype: torch.dtype  # floating dtype of the unquantized parts (inputs such as pixel_values are cast to it)
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


def first_line(exc: BaseException) -> str:
    lines = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {lines[0] if lines else ''}"


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


def _load_kwargs(quantization: str, device: str) -> tuple[dict, torch.dtype]:
    """from_pretrained arguments for a quantization, and the floating dtype of unquantized parts."""
    if quantization == "8bit":
        dtype = torch.float16  # LLM.int8 multiplies in fp16: other input dtypes are cast (and logged) every call
    elif quantization == "bf16" or (quantization == "4bit" and device.startswith("cuda")):
        dtype = torch.bfloat16
    else:  # fp32, and 4-bit on CPU (tiny model: fp32 17 ms a step, bf16 61 ms on this CPU)
        dtype = torch.float32
    _require("accelerate", "loading onto a device (device_map)")
    kwargs: dict = {"dtype": dtype, "device_map": {"": device}, "local_files_only": True}
    if quantization in ("4bit", "8bit"):
        _require("bitsandbytes", f"quantization {quantization!r}")
        from transformers import BitsAndBytesConfig

        if quantization == "4bit":
            quant = BitsAndBytesConfig(load_in_4bit=True, bnb_4bit_quant_type="nf4", bnb_4bit_compute_dtype=dtype)
        else:
            quant = BitsAndBytesConfig(load_in_8bit=True)
        kwargs["quantization_config"] = quant
    return kwargs, dtype


def _model_from_pretrained(path: Path, remote: bool, trust_remote_code: bool, kwargs: dict) -> Any:
    import transformers
    from transformers import AutoConfig

    auto_cls = getattr(transformers, "AutoModelForImageTextToText", None) or transformers.AutoModelForVision2Seq
    config = AutoConfig.from_pretrained(path, trust_remote_code=trust_remote_code, local_files_only=True)
    if remote:
        # Point this transformers' auto class at the class the checkpoint names under its (older) key.
        auto_map = dict(config.auto_map)
        auto_map.setdefault(auto_cls.__name__, auto_map[remote_model_key(auto_map)])
        config.auto_map = auto_map
    model, info = auto_cls.from_pretrained(
        path, config=config, trust_remote_code=trust_remote_code, output_loading_info=True, **kwargs
    )
    missing = sorted(info.get("missing_keys") or [])
    if missing:  # transformers would go on with random weights there: useless actions, so refuse
        raise PolicyError(
            f"checkpoint {path} lacks {len(missing)} weights its model needs (e.g. {', '.join(missing[:3])}): "
            "the weights do not match config.json or the model code"
        )
    return model


def load_checkpoint(
    path: str | Path, quantization: str | None = None, device: str = "auto", trust_remote_code: bool = False
) -> LoadedModel:
    """Load model and processor from a local dir. Raises PolicyError with a one-line reason on any failure."""
    path = Path(path).expanduser()
    config = read_checkpoint_config(path)
    remote = check_vision_to_text(config, path, trust_remote_code)
    device = resolve_device(device)
    quantization = resolve_quantization(quantization, device)
    kwargs, dtype = _load_kwargs(quantization, device)
    from transformers import AutoProcessor

    try:
        with oom_as_policy_error(f"loading {path} ({quantization}) on {device}"):
            processor = AutoProcessor.from_pretrained(path, trust_remote_code=trust_remote_code, local_files_only=True)
            model = _model_from_pretrained(path, remote, trust_remote_code, kwargs).eval()
    except PolicyError:
        raise
    except Exception as exc:  # transformers raises many types (OSError, ValueError, ImportError, ...)
        raise PolicyError(f"cannot load checkpoint {path} ({quantization} on {device}): {first_line(exc)}") from exc
    for part in ("tokenizer", "image_processor"):
        if getattr(processor, part, None) is None:
            raise PolicyError(f"the processor of {path} has no {part}: the openvla backend needs both")
    return LoadedModel(model, processor, torch.device(device), dtype, quantization)
