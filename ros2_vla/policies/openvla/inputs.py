"""From one camera image and a prompt to the tensors `generate` takes.

The checkpoint's processor does the image work (resize, crop or letterbox, normalize) exactly as in
training; this module only checks the frame, hands it over as a PIL image and appends the prompt's
trailing token (see prompt.py).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from PIL import Image

from ros2_vla.errors import PolicyError


def to_pil(image: np.ndarray, camera: str) -> Image.Image:
    """An (H, W, 3) uint8 RGB frame as a PIL image; anything else raises PolicyError naming the camera."""
    image = np.asarray(image)
    if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
        raise PolicyError(
            f"camera {camera!r}: expected an (H, W, 3) uint8 RGB image, got shape {image.shape} dtype {image.dtype}"
        )
    if image.shape[0] < 1 or image.shape[1] < 1:
        raise PolicyError(f"camera {camera!r}: the image is empty ({image.shape})")
    return Image.fromarray(np.ascontiguousarray(image))  # (H, W, 3) uint8 is RGB to PIL


def append_token(inputs: dict, token_id: int | None) -> dict:
    """`inputs` with `token_id` appended to input_ids (and a 1 to attention_mask) unless already last."""
    if token_id is None:
        return inputs
    ids = inputs["input_ids"]
    if bool(torch.all(ids[:, -1] == token_id)):
        return inputs
    column = torch.full((ids.shape[0], 1), token_id, dtype=ids.dtype, device=ids.device)
    out = dict(inputs, input_ids=torch.cat([ids, column], dim=1))
    if "attention_mask" in inputs:
        mask = inputs["attention_mask"]
        out["attention_mask"] = torch.cat([mask, torch.ones_like(column, dtype=mask.dtype)], dim=1)
    return out


def model_inputs(
    processor: Any, prompt: str, image: Image.Image, suffix_id: int | None, device: torch.device, dtype: torch.dtype
) -> dict:
    """Tokenized prompt and processed image, on `device`; floating tensors (pixel_values) cast to `dtype`."""
    try:
        batch = processor(text=prompt, images=image)
    except (ValueError, TypeError, KeyError) as exc:
        raise PolicyError(f"the checkpoint's processor rejected the input: {type(exc).__name__}: {exc}") from exc
    inputs = append_token(dict(batch), suffix_id)
    return {
        k: (v.to(device=device, dtype=dtype) if v.is_floating_point() else v.to(device)) if torch.is_tensor(v) else v
        for k, v in inputs.items()
    }
