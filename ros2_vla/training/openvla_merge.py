"""Fold a LoRA adapter into its base OpenVLA checkpoint and save a model `OpenVlaPolicy` loads.

As OpenVLA's finetune.py: the base is loaded again unquantized (bf16, or fp32), the adapter applied and
merged (`merge_and_unload`), and the result saved in the base's own layout (its config.json, sharded
safetensors under the same keys, its processor files): the merged dir loads wherever the base does. The
statistics the actions were normalized with go into config.json's `norm_stats` (replacing the base's, so
a single `unnorm_key` needs no choosing) and into dataset_statistics.json, OpenVLA's file for fine-tuned
runs.

    merge_lora("models/ft/checkpoints/step_002000", "models/ft_step2000", stats)  # any checkpoint, later
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

from ros2_vla.errors import PolicyError
from ros2_vla.policies.openvla.checkpoint import read_json_object
from ros2_vla.policies.openvla.norm_stats import DATASET_STATISTICS_FILE
from ros2_vla.policies.openvla.weights import save_sharded

ADAPTER_DIR = "adapter"  # OUT/adapter: the final LoRA weights
ADAPTER_CONFIG = "adapter_config.json"


def adapter_base(adapter_dir: Path) -> str:
    """The base checkpoint dir an adapter was trained on (peft's `base_model_name_or_path`)."""
    base = read_json_object(adapter_dir / ADAPTER_CONFIG).get("base_model_name_or_path")
    if not base:
        raise PolicyError(f"{adapter_dir / ADAPTER_CONFIG} does not name its base model; pass base=")
    return str(base)


def merge_lora(
    adapter_dir: str | Path,
    out: str | Path,
    norm_stats: dict[str, Any],
    base: str | Path | None = None,
    device: str = "cpu",
    dtype: str = "bf16",
) -> Path:
    """Base + adapter -> a full checkpoint in `out` (config.json written last: a half-written `out` does
    not look complete). `norm_stats`: `{unnorm_key: {"action": {q01, q99, mask, ...}, ...}}`."""
    from peft import PeftModel

    from ros2_vla.policies.openvla.loading import load_checkpoint

    adapter_dir, out = Path(adapter_dir), Path(out)
    if not (adapter_dir / ADAPTER_CONFIG).is_file():
        raise PolicyError(f"{adapter_dir} holds no LoRA adapter ({ADAPTER_CONFIG} is missing)")
    base = str(base) if base is not None else adapter_base(adapter_dir)
    if dtype not in ("bf16", "fp32"):
        raise PolicyError(
            f"merge dtype must be 'bf16' or 'fp32' (a quantized base cannot take merged weights), got {dtype!r}"
        )
    loaded = load_checkpoint(base, dtype, device)
    merged = PeftModel.from_pretrained(loaded.model, str(adapter_dir)).merge_and_unload()
    tmp = out / ".merged.tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    save_sharded({k: v.detach().cpu() for k, v in merged.state_dict().items()}, tmp)
    loaded.processor.save_pretrained(tmp)
    for code in Path(base).glob("*.py"):  # OpenVLA's remote code (unused here) stays with its weights for other tools
        shutil.copy2(code, tmp / code.name)
    config = dict(loaded.arch.raw, norm_stats=norm_stats, torch_dtype="bfloat16" if dtype == "bf16" else "float32")
    (tmp / "config.json").write_text(json.dumps(config, indent=2) + "\n")
    (tmp / DATASET_STATISTICS_FILE).write_text(json.dumps(norm_stats, indent=2) + "\n")
    _move_into(tmp, out)
    return out


def _move_into(tmp: Path, out: Path) -> None:
    """Every file of `tmp` into `out` (replacing), config.json last; then remove `tmp`."""
    files = sorted(p for p in tmp.iterdir() if p.is_file())
    for path in sorted(files, key=lambda p: p.name == "config.json"):
        path.replace(out / path.name)
    shutil.rmtree(tmp, ignore_errors=True)
