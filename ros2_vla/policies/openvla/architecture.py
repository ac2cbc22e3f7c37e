"""An OpenVLA config.json read as an architecture, checked field by field before any weight is touched.

OpenVLA's config.json (`OpenVLAConfig`, model_type "openvla") says everything the network needs:
`vision_backbone_id`, `llm_backbone_id`, `arch_specifier`, `use_fused_vision_backbone`, `image_sizes`,
`timm_model_ids`, `text_config` (a transformers config of the LLM family), `pad_to_multiple_of`,
`n_action_bins` and `norm_stats`. Its `auto_map` names remote code that is never run here: the network
is this package's own (model.py), built from these fields.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ros2_vla.actions.tokenization import OPENVLA_NUM_BINS
from ros2_vla.errors import PolicyError
from ros2_vla.policies.openvla.backbones import TowerSpec, llm_family, vision_backbone
from ros2_vla.policies.openvla.checkpoint import read_checkpoint_config

MODEL_TYPES = ("openvla",)  # a Prismatic VLM ("prismatic") has no action statistics: not a policy
# OpenVLA-OFT saves its extra parts beside the VLA as `<part>--<step>_checkpoint.pt`
OFT_PARTS = ("action_head", "proprio_projector", "noisy_action_projector")


@dataclass(frozen=True)
class OpenVlaArchitecture:
    """What to build for a checkpoint; made by `read_architecture`."""

    vision_backbone_id: str  # e.g. dinosiglip-vit-so-224px
    llm_backbone_id: str  # e.g. llama2-7b-pure
    towers: tuple[TowerSpec, ...]  # one or two (fused) ViTs
    image_size: int  # [px] square input side of every tower
    text_config: Any  # transformers PretrainedConfig of the LLM (LlamaConfig for Llama 2)
    pad_to_multiple_of: int  # embedding rows were padded to a multiple of this; action ids count from rows - this
    n_action_bins: int  # bins per action dimension (OpenVLA: 256)
    raw: dict  # config.json as read, written back unchanged when a fine-tune is saved


def _field(config: dict, name: str, path: Path) -> Any:
    if name not in config:
        raise PolicyError(f"{path}/config.json has no {name!r}: not an OpenVLA config (OpenVLAConfig writes it)")
    return config[name]


def _text_config(config: dict, family: str, path: Path) -> Any:
    from transformers import CONFIG_MAPPING

    text = _field(config, "text_config", path)
    if not isinstance(text, dict):
        raise PolicyError(f"{path}/config.json: text_config must be an object, got {type(text).__name__}")
    text = {k: v for k, v in text.items() if k != "model_type"}
    try:
        return CONFIG_MAPPING[family](**text)
    except (TypeError, ValueError) as exc:
        raise PolicyError(f"{path}/config.json: text_config is not a valid {family} config: {exc}") from exc


def _check_towers(config: dict, towers: tuple[TowerSpec, ...], size: int, path: Path) -> None:
    """config.json repeats what its backbone id implies; a disagreement means a hand-edited or foreign file."""
    ids = config.get("timm_model_ids")
    if ids is not None and list(ids) != [t.timm_id for t in towers]:
        raise PolicyError(
            f"{path}/config.json: timm_model_ids {ids} do not match vision_backbone_id "
            f"{config['vision_backbone_id']!r} (expected {[t.timm_id for t in towers]})"
        )
    sizes = config.get("image_sizes")
    if sizes is not None and list(sizes) != [size] * len(towers):
        raise PolicyError(
            f"{path}/config.json: image_sizes {sizes} do not match vision_backbone_id "
            f"{config['vision_backbone_id']!r} ({[size] * len(towers)})"
        )
    fused = config.get("use_fused_vision_backbone")
    if fused is not None and bool(fused) != (len(towers) == 2):
        raise PolicyError(
            f"{path}/config.json: use_fused_vision_backbone is {fused} but "
            f"{config['vision_backbone_id']!r} has {len(towers)} tower(s)"
        )
    spec = config.get("arch_specifier", "")
    projector = spec.split("+")[-1]
    expected = "fused-gelu-mlp" if len(towers) == 2 else "gelu-mlp"
    if projector != expected:
        raise PolicyError(
            f"{path}/config.json: arch_specifier {spec!r}: OpenVLA's projector for this backbone is "
            f"'{expected}' (e.g. 'no-align+{expected}')"
        )


def _refuse_oft(path: Path) -> None:
    """An OpenVLA-OFT dir holds a plain OpenVLA config and weights, so it would load, but its actions come
    from the action head over parallel-decoded hidden states, not from generated tokens: refuse it by name
    rather than decode tokens its LLM was never trained to emit."""
    parts = sorted(p.name for p in path.glob("*--*checkpoint.pt") if p.name.split("--")[0] in OFT_PARTS)
    if parts:
        raise PolicyError(
            f"checkpoint {path} is an OpenVLA-OFT checkpoint ({', '.join(parts[:2])}): its actions come from "
            "an action head over parallel decoding (chunks of 8, two images, proprio), which the openvla backend "
            "does not run; it runs OpenVLA checkpoints that generate action tokens"
        )


def read_architecture(path: str | Path) -> OpenVlaArchitecture:
    """The architecture of a local OpenVLA checkpoint dir; PolicyError with one clear line otherwise."""
    path = Path(path).expanduser()
    config = read_checkpoint_config(path)
    _refuse_oft(path)
    model_type = config.get("model_type")
    if model_type not in MODEL_TYPES:
        architectures = ", ".join(config.get("architectures") or []) or "none listed"
        raise PolicyError(
            f"checkpoint {path} holds a {model_type!r} model (architectures: {architectures}), not an OpenVLA "
            "checkpoint (model_type 'openvla', OpenVLAForActionPrediction)"
        )
    towers, size = vision_backbone(_field(config, "vision_backbone_id", path))
    family = llm_family(_field(config, "llm_backbone_id", path))
    _check_towers(config, towers, size, path)
    text_config = _text_config(config, family, path)
    pad = int(config.get("pad_to_multiple_of") or 0)
    return OpenVlaArchitecture(
        vision_backbone_id=config["vision_backbone_id"],
        llm_backbone_id=config["llm_backbone_id"],
        towers=towers,
        image_size=size,
        text_config=text_config,
        pad_to_multiple_of=pad,
        n_action_bins=int(config.get("n_action_bins") or OPENVLA_NUM_BINS),
        raw=config,
    )
