"""An OpenVLA checkpoint's weights: sharded safetensors, checked key by key against the network, and written.

Published checkpoints hold `model-0000N-of-0000M.safetensors` and `model.safetensors.index.json`
(`weight_map`: key -> shard); a single `model.safetensors` is read too. Every key of the network must
be in the files with the network's shape, and every key of the files must be used: anything else would
leave random weights in the model, or drop trained ones, and give wrong actions without a word.
Shapes are read from the files' headers, so a mismatch costs no tensor reads.
"""

from __future__ import annotations

import json
from collections import defaultdict
from pathlib import Path

import torch

from ros2_vla.errors import PolicyError
from ros2_vla.policies.openvla.checkpoint import read_json_object

INDEX_FILE = "model.safetensors.index.json"
SINGLE_FILE = "model.safetensors"
SHARD_BYTES = 1 << 30  # files of at most 1 GiB, as save_pretrained shards


def weight_files(path: Path) -> dict[str, Path]:
    """Checkpoint key -> the safetensors file that holds it."""
    index = path / INDEX_FILE
    if index.is_file():
        weight_map = read_json_object(index).get("weight_map")
        if not isinstance(weight_map, dict) or not weight_map:
            raise PolicyError(f"{index} has no weight_map: the shard index is damaged")
        files = {key: path / name for key, name in weight_map.items()}
        absent = sorted({str(f.name) for f in files.values() if not f.is_file()})
        if absent:
            raise PolicyError(f"checkpoint {path} lacks the shard(s) {', '.join(absent)} named in {INDEX_FILE}")
        return files
    single = path / SINGLE_FILE
    if single.is_file():
        from safetensors import safe_open

        with safe_open(str(single), framework="pt") as f:
            return {key: single for key in f.keys()}
    others = sorted(p.name for p in path.glob("*.bin")) + sorted(p.name for p in path.glob("*.pt"))
    extra = f" (it has {', '.join(others[:3])}: convert them to safetensors)" if others else ""
    raise PolicyError(f"checkpoint {path} has no {INDEX_FILE} or {SINGLE_FILE}{extra}")


def _by_file(files: dict[str, Path]) -> dict[Path, list[str]]:
    grouped: dict[Path, list[str]] = defaultdict(list)
    for key, file in files.items():
        grouped[file].append(key)
    return grouped


def checkpoint_shapes(files: dict[str, Path]) -> dict[str, tuple[int, ...]]:
    """Key -> shape, from the safetensors headers only."""
    from safetensors import safe_open

    shapes: dict[str, tuple[int, ...]] = {}
    for file, keys in _by_file(files).items():
        with safe_open(str(file), framework="pt") as f:
            present = set(f.keys())
            for key in keys:
                if key not in present:
                    raise PolicyError(f"{file.name} does not hold {key!r}, which {INDEX_FILE} places there")
                shapes[key] = tuple(f.get_slice(key).get_shape())
    return shapes


def _examples(keys: list[str]) -> str:
    return ", ".join(keys[:3]) + (f" and {len(keys) - 3} more" if len(keys) > 3 else "")


def check_keys(expected: dict[str, tuple[int, ...]], found: dict[str, tuple[int, ...]], path: Path) -> None:
    """PolicyError naming the first few missing, unexpected or misshapen keys; silent when all match."""
    missing = sorted(set(expected) - set(found))
    if missing:
        raise PolicyError(
            f"checkpoint {path} lacks {len(missing)} weight(s) the network needs: {_examples(missing)} "
            "(config.json and the weights disagree)"
        )
    unexpected = sorted(set(found) - set(expected))
    if unexpected:
        raise PolicyError(
            f"checkpoint {path} has {len(unexpected)} weight(s) the network has no place for: "
            f"{_examples(unexpected)} (another architecture, or config.json was edited)"
        )
    wrong = [
        f"{k} {list(found[k])} (expected {list(expected[k])})" for k in sorted(expected) if found[k] != expected[k]
    ]
    if wrong:
        raise PolicyError(f"checkpoint {path} has {len(wrong)} weight(s) of the wrong shape: {_examples(wrong)}")


def read_weights(files: dict[str, Path], dtype: torch.dtype, device: str = "cpu") -> dict[str, torch.Tensor]:
    """Every tensor, cast to `dtype` and placed on `device`."""
    from safetensors import safe_open

    state: dict[str, torch.Tensor] = {}
    for file, keys in _by_file(files).items():
        with safe_open(str(file), framework="pt", device=device) as f:
            for key in keys:
                state[key] = f.get_tensor(key).to(dtype)
    return state


def save_sharded(state: dict[str, torch.Tensor], out: Path, shard_bytes: int = SHARD_BYTES) -> None:
    """`model-0000N-of-0000M.safetensors` files and their index, as transformers' save_pretrained writes."""
    from safetensors.torch import save_file

    shards: list[dict[str, torch.Tensor]] = [{}]
    size = 0
    for key, tensor in state.items():
        nbytes = tensor.numel() * tensor.element_size()
        if shards[-1] and size + nbytes > shard_bytes:
            shards.append({})
            size = 0
        shards[-1][key] = tensor.contiguous()
        size += nbytes
    weight_map = {}
    for i, shard in enumerate(shards, 1):
        name = f"model-{i:05d}-of-{len(shards):05d}.safetensors"
        save_file(shard, str(out / name), metadata={"format": "pt"})
        weight_map.update({key: name for key in shard})
    total = sum(t.numel() * t.element_size() for t in state.values())
    (out / INDEX_FILE).write_text(json.dumps({"metadata": {"total_size": total}, "weight_map": weight_map}, indent=2))
