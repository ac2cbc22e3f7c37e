"""A LeRobot v3.0 dataset folder -> `FrameDataset` (every frame in memory), what the trainers read.

    data = load_lerobot_dataset("datasets/pick", image_size=(224, 224))

Videos are decoded once, front to back, keeping only the frames of the episodes asked for; with
`image_size` each frame is resized as the policies resize at run time (bilinear, antialiased, the
flow backend's `images_to_tensor`), then rounded back to uint8. Works on datasets this package
wrote and on other v3.0 datasets with video cameras (action space from meta/ros2_vla.json, else
from the robot's config when `robot_type` names one, else "").
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from ros2_vla.data import lerobot_format as fmt
from ros2_vla.data.frames import FrameDataset
from ros2_vla.data.stats import stats_from_json
from ros2_vla.data.video import read_video
from ros2_vla.errors import DatasetError

_RESIZE_BATCH = 64  # frames resized per torch call (bounds the float32 copy)


def load_lerobot_dataset(
    root: str | Path,
    image_size: tuple[int, int] | None = None,
    episodes: Sequence[int] | None = None,
    progress: bool = False,
) -> FrameDataset:
    """Every frame of `episodes` (default: all) of the dataset at `root`. image_size: (height, width) [px]
    to resize camera frames to (None: as stored). Statistics are the whole dataset's, as stored."""
    root = Path(root)
    info = _read_json(root / fmt.INFO_PATH, root)
    version = str(info.get("codebase_version", ""))
    if not version.startswith("v3."):
        raise DatasetError(
            f"{root}: LeRobot dataset version {version or 'unknown'}; this reader needs v3.0 "
            f"(convert older ones with LeRobot's convert_dataset_v21_to_v30)"
        )
    table = read_frame_columns(root)
    episode_index = table["episode_index"]
    chosen = (
        np.unique(episode_index)
        if episodes is None
        else np.asarray(sorted(set(int(e) for e in episodes)), dtype=np.int64)
    )
    unknown = sorted(set(chosen.tolist()) - set(np.unique(episode_index).tolist()))
    if unknown:
        raise DatasetError(f"{root}: no episode(s) {unknown}; it has {int(info.get('total_episodes', 0))} episodes")
    rows = np.isin(episode_index, chosen)
    fps = float(info["fps"])
    features = info["features"]
    cameras = tuple(
        k[len(fmt.IMAGE_PREFIX) :]
        for k, f in features.items()
        if f.get("dtype") == "video" and k.startswith(fmt.IMAGE_PREFIX)
    )
    meta = _read_episodes(root)
    frames = {k: v[rows] for k, v in table.items()}
    images = {cam: _camera_frames(root, info, meta, cam, frames, image_size, progress) for cam in cameras}
    extras = read_extras(root)
    return FrameDataset(
        root=str(root),
        robot=str(info.get("robot_type") or ""),
        fps=fps,
        cameras=cameras,
        images=images,
        state=frames[fmt.STATE].astype(np.float32),
        action=frames[fmt.ACTION].astype(np.float32),
        action_names=_names(features[fmt.ACTION], frames[fmt.ACTION].shape[1]),
        action_space=extras.get("action_space") or _config_action_space(str(info.get("robot_type") or "")),
        episode_index=frames["episode_index"],
        frame_index=frames["frame_index"],
        task_index=frames["task_index"],
        tasks=fmt.read_tasks(root / fmt.TASKS_PATH),
        stats=stats_from_json(_read_json(root / fmt.STATS_PATH, root)) if (root / fmt.STATS_PATH).is_file() else {},
    )


def _read_json(path: Path, root: Path) -> dict:
    if not path.is_file():
        raise DatasetError(
            f"{root}: not a LeRobot dataset (no {path.relative_to(root)}); convert episodes with "
            f"`ros2-vla convert BAGS --to lerobot OUT`"
        )
    try:
        return json.loads(path.read_text())
    except ValueError as exc:
        raise DatasetError(f"{path}: not valid JSON ({exc})") from exc


def _read_table(files: list[Path], root: Path, what: str):
    import pyarrow as pa
    import pyarrow.parquet as pq

    if not files:
        raise DatasetError(f"{root}: no {what} parquet files; the dataset is incomplete")
    try:
        return pa.concat_tables([pq.read_table(f) for f in files])
    except (OSError, pa.ArrowException) as exc:
        raise DatasetError(f"{root}: unreadable {what} parquet ({exc})") from exc


def read_frame_columns(root: Path) -> dict[str, np.ndarray]:
    """Frame columns as numpy, without the camera frames: vectors (N, D), scalars (N,), sorted by the
    global frame index."""
    table = _read_table(sorted((root / "data").glob("*/*.parquet")), root, "data")
    missing = [
        c
        for c in (fmt.STATE, fmt.ACTION, "episode_index", "frame_index", "index", "task_index")
        if c not in table.column_names
    ]
    if missing:
        raise DatasetError(f"{root}: data parquet lacks columns {missing}")
    import pyarrow as pa

    out = {}
    for name in (fmt.STATE, fmt.ACTION, "episode_index", "frame_index", "index", "task_index"):
        column = table.column(name).combine_chunks()
        t = column.type
        if pa.types.is_list(t) or pa.types.is_large_list(t) or pa.types.is_fixed_size_list(t):  # vectors: (N, D)
            out[name] = np.asarray(column.flatten().to_numpy(zero_copy_only=False)).reshape(len(column), -1)
        else:
            out[name] = np.asarray(column.to_numpy(zero_copy_only=False))
    order = np.argsort(out["index"], kind="stable")
    return {k: v[order] for k, v in out.items()}


def _read_episodes(root: Path) -> dict[int, dict]:
    table = _read_table(sorted((root / "meta" / "episodes").glob("*/*.parquet")), root, "episodes")
    keep = [c for c in table.column_names if not c.startswith("stats/")]
    return {int(r["episode_index"]): r for r in table.select(keep).to_pylist()}


def _camera_frames(
    root: Path,
    info: dict,
    meta: dict[int, dict],
    cam: str,
    frames: dict[str, np.ndarray],
    image_size: tuple[int, int] | None,
    progress: bool,
) -> np.ndarray:
    """(N, h, w, 3) uint8 frames of one camera for the selected rows, decoded file by file."""
    key = fmt.video_key(cam)
    fps = float(info["fps"])
    h, w = info["features"][key]["shape"][:2]
    size = tuple(image_size) if image_size is not None else (h, w)
    out = np.empty((len(frames["index"]), *size, 3), dtype=np.uint8)
    wanted: dict[tuple[int, int], dict[int, list[int]]] = {}  # (chunk, file) -> position in file -> rows
    for row, (ep, k) in enumerate(zip(frames["episode_index"], frames["frame_index"])):
        m = meta.get(int(ep))
        if m is None:
            raise DatasetError(f"{root}: episode {int(ep)} has frames but no row in meta/episodes")
        where = (int(m[f"videos/{key}/chunk_index"]), int(m[f"videos/{key}/file_index"]))
        position = int(round(float(m[f"videos/{key}/from_timestamp"]) * fps)) + int(k)
        wanted.setdefault(where, {}).setdefault(position, []).append(row)
    for (chunk, file), positions in wanted.items():
        path = root / info.get("video_path", fmt.VIDEO_PATH).format(video_key=key, chunk_index=chunk, file_index=file)
        if not path.is_file():
            raise DatasetError(f"{path}: missing; the dataset is incomplete")
        _decode_into(path, positions, out, size, progress)
    return out


def _decode_into(
    path: Path, positions: dict[int, list[int]], out: np.ndarray, size: tuple[int, int], progress: bool
) -> None:
    last = max(positions)
    batch_frames: list[np.ndarray] = []
    batch_rows: list[list[int]] = []
    decoder = read_video(path)
    frames = decoder
    if progress:
        from tqdm import tqdm

        frames = tqdm(decoder, total=last + 1, desc=path.parent.parent.name, unit="frame")
    seen = 0
    try:
        for position, rgb in enumerate(frames):
            seen = position + 1
            if position in positions:
                batch_frames.append(rgb)
                batch_rows.append(positions[position])
                if len(batch_frames) == _RESIZE_BATCH:
                    _flush(batch_frames, batch_rows, out, size)
            if position >= last:
                break
    finally:
        decoder.close()  # stops ffmpeg when the needed frames end before the file does
    _flush(batch_frames, batch_rows, out, size)
    if seen <= last:
        raise DatasetError(f"{path}: has {seen} frames but the episodes need frame {last}; the video is truncated")


def _flush(batch: list[np.ndarray], rows: list[list[int]], out: np.ndarray, size: tuple[int, int]) -> None:
    if not batch:
        return
    frames = np.stack(batch)
    if frames.shape[1:3] != size:
        frames = resize_frames(frames, size)
    for frame, targets in zip(frames, rows):
        out[targets] = frame
    batch.clear()
    rows.clear()


def resize_frames(frames: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """(K, H, W, 3) uint8 -> (K, h, w, 3) uint8, bilinear with antialiasing (as the policies resize)."""
    import torch
    import torch.nn.functional as F

    x = torch.from_numpy(np.ascontiguousarray(frames)).permute(0, 3, 1, 2).float()
    y = F.interpolate(x, size=tuple(size), mode="bilinear", align_corners=False, antialias=True)
    return y.round_().clamp_(0, 255).to(torch.uint8).permute(0, 2, 3, 1).contiguous().numpy()


def _names(feature: dict, dim: int) -> tuple[str, ...]:
    names = feature.get("names")
    if isinstance(names, dict):  # LeRobot also writes {"motors": [...]}
        names = next(iter(names.values()), None)
    return tuple(names) if names and len(names) == dim else tuple(f"a{i}" for i in range(dim))


def read_extras(root: Path) -> dict:
    """meta/ros2_vla.json (what `ros2-vla convert` adds to LeRobot's files), or {} for other datasets."""
    path = root / fmt.EXTRAS_PATH
    try:
        return json.loads(path.read_text()) if path.is_file() else {}
    except ValueError as exc:
        raise DatasetError(f"{path}: not valid JSON ({exc})") from exc


def _config_action_space(robot_type: str) -> str:
    from ros2_vla.config import available_robots, load_robot_config

    return load_robot_config(robot_type).action.space if robot_type in available_robots() else ""
