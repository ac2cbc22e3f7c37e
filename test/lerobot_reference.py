"""What LeRobot 0.4.4's own writer produces, written from its source (not from the package's writer), to
compare the package's datasets with field by field; and the video checks of its `aggregate_datasets`.

- info.json: `create_empty_dataset_info` (datasets/utils.py) for the keys and their order, updated as
  `LeRobotDatasetMetadata.save_episode` does (totals, splits); user features first, then
  DEFAULT_FEATURES (timestamp float32, frame_index, episode_index, index, task_index int64, shape [1],
  names None).
- A video feature's "info": `get_video_info` (datasets/video_utils.py), read from the mp4 itself:
  video.height, video.width, video.codec (the stream's codec name), video.pix_fmt, video.is_depth_map,
  video.fps, video.channels, has_audio. Here ffmpeg reads the stream (imageio-ffmpeg's binary), where
  LeRobot uses PyAV over the same libavformat.
- Parquet files (`_save_episode_data`, `_flush_metadata_buffer`, `write_tasks`): data columns are the
  non-video features in order, typed by datasets' Features (`get_hf_features_from_features`: a Value per
  shape-[1] feature, a fixed-length List per vector) with datasets' `huggingface` schema metadata; the
  episodes table from a dict of Python lists (episode fields, each video's file and span, then every
  feature's stats in features order, min max mean std count q01 q10 q50 q90 q99); tasks from pandas
  with the text as an unnamed index.
- Videos: `encode_video_frames` defaults (libsvtav1, yuv420p, g=2, crf=30, preset 12; h264 with g=2,
  crf=30 and libx264's own defaults), and `concatenate_video_files`, which remuxes files through
  libavformat's concat demuxer into an mp4, whose muxer refuses decode timestamps that do not increase.
"""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

import numpy as np

DEFAULT_FEATURES = {
    "timestamp": {"dtype": "float32", "shape": [1], "names": None},
    "frame_index": {"dtype": "int64", "shape": [1], "names": None},
    "episode_index": {"dtype": "int64", "shape": [1], "names": None},
    "index": {"dtype": "int64", "shape": [1], "names": None},
    "task_index": {"dtype": "int64", "shape": [1], "names": None},
}
# encode_video_frames' options for LeRobot's codecs (vcodec -> ffmpeg options)
LEROBOT_ENCODING = {
    "av1": ["-c:v", "libsvtav1", "-g", "2", "-crf", "30", "-preset", "12"],
    "h264": ["-c:v", "libx264", "-g", "2", "-crf", "30"],
}


STAT_KEYS = ("min", "max", "mean", "std", "count", "q01", "q10", "q50", "q90", "q99")


def hf_features(features: dict) -> dict:
    """datasets' Features JSON of the data file (the `huggingface` metadata's "info" -> "features")."""
    out = {}
    for key, f in features.items():
        if f["dtype"] == "video":
            continue
        value = {"dtype": f["dtype"], "_type": "Value"}
        out[key] = value if list(f["shape"]) == [1] else {"feature": value, "length": f["shape"][0], "_type": "List"}
    return out


def data_types(features: dict) -> dict[str, str]:
    """Arrow type of each data column, as `str(pyarrow type)` prints it."""
    arrow = {"float32": "float", "int64": "int64", "float64": "double"}
    return {
        k: arrow[f["dtype"]]
        if list(f["shape"]) == [1]
        else f"fixed_size_list<element: {arrow[f['dtype']]}>[{f['shape'][0]}]"
        for k, f in features.items()
        if f["dtype"] != "video"
    }


def episode_types(features: dict) -> dict[str, str]:
    """Columns of meta/episodes/*.parquet in order, with the type pyarrow infers from LeRobot's lists."""
    cols = {"episode_index": "int64", "tasks": "list<element: string>", "length": "int64"}
    cols |= {"data/chunk_index": "int64", "data/file_index": "int64"}
    cols |= {"dataset_from_index": "int64", "dataset_to_index": "int64"}
    videos = [k for k, f in features.items() if f["dtype"] == "video"]
    for key in videos:
        cols |= {f"videos/{key}/chunk_index": "int64", f"videos/{key}/file_index": "int64"}
        cols |= {f"videos/{key}/from_timestamp": "double", f"videos/{key}/to_timestamp": "double"}
    for key, f in features.items():
        value = "list<element: list<element: list<element: double>>>" if key in videos else "list<element: double>"
        for stat in STAT_KEYS:
            integer = stat == "count" or (stat in ("min", "max") and f["dtype"] == "int64")
            cols[f"stats/{key}/{stat}"] = "list<element: int64>" if integer else value
    return cols | {"meta/episodes/chunk_index": "int64", "meta/episodes/file_index": "int64"}


def ffmpeg() -> str:
    import imageio_ffmpeg

    return imageio_ffmpeg.get_ffmpeg_exe()


def info_json(
    fps: int, robot_type: str, features: dict, episodes: int, frames: int, tasks: int, use_videos: bool = True
) -> dict:
    """info.json after `episodes` save_episode calls."""
    return {
        "codebase_version": "v3.0",
        "robot_type": robot_type,
        "total_episodes": episodes,
        "total_frames": frames,
        "total_tasks": tasks,
        "chunks_size": 1000,
        "data_files_size_in_mb": 100,
        "video_files_size_in_mb": 200,
        "fps": fps,
        "splits": {"train": f"0:{episodes}"},
        "data_path": "data/chunk-{chunk_index:03d}/file-{file_index:03d}.parquet",
        "video_path": "videos/{video_key}/chunk-{chunk_index:03d}/file-{file_index:03d}.mp4" if use_videos else None,
        "features": {**features, **DEFAULT_FEATURES},
    }


def vector_feature(names: list[str]) -> dict:
    """A float32 vector feature as hw_to_dataset_features declares it."""
    return {"dtype": "float32", "shape": [len(names)], "names": list(names)}


def video_feature(path: Path) -> dict:
    """A camera's feature once LeRobot has encoded its first episode (update_video_info)."""
    info = video_info(path)
    return {
        "dtype": "video",
        "shape": [info["video.height"], info["video.width"], 3],
        "names": ["height", "width", "channels"],
        "info": info,
    }


def video_info(path: Path) -> dict:
    """get_video_info's dict, from the stream ffmpeg finds in `path`."""
    err = subprocess.run([ffmpeg(), "-hide_banner", "-i", str(path)], capture_output=True, text=True).stderr
    line = next(x for x in err.splitlines() if "Video:" in x)
    codec = re.search(r"Video: (\w+)", line).group(1)
    pix_fmt = re.search(r"Video: [^,]+, (\w+)", line).group(1)
    width, height = map(int, re.search(r", (\d+)x(\d+)", line).groups())
    fps = float(re.search(r"([\d.]+) fps", line).group(1))
    return {
        "video.height": height,
        "video.width": width,
        "video.codec": codec,
        "video.pix_fmt": pix_fmt,
        "video.is_depth_map": False,
        "video.fps": int(fps),
        "video.channels": 3,  # yuv420p: three components
        "has_audio": "Audio:" in err,
    }


def encode(frames: list[np.ndarray], fps: int, codec: str, path: Path) -> Path:
    """`frames` (H, W, 3) uint8 RGB encoded as LeRobot's recorder would with `codec`."""
    h, w, _ = frames[0].shape
    cmd = [ffmpeg(), "-hide_banner", "-loglevel", "error", "-y", "-f", "rawvideo", "-pix_fmt", "rgb24"]
    cmd += ["-s", f"{w}x{h}", "-r", str(fps), "-i", "-", *LEROBOT_ENCODING[codec], "-pix_fmt", "yuv420p", str(path)]
    frames_in = b"".join(np.ascontiguousarray(f).tobytes() for f in frames)
    subprocess.run(cmd, input=frames_in, check=True, env={**os.environ, "SVT_LOG": "1"})
    return path


def decode_timestamps(path: Path) -> list[int]:
    """Each packet's DTS, in stream order (ffmpeg's framecrc muxer lists them)."""
    out = subprocess.run(
        [ffmpeg(), "-hide_banner", "-loglevel", "error", "-i", str(path), "-c", "copy", "-f", "framecrc", "-"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return [int(line.split(",")[1]) for line in out.splitlines() if line and not line.startswith("#")]


def concatenate(first: Path, second: Path, out: Path) -> str:
    """concatenate_video_files([first, second], out): the concat demuxer remuxed into an mp4 (faststart).
    Returns what libavformat warned about; "non monotonically increasing dts" is where PyAV raises."""
    listing = out.with_suffix(".ffconcat")
    listing.write_text(f"ffconcat version 1.0\nfile '{first}'\nfile '{second}'\n")
    cmd = [ffmpeg(), "-hide_banner", "-loglevel", "warning", "-y", "-f", "concat", "-safe", "0", "-i", str(listing)]
    cmd += ["-c", "copy", "-movflags", "faststart", str(out)]
    return subprocess.run(cmd, capture_output=True, text=True, check=True).stderr
