"""OpenVLA's image preprocessing, read from the checkpoint's preprocessor_config.json and done with PIL.

OpenVLA's `PrismaticImageProcessor` stores the exact torchvision-functional steps per tower:
`tvf_resize_params` (size, PIL interpolation code), `tvf_crop_params` (center crop), `tvf_normalize_params`
(mean, std) and `tvf_do_letterbox` / `tvf_letterbox_fill`; the frame is letterboxed (if so), then for
each tower resized, center-cropped, scaled to [0, 1] and normalized, and the towers' images are stacked
along channels: (3 * towers, S, S). torchvision resizes a PIL image with PIL itself, so PIL gives the
same pixels. A file without the tvf fields is read from `image_resize_strategy`, `input_sizes`,
`interpolations`, `means` and `stds`, as the processor derives them.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from ros2_vla.errors import PolicyError
from ros2_vla.policies.openvla.architecture import OpenVlaArchitecture
from ros2_vla.policies.openvla.checkpoint import read_json_object

PREPROCESSOR_FILE = "preprocessor_config.json"
RESIZE_STRATEGIES = ("resize-naive", "resize-crop", "letterbox")
_PIL_BY_NAME = {"nearest": 0, "bilinear": 2, "bicubic": 3, "box": 4, "hamming": 5, "lanczos": 1}


@dataclass(frozen=True)
class TowerTransform:
    """One tower's steps: resize, center crop, normalize."""

    resize: tuple[int, int] | int  # (height, width) [px], or the shorter side's length
    interpolation: int  # PIL resampling code (3 = bicubic)
    crop: tuple[int, int]  # (height, width) [px] of the center crop
    mean: tuple[float, float, float]
    std: tuple[float, float, float]

    def __call__(self, image: Image.Image) -> np.ndarray:
        """PIL RGB -> float32 (3, crop_h, crop_w)."""
        image = image.resize(self._resized_size(image.size), resample=self.interpolation)
        image = _center_crop(image, self.crop)
        x = np.asarray(image, dtype=np.float32).transpose(2, 0, 1) / 255.0
        mean, std = np.asarray(self.mean, np.float32)[:, None, None], np.asarray(self.std, np.float32)[:, None, None]
        return (x - mean) / std

    def _resized_size(self, size: tuple[int, int]) -> tuple[int, int]:
        """PIL (width, height) after resizing, with torchvision's rule for a single side."""
        if not isinstance(self.resize, int):
            return self.resize[1], self.resize[0]
        w, h = size
        short, long = (w, h) if w <= h else (h, w)
        new_short, new_long = self.resize, int(self.resize * long / short)
        return (new_short, new_long) if w <= h else (new_long, new_short)


def _center_crop(image: Image.Image, crop: tuple[int, int]) -> Image.Image:
    """torchvision's center_crop for an image at least as large as the crop (pads with black otherwise)."""
    th, tw = crop
    w, h = image.size
    if w < tw or h < th:
        padded = Image.new("RGB", (max(w, tw), max(h, th)))
        padded.paste(image, ((max(w, tw) - w) // 2, (max(h, th) - h) // 2))
        image, (w, h) = padded, padded.size
    top, left = int(round((h - th) / 2.0)), int(round((w - tw) / 2.0))
    return image.crop((left, top, left + tw, top + th))


def _letterbox(image: Image.Image, fill: tuple[int, int, int]) -> Image.Image:
    """Pad to a square with a symmetric border of `fill` (OpenVLA's letterbox_pad_transform)."""
    (w, h), side = image.size, max(image.size)
    dx, dy = int((side - w) / 2), int((side - h) / 2)
    out = Image.new("RGB", (w + 2 * dx, h + 2 * dy), tuple(fill))
    out.paste(image, (dx, dy))
    return out


@dataclass(frozen=True)
class OpenVlaImageProcessor:
    """Frame -> pixel_values (3 * towers, S, S); `input_sizes` as OpenVLA's processor lists them."""

    towers: tuple[TowerTransform, ...]
    letterbox_fill: tuple[int, int, int] | None  # None: no letterbox

    @property
    def input_sizes(self) -> list[tuple[int, int, int]]:
        return [(3, *t.crop) for t in self.towers]

    def __call__(self, image: Image.Image) -> torch.Tensor:
        image = image.convert("RGB")
        if self.letterbox_fill is not None:
            image = _letterbox(image, self.letterbox_fill)
        return torch.from_numpy(np.concatenate([t(image) for t in self.towers], axis=0))

    @classmethod
    def from_config(cls, pre: dict, arch: OpenVlaArchitecture) -> OpenVlaImageProcessor:
        towers = len(arch.towers)
        if "tvf_resize_params" in pre:
            return cls._from_tvf(pre, towers)
        strategy = pre.get("image_resize_strategy", arch.raw.get("image_resize_strategy", "resize-naive"))
        if strategy not in RESIZE_STRATEGIES:
            raise PolicyError(f"image_resize_strategy {strategy!r} is not one of {', '.join(RESIZE_STRATEGIES)}")
        sizes = pre.get("input_sizes") or [[3, arch.image_size, arch.image_size]] * towers
        names = pre.get("interpolations") or ["bicubic"] * towers
        means = pre.get("means") or [t.mean for t in arch.towers]
        stds = pre.get("stds") or [t.std for t in arch.towers]
        out = []
        for size, name, mean, std in zip(sizes, names, means, stds):
            side = int(size[-1])
            resize = (side, side) if strategy == "resize-naive" else side
            out.append(
                TowerTransform(resize, _PIL_BY_NAME.get(name, 3), (int(size[-2]), side), tuple(mean), tuple(std))
            )
        fill = tuple(int(x * 255) for x in means[-1]) if strategy == "letterbox" else None
        return cls(tuple(out), fill)

    @classmethod
    def _from_tvf(cls, pre: dict, towers: int) -> OpenVlaImageProcessor:
        resize, crop, norm = pre["tvf_resize_params"], pre.get("tvf_crop_params"), pre.get("tvf_normalize_params")
        if not (len(resize) == towers and crop and len(crop) == towers and norm and len(norm) == towers):
            raise PolicyError(f"{PREPROCESSOR_FILE}: the tvf_* parameters must list one entry per tower ({towers})")
        out = []
        for r, c, n in zip(resize, crop, norm):
            size = r["size"]
            size = int(size) if isinstance(size, int) else (int(size[0]), int(size[1]))
            out.append(
                TowerTransform(
                    size,
                    int(r.get("interpolation", 3)),
                    tuple(int(v) for v in c["output_size"]),
                    tuple(n["mean"]),
                    tuple(n["std"]),
                )
            )
        fill = tuple(pre["tvf_letterbox_fill"]) if pre.get("tvf_do_letterbox") else None
        return cls(tuple(out), fill)


def load_image_processor(path: Path, arch: OpenVlaArchitecture) -> OpenVlaImageProcessor:
    """The checkpoint's image processor, or OpenVLA's defaults for its backbone when the file is absent."""
    file = path / PREPROCESSOR_FILE
    pre = read_json_object(file) if file.is_file() else {}
    try:
        processor = OpenVlaImageProcessor.from_config(pre, arch)
    except (KeyError, TypeError, ValueError, IndexError) as exc:
        raise PolicyError(f"{file}: cannot read the image steps ({type(exc).__name__}: {exc})") from exc
    side = arch.image_size
    if any(size != (3, side, side) for size in processor.input_sizes):
        raise PolicyError(
            f"{file} makes {processor.input_sizes} images but {arch.vision_backbone_id!r} takes {side}x{side}"
        )
    return processor
