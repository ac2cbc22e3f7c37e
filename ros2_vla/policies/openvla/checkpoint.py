"""A checkpoint dir's config.json and other JSON files, read and checked before any weight is loaded."""

from __future__ import annotations

import json
from pathlib import Path

from ros2_vla.errors import PolicyError


def read_checkpoint_config(path: str | Path) -> dict:
    """config.json of a local checkpoint dir, after checking the dir exists and holds one."""
    path = Path(path).expanduser()
    if not path.exists():
        raise PolicyError(f"model path {path} does not exist: give a local checkpoint dir (nothing is downloaded)")
    if not path.is_dir():
        raise PolicyError(f"model path {path} is not a directory: give the checkpoint directory holding config.json")
    config_path = path / "config.json"
    if not config_path.is_file():
        raise PolicyError(f"model path {path} has no config.json: it is not an OpenVLA checkpoint directory")
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
