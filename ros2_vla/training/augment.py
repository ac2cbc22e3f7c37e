"""Image augmentation for behaviour cloning from few demos: random shifts (DrQ's pad-and-crop).

A policy trained on tens of episodes learns exact pixel positions of the scene; shifting each image by
a few pixels (replicate-padding, then a random crop back to the original size) makes it read where the
object is relative to the gripper instead, which DrQ (Kostrikov et al. 2020) and openpi's random crop
found to matter most of all image augmentations. Colours are left alone: the instructions name them.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

DEFAULT_SHIFT_FRACTION = 0.04  # of the shorter image side: DrQ's 4 px at 84 px; 9 px at 224 px


def default_shift_px(image_size: tuple[int, int]) -> int:
    """The default maximum shift [px] for a model image size (h, w); at least 1."""
    return max(1, round(DEFAULT_SHIFT_FRACTION * min(image_size)))


def random_shift(images: torch.Tensor, shift_px: int, generator: torch.Generator | None = None) -> torch.Tensor:
    """Images (B, 3, h, w) -> the same shape, each moved by an integer offset in [-shift_px, shift_px]
    along each axis, the uncovered border filled with the edge pixels. Offsets come from `generator`."""
    if shift_px <= 0:
        return images
    b, _, h, w = images.shape
    padded = F.pad(images, (shift_px,) * 4, mode="replicate")
    offsets = torch.randint(0, 2 * shift_px + 1, (b, 2), generator=generator).tolist()
    return torch.stack([padded[i, :, dy : dy + h, dx : dx + w] for i, (dy, dx) in enumerate(offsets)])
