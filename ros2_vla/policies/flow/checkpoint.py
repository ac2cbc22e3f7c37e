"""Flow checkpoints: a folder holding `model.safetensors`, `config.json` and `norm_stats.json`.

config.json: {"architecture": "ros2_vla.flow", "format_version": 1, "config": FlowConfig fields}.
The frozen MiniLM text encoder is not saved: it comes from its own package.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from ros2_vla.errors import PolicyError
from ros2_vla.policies.flow.config import ARCHITECTURE, FlowConfig
from ros2_vla.policies.flow.model import FlowModel
from ros2_vla.policies.flow.norm import NormStats, read_norm_stats

FORMAT_VERSION = 1
WEIGHTS, CONFIG, NORM_STATS = "model.safetensors", "config.json", "norm_stats.json"


def save_checkpoint(directory: str | Path, model: FlowModel, config: FlowConfig, norm_stats: NormStats) -> Path:
    """Write the three files into `directory` (created if needed); returns the folder."""
    if config != model.config:
        raise PolicyError("save_checkpoint: config differs from the model's own config")
    folder = Path(directory)
    folder.mkdir(parents=True, exist_ok=True)
    weights = {k: v.detach().to("cpu").contiguous() for k, v in model.state_dict().items()}
    save_file(weights, str(folder / WEIGHTS), metadata={"architecture": ARCHITECTURE})
    doc = {"architecture": ARCHITECTURE, "format_version": FORMAT_VERSION, "config": config.to_dict()}
    (folder / CONFIG).write_text(json.dumps(doc, indent=2) + "\n")
    (folder / NORM_STATS).write_text(json.dumps(norm_stats.to_dict(), indent=2) + "\n")
    return folder


def read_config(directory: str | Path) -> FlowConfig:
    """The FlowConfig in `directory/config.json`; PolicyError naming the file when absent or foreign."""
    path = Path(directory) / CONFIG
    if not Path(directory).is_dir():
        raise PolicyError(f"flow checkpoint folder {directory} does not exist")
    try:
        doc = json.loads(path.read_text())
    except FileNotFoundError as e:
        raise PolicyError(f"{path} is missing: not a flow checkpoint folder") from e
    except (OSError, json.JSONDecodeError) as e:
        raise PolicyError(f"{path} is not readable JSON: {e}") from e
    arch = doc.get("architecture") if isinstance(doc, dict) else None
    if arch != ARCHITECTURE:
        raise PolicyError(f"{path}: architecture is {arch!r}, this backend loads {ARCHITECTURE!r} checkpoints")
    if doc.get("format_version") != FORMAT_VERSION:
        raise PolicyError(f"{path}: format_version {doc.get('format_version')!r}, this code reads {FORMAT_VERSION}")
    if not isinstance(doc.get("config"), dict):
        raise PolicyError(f"{path}: no 'config' object")
    try:
        return FlowConfig.from_dict(doc["config"])
    except PolicyError as e:
        raise PolicyError(f"{path}: {e}") from e


def resolve_device(device: str | torch.device) -> torch.device:
    """`device` as a torch.device; PolicyError when it is malformed or not present on this machine."""
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError) as e:
        raise PolicyError(f"device {device!r} is not a torch device (use 'cpu' or 'cuda[:N]')") from e
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            raise PolicyError(f"device {device!r} asked for, but no CUDA GPU is available here; use device 'cpu'")
        if dev.index is not None and dev.index >= torch.cuda.device_count():
            raise PolicyError(f"device {device!r} asked for, but only {torch.cuda.device_count()} GPU(s) exist")
    elif dev.type != "cpu":
        raise PolicyError(f"device {device!r} is not supported by the flow backend; use 'cpu' or 'cuda[:N]'")
    return dev


def load_checkpoint(
    directory: str | Path, device: str | torch.device = "cpu"
) -> tuple[FlowModel, FlowConfig, NormStats]:
    """(model in eval mode on `device`, its config, its norm stats); PolicyError naming the bad file."""
    device = resolve_device(device)
    folder = Path(directory)
    config = read_config(folder)
    norm_stats = read_norm_stats(folder / NORM_STATS, config.action_dim, config.state_dim)
    path = folder / WEIGHTS
    if not path.is_file():
        raise PolicyError(f"{path} is missing: a flow checkpoint needs model.safetensors")
    try:
        weights = load_file(str(path), device="cpu")
    except (SafetensorError, OSError) as e:
        raise PolicyError(f"{path} is not a readable safetensors file: {e}") from e
    model = FlowModel(config)
    _check_weights(model, weights, path)
    model.load_state_dict(weights, strict=True)
    return model.to(device).eval(), config, norm_stats


def _check_weights(model: FlowModel, weights: dict[str, torch.Tensor], path: Path) -> None:
    expected = model.state_dict()
    missing = sorted(set(expected) - set(weights))
    unexpected = sorted(set(weights) - set(expected))
    if missing or unexpected:
        raise PolicyError(
            f"{path} does not match config.json: missing {missing[:5]}, unexpected {unexpected[:5]}"
            f"{' (and more)' if len(missing) > 5 or len(unexpected) > 5 else ''}"
        )
    for name, tensor in expected.items():
        if weights[name].shape != tensor.shape:
            raise PolicyError(
                f"{path}: {name} has shape {tuple(weights[name].shape)}, config.json implies {tuple(tensor.shape)}"
            )
