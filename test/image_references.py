"""Reference encoders for the camera encodings vla_node accepts, written from the formats' definitions
(not from the decoder under test): a test image of constant 8 x 8 blocks is encoded as a driver would
send it, and the RGB it stands for is known. 4:2:2 shares chroma between two pixels and a Bayer
filter samples one colour per pixel, so the blocks keep both exact away from block edges."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

BLOCK = 8  # [px] side of the test image's constant blocks

# ITU-R BT.601, video range (Y 16-235, chroma 16-240): what YUV 4:2:2 cameras send
RGB_TO_YUV = np.array([[0.257, 0.504, 0.098], [-0.148, -0.291, 0.439], [0.439, -0.368, -0.071]])
YUV_OFFSET = np.array([16.0, 128.0, 128.0])
# colour filter, first row then second row, as ROS names it
BAYER = {"bayer_rggb8": "RGGB", "bayer_bggr8": "BGGR", "bayer_gbrg8": "GBRG", "bayer_grbg8": "GRBG"}
ENCODED = ("rgba8", "bgra8", "mono16", "yuv422_yuy2", "yuv422", *BAYER)


@dataclass(frozen=True)
class Encoded:
    """An image as a driver publishes it, and the RGB a correct decoder gives back."""

    data: bytes
    step: int  # [bytes] per row
    is_bigendian: bool
    rgb: np.ndarray  # (H, W, 3) uint8: what the image shows
    exact: np.ndarray  # (H, W) bool: where a correct decoder must give `rgb` (see `tolerance`)
    tolerance: int  # largest difference per channel there (rounding of the format)


def block_image(height: int = 224, width: int = 224, seed: int = 0) -> np.ndarray:
    """(H, W, 3) uint8 of constant BLOCK x BLOCK squares of random colours."""
    colours = np.random.default_rng(seed).integers(0, 256, (height // BLOCK + 1, width // BLOCK + 1, 3), np.uint8)
    return colours.repeat(BLOCK, 0).repeat(BLOCK, 1)[:height, :width].copy()


def _inside_blocks(height: int, width: int, margin: int) -> np.ndarray:
    rows = np.arange(height) % BLOCK
    cols = np.arange(width) % BLOCK
    keep_r = (rows >= margin) & (rows < BLOCK - margin)
    keep_c = (cols >= margin) & (cols < BLOCK - margin)
    keep = keep_r[:, None] & keep_c[None, :]
    keep[:margin], keep[-margin:], keep[:, :margin], keep[:, -margin:] = False, False, False, False
    return keep


def encode(rgb: np.ndarray, encoding: str, big_endian: bool = False) -> Encoded:
    """`rgb` (a block_image) in `encoding`."""
    h, w, _ = rgb.shape
    everywhere = np.ones((h, w), bool)
    if encoding in ("rgba8", "bgra8"):
        alpha = np.full((h, w, 1), 77, np.uint8)  # any alpha: it is dropped
        colour = rgb if encoding == "rgba8" else rgb[:, :, ::-1]
        return Encoded(np.concatenate([colour, alpha], 2).tobytes(), w * 4, False, rgb, everywhere, 0)
    if encoding == "mono16":
        gray = rgb[:, :, 0]
        # 0..255 -> 0..65535 (x 257), nudged by 100 so that the two bytes differ (a swapped byte order
        # shows) while 255 / 65535 with rounding still gives `gray` back
        value = (gray.astype(np.int32) * 257 + np.where(gray < 128, 100, -100)).astype(np.uint16)
        data = value.astype(">u2" if big_endian else "<u2").tobytes()
        return Encoded(data, w * 2, big_endian, np.repeat(gray[:, :, None], 3, 2), everywhere, 0)
    if encoding in ("yuv422_yuy2", "yuv422"):
        yuv = np.clip(np.rint(rgb.astype(np.float64) @ RGB_TO_YUV.T + YUV_OFFSET), 0, 255).astype(np.uint8)
        y, u, v = yuv[:, :, 0], yuv[:, 0::2, 1], yuv[:, 0::2, 2]  # chroma of each pixel pair (equal in a block)
        packed = np.empty((h, w * 2), np.uint8)
        if encoding == "yuv422_yuy2":  # Y0 U Y1 V
            packed[:, 0::4], packed[:, 1::4], packed[:, 2::4], packed[:, 3::4] = y[:, 0::2], u, y[:, 1::2], v
        else:  # UYVY: U Y0 V Y1
            packed[:, 0::4], packed[:, 1::4], packed[:, 2::4], packed[:, 3::4] = u, y[:, 0::2], v, y[:, 1::2]
        return Encoded(packed.tobytes(), w * 2, False, rgb, everywhere, 3)
    if encoding in BAYER:
        pattern = BAYER[encoding]
        channel = {"R": 0, "G": 1, "B": 2}
        mosaic = np.empty((h, w), np.uint8)
        for i, colour in enumerate(pattern):
            r, c = divmod(i, 2)
            mosaic[r::2, c::2] = rgb[r::2, c::2, channel[colour]]
        # demosaicing interpolates from neighbours: exact two pixels inside a block
        return Encoded(mosaic.tobytes(), w, False, rgb, _inside_blocks(h, w, 2), 1)
    raise ValueError(encoding)


def matches(decoded: np.ndarray, expected: Encoded) -> tuple[bool, int]:
    """Whether `decoded` is `expected.rgb` where it must be; and the largest difference there."""
    diff = np.abs(decoded.astype(np.int16) - expected.rgb.astype(np.int16))[expected.exact]
    worst = int(diff.max()) if diff.size else 0
    return worst <= expected.tolerance, worst
