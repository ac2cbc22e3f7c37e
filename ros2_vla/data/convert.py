"""Recorded episodes (rosbag2) -> one LeRobot v3.0 dataset, all or nothing.

    report = convert_to_lerobot(["demos/"], "datasets/pick", ConvertOptions(progress=True))

Every bag is opened, checked and read (all but its camera frames) before anything is written, so a
bad episode fails the conversion early, naming its file. The dataset is then written into a hidden
sibling folder and renamed to OUT only when complete; on any error (or Ctrl-C) that folder is
removed. An existing non-empty OUT is refused unless `overwrite`, and replaced only at the end.
"""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ros2_vla.config import RobotConfig, load_robot_config
from ros2_vla.data.action_labels import action_labels
from ros2_vla.data.bag_reader import EpisodeBag, decode, find_episodes, open_episode, read_messages
from ros2_vla.data.episode import COMMANDED, MEASURED
from ros2_vla.data.lerobot_writer import LeRobotWriter
from ros2_vla.data.sampling import FramePlan, plan_frames
from ros2_vla.data.series import EpisodeSeries, decode_image, read_series
from ros2_vla.data.video import ENCODERS, VideoSettings
from ros2_vla.errors import ConfigError, DatasetError

EXTRAS_FORMAT = 1


@dataclass(frozen=True)
class ConvertOptions:
    """How `convert_to_lerobot` runs: overwriting, failed episodes, video settings, progress and action labels."""

    overwrite: bool = False  # replace a non-empty OUT (only once the new dataset is complete)
    include_failed: bool = False  # keep episodes labelled success=False (unlabelled ones are always kept)
    video: VideoSettings = field(default_factory=VideoSettings)
    progress: bool = False  # tqdm bars on stderr
    labels: str = MEASURED  # action labels: the motion between frames, or the chunks commanded (action_labels)


@dataclass(frozen=True)
class ConversionReport:
    """What a conversion wrote: the dataset folder, its counts, the failed bags left out, bytes and time."""

    out: Path
    episodes: int  # written
    frames: int
    tasks: int
    skipped_failed: tuple[Path, ...]  # bags left out because they are labelled failures
    bytes_written: int
    seconds: float  # [s] wall time of the whole conversion


@dataclass(frozen=True)
class _Prepared:
    series: EpisodeSeries
    plan: FramePlan
    action: np.ndarray  # (N, D)


def convert_to_lerobot(
    bags: Sequence[str | Path], out: str | Path, options: ConvertOptions = ConvertOptions()
) -> ConversionReport:
    """Convert the episodes in `bags` (bag folders, or folders of them) into a LeRobot dataset at `out`."""
    start = time.perf_counter()
    out = Path(out)
    check_output(out, options.overwrite)
    opened = [open_episode(p) for p in find_episodes(bags)]
    robot = _one_robot(opened)
    fps = dataset_fps(robot)
    kept = [b for b in opened if options.include_failed or b.meta.success is not False]
    skipped = tuple(b.path for b in opened if not options.include_failed and b.meta.success is False)
    if not kept:
        raise DatasetError(
            f"no episodes to convert: all {len(opened)} are labelled failures (success: false); "
            f"pass --include-failed to convert them anyway"
        )
    prepared = [_prepare(b, robot, fps, options.labels) for b in _bar(kept, options.progress, "reading bags")]
    cameras = _camera_sizes(prepared)
    with atomic_output(out, options.overwrite) as folder:
        writer = LeRobotWriter(
            folder,
            fps,
            robot.name,
            prepared[0].series.state_names,
            robot.action.dimension_names,
            cameras,
            options.video,
        )
        try:
            for p in _bar(prepared, options.progress, "writing episodes"):
                writer.start_episode(p.plan.num_frames)
                _write_frames(writer, p.series, p.plan)
                writer.end_episode(p.plan.state[:-1], p.action, p.plan.tasks)
            writer.finish(_extras(robot, prepared, skipped, options))
        except BaseException:
            writer.abort()
            raise
        size = sum(f.stat().st_size for f in folder.rglob("*") if f.is_file())
    frames = sum(p.plan.num_frames for p in prepared)
    tasks = len({t for p in prepared for t in p.plan.tasks})
    return ConversionReport(out, len(prepared), frames, tasks, skipped, size, time.perf_counter() - start)


def check_output(out: Path, overwrite: bool) -> None:
    """DatasetError for an OUT that is a file, or a non-empty folder without `overwrite`."""
    if out.exists() and not out.is_dir():
        raise DatasetError(f"{out} exists and is not a folder; choose another output")
    if out.is_dir() and any(out.iterdir()) and not overwrite:
        raise DatasetError(f"{out} exists and is not empty; pass --overwrite to replace it, or choose another output")


@contextmanager
def atomic_output(out: Path, overwrite: bool) -> Iterator[Path]:
    """A hidden sibling folder to write into, renamed to `out` when the block ends without error
    and removed when it does not (an old `out` is replaced only then)."""
    check_output(out, overwrite)
    out.parent.mkdir(parents=True, exist_ok=True)
    partial = out.parent / f".{out.name}.partial-{os.getpid()}"
    shutil.rmtree(partial, ignore_errors=True)
    partial.mkdir()
    try:
        yield partial
        if out.exists():
            old = out.parent / f".{out.name}.old-{os.getpid()}"
            out.rename(old)
            partial.rename(out)
            shutil.rmtree(old, ignore_errors=True)
        else:
            partial.rename(out)
    except BaseException:
        shutil.rmtree(partial, ignore_errors=True)
        raise


def dataset_fps(robot: RobotConfig) -> int:
    """Frames per second = 1 / action.dt, which LeRobot needs as an integer."""
    fps = 1.0 / robot.action.dt
    if abs(fps - round(fps)) > 1e-6:
        raise DatasetError(
            f"config/{robot.name}.yaml: action.dt {robot.action.dt} s gives {fps:.4f} frames per "
            f"second; a LeRobot dataset needs a whole number"
        )
    return int(round(fps))


def _one_robot(bags: list[EpisodeBag]) -> RobotConfig:
    """The robot every episode was recorded on; DatasetError naming two bags that disagree."""
    first = bags[0]
    for b in bags[1:]:
        if (b.meta.robot, b.meta.variant) != (first.meta.robot, first.meta.variant):
            what = lambda m: m.robot + (f" ({m.variant})" if m.variant else "")  # noqa: E731
            raise DatasetError(
                f"episodes from different robots: {b.path} is {what(b.meta)} but {first.path} is "
                f"{what(first.meta)}; convert each robot's episodes into its own dataset"
            )
    try:
        return load_robot_config(first.meta.robot, variant=first.meta.variant or None)
    except ConfigError as exc:
        raise DatasetError(f"{first.path}: {exc}") from exc


def _prepare(bag: EpisodeBag, robot: RobotConfig, fps: int, labels: str) -> _Prepared:
    series = read_series(bag, robot, with_chunks=labels == COMMANDED)
    plan = plan_frames(series, fps, bag.meta.instruction or bag.meta.task)
    return _Prepared(series, plan, action_labels(series, plan, labels))


def _camera_sizes(prepared: list[_Prepared]) -> dict[str, tuple[int, int]]:
    """Camera -> (height, width), the same in every episode (one video stream per camera)."""
    first = prepared[0].series
    sizes = {c: cam.shape[:2] for c, cam in first.cameras.items()}
    for p in prepared[1:]:
        for c, cam in p.series.cameras.items():
            if cam.shape[:2] != sizes[c]:
                raise DatasetError(
                    f"{p.series.bag.path}: camera {c} frames are {cam.shape[1]}x{cam.shape[0]}, but "
                    f"{sizes[c][1]}x{sizes[c][0]} in {first.bag.path}; one dataset needs one size per camera"
                )
    return sizes


def _write_frames(writer: LeRobotWriter, series: EpisodeSeries, plan: FramePlan) -> None:
    """Second pass over the bag: decode the frames the plan shows (each once) and hand them over in order."""
    topics = {cam.topic: name for name, cam in series.cameras.items()}
    seen = dict.fromkeys(series.cameras, 0)  # messages of each camera so far (bag order, as in the first pass)
    nxt = dict.fromkeys(series.cameras, 0)  # next frame position to fill per camera
    n = plan.num_frames
    for topic, t_ns, raw in read_messages(series.bag, list(topics), raw_topics=set(topics)):
        cam = topics[topic]
        m, k, index = seen[cam], nxt[cam], plan.image_index[cam]
        seen[cam] = m + 1
        if k >= n or index[k] != m:
            continue
        rgb = decode_image(series.bag, topic, decode(series.bag, topic, t_ns, raw))
        if rgb.shape != series.cameras[cam].shape:
            raise DatasetError(
                f"{series.bag.path}: a frame on {topic} is {rgb.shape[1]}x{rgb.shape[0]}, the first was "
                f"{series.cameras[cam].shape[1]}x{series.cameras[cam].shape[0]}"
            )
        while k < n and index[k] == m:
            writer.write_frame(cam, rgb)
            k += 1
        nxt[cam] = k
        if all(v >= n for v in nxt.values()):
            return  # every frame is out: the rest of the bag is not needed
    short = {c: v for c, v in nxt.items() if v < n}
    if short:
        raise DatasetError(
            f"{series.bag.path}: camera frames changed between two reads of the bag ({short} of {n}); "
            f"is it still being written?"
        )


def _extras(robot: RobotConfig, prepared: list[_Prepared], skipped: tuple[Path, ...], options: ConvertOptions) -> dict:
    """meta/ros2_vla.json: what LeRobot's files cannot say (action space, frame, sources)."""
    video = options.video
    grippers = {
        a.gripper.joint: {
            "open_position": a.gripper.open_position,
            "closed_position": a.gripper.closed_position,
            "binarize": a.gripper.binarize,
            "invert": a.gripper.invert,
        }
        for a in robot.arms
        if a.gripper is not None
    }
    episodes = [
        {
            "episode_index": i,
            "bag": str(p.series.bag.path.resolve()),
            "success": p.series.bag.meta.success,
            "seed": p.series.bag.meta.seed,
            "demonstrator": p.series.bag.meta.demonstrator,
            "notes": p.series.bag.meta.notes,
            "frames": p.plan.num_frames,
            "start_ns": p.series.origin_ns + int(round(p.plan.times[0] * 1e9)),
        }
        for i, p in enumerate(prepared)
    ]
    return {
        "format": EXTRAS_FORMAT,
        "robot": robot.name,
        "variant": prepared[0].series.bag.meta.variant,
        "action_space": robot.action.space,
        "action_frame": robot.action.frame,
        "action_dt": robot.action.dt,
        "action_labels": options.labels,
        "action_names": list(robot.action.dimension_names),
        "state_names": list(prepared[0].series.state_names),
        "grippers": grippers,
        "video": {
            "codec": video.codec,
            "encoder": ENCODERS[video.codec],
            "crf": video.crf,
            "preset": video.encoder_preset,
            "gop": video.gop,
            "bframes": video.bframes if video.codec == "h264" else 0,
        },
        "episodes": episodes,
        "skipped_failed": [str(p) for p in skipped],
    }


def _bar(items: list, progress: bool, desc: str):
    if not progress:
        return items
    from tqdm import tqdm

    return tqdm(items, desc=desc, unit="episode")


__all__ = ["ConversionReport", "ConvertOptions", "atomic_output", "check_output", "convert_to_lerobot", "dataset_fps"]
