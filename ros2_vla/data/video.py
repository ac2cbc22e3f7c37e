"""MP4 video in and out through the ffmpeg that imageio-ffmpeg ships (no system ffmpeg needed).

Frames go in as (H, W, 3) uint8 RGB and are stored yuv420p at a constant rate, so frame k of a file is
presented at k / fps: the timestamp LeRobot's decoders seek to. H.264 by default; AV1 (SVT-AV1) is
what LeRobot's own recorder writes by default, and a dataset can only be merged with one of the same
codec (`aggregate_datasets` compares the video features).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ros2_vla.errors import DatasetError

# stream codec, as LeRobot's get_video_info records it (video.codec) -> the ffmpeg encoder that writes it
ENCODERS = {"h264": "libx264", "av1": "libsvtav1"}
# the encoder's speed/size trade-off (quality is set by crf): x264's "fast"; for SVT-AV1 LeRobot's "12"
DEFAULT_PRESETS = {"h264": "fast", "av1": "12"}


@dataclass(frozen=True)
class VideoSettings:
    """How camera streams are encoded. Policies train on the decoded pixels: keep the quality high."""

    codec: str = "h264"  # a key of ENCODERS
    crf: int = 18  # constant rate factor: lower is better; h264: 0 lossless .. 51, 18 visually lossless; av1: 0 .. 63
    preset: str = ""  # "": DEFAULT_PRESETS[codec]
    gop: int = 10  # frames between keyframes: small keeps random access (LeRobot seeks by timestamp) cheap
    # h264: one B-frame, so decode timestamps start one frame before 0, as in the h264 files LeRobot
    # writes (libx264's defaults): merged files concatenate with increasing DTS in either order. AV1
    # has no reordering (DTS = PTS from 0, as LeRobot's).
    bframes: int = 1
    pix_fmt: str = "yuv420p"  # what every player and LeRobot's decoders read

    def __post_init__(self) -> None:
        if self.codec not in ENCODERS:
            raise DatasetError(f"video codec {self.codec!r}: one of {', '.join(ENCODERS)}")
        top = 51 if self.codec == "h264" else 63
        if not 0 <= self.crf <= top or self.gop < 1 or self.bframes < 0:
            raise DatasetError(
                f"video settings: crf must be in [0, {top}] for {self.codec}, gop >= 1 and bframes >= 0, "
                f"got crf {self.crf}, gop {self.gop}, bframes {self.bframes}"
            )

    @property
    def encoder_preset(self) -> str:
        return self.preset or DEFAULT_PRESETS[self.codec]

    def encoder_options(self) -> list[str]:
        """ffmpeg output options for this codec."""
        options = ["-crf", str(self.crf), "-preset", self.encoder_preset, "-g", str(self.gop)]
        return options if self.codec == "av1" else [*options, "-bf", str(self.bframes)]


class VideoEncoder:
    """One MP4 file being written by an ffmpeg subprocess."""

    def __init__(self, path: Path, width: int, height: int, fps: int, settings: VideoSettings) -> None:
        import imageio_ffmpeg

        if width % 2 or height % 2:
            raise DatasetError(
                f"{path}: frames of {width}x{height} cannot be stored as {settings.pix_fmt}, which needs "
                f"even sizes; set the camera to an even width and height"
            )
        path.parent.mkdir(parents=True, exist_ok=True)
        if settings.codec == "av1":
            # SVT-AV1 logs its banner past ffmpeg's log level; its own variable quiets it (ffmpeg inherits it)
            os.environ.setdefault("SVT_LOG", "1")
        self.path, self.size, self.frames = path, (height, width), 0
        self._gen = imageio_ffmpeg.write_frames(
            str(path),
            (width, height),
            fps=fps,
            codec=ENCODERS[settings.codec],
            pix_fmt_out=settings.pix_fmt,
            quality=None,
            macro_block_size=1,
            ffmpeg_log_level="error",
            output_params=settings.encoder_options(),
        )
        self._gen.send(None)

    def write(self, rgb: np.ndarray) -> None:
        if rgb.shape != (*self.size, 3) or rgb.dtype != np.uint8:
            raise DatasetError(
                f"{self.path}: frame {rgb.shape} {rgb.dtype} does not fit a {self.size[1]}x{self.size[0]} "
                f"uint8 RGB video"
            )
        self._gen.send(np.ascontiguousarray(rgb))
        self.frames += 1

    def close(self) -> None:
        """Finish the file (ffmpeg writes the index); raises if ffmpeg failed."""
        try:
            self._gen.close()
        except Exception as exc:  # imageio-ffmpeg raises IOError/RuntimeError with ffmpeg's own message
            raise DatasetError(f"{self.path}: ffmpeg failed: {exc}") from exc

    def size_mb(self) -> float:
        return self.path.stat().st_size / 1e6 if self.path.exists() else 0.0


def read_video(path: Path) -> Iterator[np.ndarray]:
    """Every frame of an MP4 as (H, W, 3) uint8 RGB, in presentation order."""
    import imageio_ffmpeg

    gen = imageio_ffmpeg.read_frames(str(path), pix_fmt="rgb24")
    try:
        width, height = next(gen)["size"]
        for raw in gen:
            yield np.frombuffer(raw, dtype=np.uint8).reshape(height, width, 3)
    except (OSError, RuntimeError, StopIteration) as exc:
        raise DatasetError(f"{path}: cannot decode the video ({exc})") from exc
    finally:
        gen.close()  # ends ffmpeg when the caller stops early


def count_frames(path: Path) -> int:
    """Frames in an MP4 (decodes it: exact)."""
    import imageio_ffmpeg

    try:
        return int(imageio_ffmpeg.count_frames_and_secs(str(path))[0])
    except (OSError, RuntimeError) as exc:
        raise DatasetError(f"{path}: cannot read the video ({exc})") from exc
