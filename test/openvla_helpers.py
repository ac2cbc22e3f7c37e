"""Checkpoint variants for the openvla tests: the session's test checkpoint with edited JSON files."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from safetensors.torch import save_file

from ros2_vla.policies.openvla.weights import INDEX_FILE


def checkpoint_variant(src: Path, dst: Path, config=None, index=None, extra=None) -> Path:
    """A copy of the checkpoint whose JSON files are edited and whose shards are links to the original's;
    `extra`: tensors written to one more shard and named in the index."""
    dst.mkdir()
    for path in src.iterdir():
        if path.suffix == ".safetensors":
            (dst / path.name).symlink_to(path)
        else:
            shutil.copy2(path, dst / path.name)
    for name, edit in (("config.json", config), (INDEX_FILE, index)):
        if edit is not None:
            data = json.loads((dst / name).read_text())
            edit(data)
            (dst / name).write_text(json.dumps(data))
    if extra:
        save_file(extra, dst / "model-extra.safetensors", {"format": "pt"})
        data = json.loads((dst / INDEX_FILE).read_text())
        data["weight_map"].update({key: "model-extra.safetensors" for key in extra})
        (dst / INDEX_FILE).write_text(json.dumps(data))
    return dst
