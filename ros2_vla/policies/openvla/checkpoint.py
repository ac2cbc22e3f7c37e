"""What a checkpoint dir says about itself, read from JSON before any weight or code is loaded.

A checkpoint must be a local directory with a config.json describing an image-text-to-text (Vision2Seq)
model: one transformers knows by its `model_type`, or one that ships its own class in the dir and names it
in `auto_map` (real OpenVLA: `"AutoModelForVision2Seq": "modeling_prismatic.OpenVLAForActionPrediction"`),
which runs only with `trust_remote_code`.
"""

from __future__ import annotations

import json
from pathlib import Path

from ros2_vla.errors import PolicyError

# auto_map keys under which a checkpoint may name its own vision-to-text class, newest name first
REMOTE_MODEL_KEYS = ("AutoModelForImageTextToText", "AutoModelForVision2Seq")


def read_checkpoint_config(path: str | Path) -> dict:
    """config.json of a local checkpoint dir, after checking the dir exists and holds one."""
    path = Path(path).expanduser()
    if not path.exists():
        raise PolicyError(f"model path {path} does not exist: give a local checkpoint dir (nothing is downloaded)")
    if not path.is_dir():
        raise PolicyError(f"model path {path} is not a directory: give the checkpoint directory holding config.json")
    config_path = path / "config.json"
    if not config_path.is_file():
        raise PolicyError(f"model path {path} has no config.json: it is not a transformers checkpoint directory")
    return read_json_object(config_path)


def read_json_object(path: Path) -> dict:
    """A JSON file that must hold an object; PolicyError naming the file otherwise."""
    try:
        data = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise PolicyError(f"cannot read {path}: {type(exc).__name__}: {exc}") from exc
    if not isinstance(data, dict):
        raise PolicyError(f"{path} must hold a JSON object, got {type(data).__name__}")
    return data


def _vision_to_text_model_types() -> set[str]:
    from transformers.models.auto import modeling_auto

    names: set[str] = set()
    for table in ("MODEL_FOR_IMAGE_TEXT_TO_TEXT_MAPPING_NAMES", "MODEL_FOR_VISION_2_SEQ_MAPPING_NAMES"):
        names.update(getattr(modeling_auto, table, {}))
    return names


def remote_model_key(auto_map: dict) -> str | None:
    """The key of config.json's auto_map naming the checkpoint's own vision-to-text class, if it ships one."""
    return next((k for k in REMOTE_MODEL_KEYS if k in auto_map), None)


def check_vision_to_text(config: dict, path: str | Path, trust_remote_code: bool) -> bool:
    """Whether to load through the checkpoint's own code (True) or transformers' classes (False).

    Raises PolicyError for a model that is not image-text-to-text, or that needs code not yet trusted.
    """
    model_type = config.get("model_type")
    architectures = ", ".join(config.get("architectures") or []) or "none listed"
    remote = remote_model_key(config.get("auto_map") or {})
    if remote is not None and trust_remote_code:
        return True
    if model_type in _vision_to_text_model_types():
        return False
    if remote is not None:
        raise PolicyError(
            f"checkpoint {path} ships its own model code ({config['auto_map'][remote]}): set trust_remote_code "
            "to true to run it (it runs from the checkpoint dir; only do this for checkpoints you trust)"
        )
    raise PolicyError(
        f"checkpoint {path} holds a {model_type!r} model (architectures: {architectures}), not an "
        "image-text-to-text (Vision2Seq) model; the openvla backend needs one such as OpenVLAForActionPrediction "
        "or a Llava-style model"
    )
