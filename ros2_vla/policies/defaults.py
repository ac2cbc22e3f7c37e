"""The policies the package ships: `models/<robot>_default/`, trained here on the sim's expert demos.

Each folder is a flow checkpoint (config.json, model.safetensors, norm_stats.json) with a MODEL_CARD.md
that gives the data, the exact commands that made it and its measured results. They are found beside
`config/`: in the ament share directory, a pip prefix's share directory, or the checkout.
"""

from __future__ import annotations

from pathlib import Path

from ros2_vla.config import config_dir
from ros2_vla.errors import PolicyError

DEFAULT_BACKEND = "flow"


def models_dir() -> Path:
    return config_dir().parent / "models"


def default_model_dir(robot: str) -> Path:
    """Where the default policy for `robot` (config name) is shipped, whether or not it is there."""
    return models_dir() / f"{robot}_default"


def has_default_model(robot: str) -> bool:
    """Whether a default policy is shipped for `robot` (config name)."""
    return (default_model_dir(robot) / "config.json").is_file()


def default_model(robot: str) -> Path:
    """The shipped default policy for `robot` (config name); PolicyError naming what exists otherwise."""
    folder = default_model_dir(robot)
    if not has_default_model(robot):
        have = sorted(p.name for p in models_dir().glob("*_default")) if models_dir().is_dir() else []
        raise PolicyError(
            f"no default policy is shipped for {robot!r} (looked in {folder}; shipped: {have or 'none'}); "
            "give a model directory (`model` parameter / --model)"
        )
    return folder
