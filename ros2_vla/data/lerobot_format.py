"""LeRobot dataset v3.0 on disk: paths, meta/info.json and meta/tasks.parquet, as LeRobot writes them.

Layout (lerobot/datasets/utils.py and convert_dataset_v21_to_v30.py, codebase "v3.0"):

    meta/info.json                          codebase_version, fps, robot_type, features, totals, path templates
    meta/stats.json                         feature -> {min, max, mean, std, count, q01, q10, q50, q90, q99}
    meta/tasks.parquet                      unnamed index (the text) -> task_index (a pandas frame)
    meta/episodes/chunk-000/file-000.parquet   one row per episode: file indices, ranges, tasks, stats/...
    data/chunk-000/file-000.parquet         one row per frame; one row group per episode
    videos/<video_key>/chunk-000/file-000.mp4  episodes back to back; each has from/to timestamps
    meta/ros2_vla.json                      this package's extras (action space, frame, sources); LeRobot ignores it

Files roll over to the next index (file-001, ... then chunk-001) past the size limits in info.json.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

CODEBASE_VERSION = "v3.0"
CHUNKS_SIZE = 1000  # files per chunk folder
DATA_FILES_SIZE_MB = 100
VIDEO_FILES_SIZE_MB = 200
CHUNK_FILE = "chunk-{chunk_index:03d}/file-{file_index:03d}"
DATA_PATH = "data/" + CHUNK_FILE + ".parquet"
VIDEO_PATH = "videos/{video_key}/" + CHUNK_FILE + ".mp4"
EPISODES_PATH = "meta/episodes/" + CHUNK_FILE + ".parquet"
INFO_PATH = "meta/info.json"
STATS_PATH = "meta/stats.json"
TASKS_PATH = "meta/tasks.parquet"
TASK_TEXT = "__index_level_0__"  # tasks.parquet's text column: pandas' name for an unnamed index
EXTRAS_PATH = "meta/ros2_vla.json"
STATE = "observation.state"
ACTION = "action"
IMAGE_PREFIX = "observation.images."

# Every frame row has these (LeRobot's DEFAULT_FEATURES).
INDEX_FEATURES = {
    "timestamp": {"dtype": "float32", "shape": [1], "names": None},
    "frame_index": {"dtype": "int64", "shape": [1], "names": None},
    "episode_index": {"dtype": "int64", "shape": [1], "names": None},
    "index": {"dtype": "int64", "shape": [1], "names": None},
    "task_index": {"dtype": "int64", "shape": [1], "names": None},
}


def video_key(camera: str) -> str:
    return IMAGE_PREFIX + camera


def next_file(chunk_index: int, file_index: int) -> tuple[int, int]:
    """The (chunk, file) after this one: CHUNKS_SIZE files per chunk folder."""
    return (chunk_index + 1, 0) if file_index == CHUNKS_SIZE - 1 else (chunk_index, file_index + 1)


def video_feature(height: int, width: int, fps: int, codec: str, pix_fmt: str) -> dict:
    """A camera's feature entry, with the stream facts LeRobot's get_video_info records, and only those:
    `aggregate_datasets` merges datasets whose features are equal (encoder settings: meta/ros2_vla.json)."""
    info = {
        "video.height": height,
        "video.width": width,
        "video.codec": codec,
        "video.pix_fmt": pix_fmt,
        "video.is_depth_map": False,
        "video.fps": fps,
        "video.channels": 3,
        "has_audio": False,
    }
    return {"dtype": "video", "shape": [height, width, 3], "names": ["height", "width", "channels"], "info": info}


def hf_schema_metadata(features: dict) -> dict[bytes, bytes]:
    """The `huggingface` schema metadata LeRobot's data files carry (datasets' Features of the non-video
    features, as `get_hf_features_from_features` makes them: a Value per scalar, a List of fixed length
    per vector); `datasets` reads the column types from it."""

    def hf(feature: dict) -> dict:
        value = {"dtype": feature["dtype"], "_type": "Value"}
        shape = feature["shape"]
        return value if list(shape) == [1] else {"feature": value, "length": shape[0], "_type": "List"}

    described = {k: hf(f) for k, f in features.items() if f["dtype"] != "video"}
    return {b"huggingface": json.dumps({"info": {"features": described}}).encode()}


def vector_feature(names: tuple[str, ...]) -> dict:
    return {"dtype": "float32", "shape": [len(names)], "names": list(names)}


def make_info(fps: int, robot_type: str, features: dict, episodes: int, frames: int, tasks: int) -> dict:
    return {
        "codebase_version": CODEBASE_VERSION,
        "robot_type": robot_type,
        "total_episodes": episodes,
        "total_frames": frames,
        "total_tasks": tasks,
        "chunks_size": CHUNKS_SIZE,
        "data_files_size_in_mb": DATA_FILES_SIZE_MB,
        "video_files_size_in_mb": VIDEO_FILES_SIZE_MB,
        "fps": fps,
        "splits": {"train": f"0:{episodes}"},
        "data_path": DATA_PATH,
        "video_path": VIDEO_PATH,
        "features": features,
    }


def write_json(path: Path, value: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(value, indent=4, default=_json_default) + "\n")


def _json_default(o):
    if isinstance(o, np.generic):
        return o.item()
    if isinstance(o, np.ndarray):
        return o.tolist()
    raise TypeError(f"{type(o).__name__} is not JSON serializable")


def write_tasks(path: Path, tasks: list[str]) -> None:
    """meta/tasks.parquet as LeRobot writes it, `pd.DataFrame({"task_index": ...}, index=tasks).to_parquet()`:
    the unnamed index is the column `__index_level_0__`, and the pandas metadata makes `pd.read_parquet` give
    the text back as the index, which LeRobot looks tasks up by."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    pandas_meta = {
        "index_columns": [TASK_TEXT],
        "column_indexes": [
            {
                "name": None,
                "field_name": None,
                "pandas_type": "unicode",
                "numpy_type": "object",
                "metadata": {"encoding": "UTF-8"},
            }
        ],
        "columns": [
            {
                "name": "task_index",
                "field_name": "task_index",
                "pandas_type": "int64",
                "numpy_type": "int64",
                "metadata": None,
            },
            {"name": None, "field_name": TASK_TEXT, "pandas_type": "unicode", "numpy_type": "object", "metadata": None},
        ],
        "creator": {"library": "pyarrow", "version": pa.__version__},
        "pandas_version": "2.2.3",
    }
    table = pa.table({"task_index": pa.array(range(len(tasks)), pa.int64()), TASK_TEXT: pa.array(tasks, pa.string())})
    table = table.replace_schema_metadata({b"pandas": json.dumps(pandas_meta).encode()})
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(table, path)


def read_tasks(path: Path) -> tuple[str, ...]:
    """task_index -> text from meta/tasks.parquet (ours or one pandas wrote)."""
    import pyarrow.parquet as pq

    table = pq.read_table(path)
    text_column = TASK_TEXT if TASK_TEXT in table.column_names else "task"  # "task": this package before 2026-12
    index = table.column("task_index").to_pylist()
    text = table.column(text_column).to_pylist()
    out = [""] * (max(index) + 1 if index else 0)
    for i, t in zip(index, text):
        out[i] = t
    return tuple(out)
