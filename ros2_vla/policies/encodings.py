"""sensor_msgs/Image encodings -> (H, W, 3) uint8 RGB, for the encodings common camera drivers publish.

No ROS. The conversions are cv_bridge's (`imgmsg_to_cv2(msg, "rgb8")`), written from its source: the same
OpenCV colour-conversion code per encoding (Bayer names in OpenCV count from the second row, so ROS's
`bayer_rggb8` is OpenCV's BayerBG), and 16-bit to 8-bit by `255 / 65535` with rounding. OpenCV is the
PyPI wheel (imported only for the encodings that need it); a distro's cv_bridge would call the same
OpenCV functions. Anything else is refused by name.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from ros2_vla.errors import PolicyError


@dataclass(frozen=True)
class Encoding:
    """How one encoding lies in memory and how it becomes RGB."""

    channels: int  # per pixel, as laid out in a row
    bytes_per_channel: int
    to_rgb: Callable[[np.ndarray], np.ndarray]  # (H, W, channels) of the dtype -> (H, W, 3) uint8


def _cv(code_name: str) -> Callable[[np.ndarray], np.ndarray]:
    """An OpenCV colour conversion by its constant's name, OpenCV imported on first use."""

    def convert(pixels: np.ndarray) -> np.ndarray:
        import cv2

        return cv2.cvtColor(np.ascontiguousarray(pixels), getattr(cv2, code_name))

    return convert


def _mono16(pixels: np.ndarray) -> np.ndarray:
    scaled = np.rint(pixels[:, :, 0].astype(np.float32) * (255.0 / 65535.0)).astype(np.uint8)
    return np.repeat(scaled[:, :, None], 3, axis=2)


def _rgb(pixels: np.ndarray) -> np.ndarray:
    # a writable buffer without row padding: the view is the frame (read-only bytes are copied, so
    # torch never sees a non-writable array)
    return pixels if pixels.flags.c_contiguous and pixels.flags.writeable else pixels.copy()


ENCODINGS: dict[str, Encoding] = {
    "rgb8": Encoding(3, 1, _rgb),
    "bgr8": Encoding(3, 1, lambda p: p[:, :, ::-1].copy()),
    "rgba8": Encoding(4, 1, lambda p: p[:, :, :3].copy()),
    "bgra8": Encoding(4, 1, lambda p: p[:, :, 2::-1].copy()),
    "mono8": Encoding(1, 1, lambda p: np.repeat(p, 3, axis=2)),
    "mono16": Encoding(1, 2, _mono16),
    # 4:2:2, two pixels in four bytes: YUYV (usb_cam's default) and UYVY (ROS's plain "yuv422")
    "yuv422_yuy2": Encoding(2, 1, _cv("COLOR_YUV2RGB_YUY2")),
    "yuv422": Encoding(2, 1, _cv("COLOR_YUV2RGB_UYVY")),
    # the colour filter's first row, as ROS names it; OpenCV names the pattern from the second row
    "bayer_rggb8": Encoding(1, 1, _cv("COLOR_BayerBG2RGB")),
    "bayer_bggr8": Encoding(1, 1, _cv("COLOR_BayerRG2RGB")),
    "bayer_gbrg8": Encoding(1, 1, _cv("COLOR_BayerGR2RGB")),
    "bayer_grbg8": Encoding(1, 1, _cv("COLOR_BayerGB2RGB")),
}


def decode_raw(
    data: bytes | memoryview, encoding: str, height: int, width: int, step: int, is_bigendian: bool = False
) -> np.ndarray:
    """sensor_msgs/Image fields -> (H, W, 3) uint8 RGB; an encoding not in ENCODINGS is refused by name.

    `data` is any bytes-like buffer. rclpy's array.array is passed as is, and an rgb8 image in it without row
    padding comes back as a view of it, not a copy (the message owns the buffer and nothing else holds it):
    each 150 KB copy of a 224x224 frame is a fresh allocation, paid under the GIL at every frame."""
    spec = ENCODINGS.get(encoding)
    if spec is None:
        raise PolicyError(f"image encoding {encoding!r} is not supported; send one of {tuple(ENCODINGS)}")
    row_bytes = width * spec.channels * spec.bytes_per_channel
    if height <= 0 or width <= 0 or step < row_bytes or len(data) < step * height:
        raise PolicyError(f"image of {width}x{height} {encoding} with step {step} has {len(data)} bytes: inconsistent")
    if spec.channels == 2 and width % 2:
        raise PolicyError(f"{encoding} image of odd width {width}: 4:2:2 pairs pixels")
    rows = np.frombuffer(data, dtype=np.uint8, count=step * height).reshape(height, step)[:, :row_bytes]
    if spec.bytes_per_channel == 2:  # the message's byte order -> native uint16
        rows = np.ascontiguousarray(rows).view(">u2" if is_bigendian else "<u2").astype(np.uint16)
    return spec.to_rgb(rows.reshape(height, width, spec.channels))
