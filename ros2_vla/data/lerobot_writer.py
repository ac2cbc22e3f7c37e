"""Writes a LeRobot v3.0 dataset episode by episode (layout in `lerobot_format`).

    writer = LeRobotWriter(folder, fps=10, robot_type="franka", state_names=..., action_names=...,
                           cameras={"scene": (224, 224)})
    writer.start_episode(length=N)
    writer.write_frame("scene", rgb)            # N frames per camera, in order
    writer.end_episode(state, action, tasks)    # (N, S), (N, D), N instruction texts
    writer.finish(extras)                       # meta/*: info.json last
    # or writer.abort() on any error

Each camera is one ffmpeg process for the whole dataset (episodes back to back in one file until
it passes the size limit). Frame rows go to parquet one row group per episode, as LeRobot writes.
The folder is only complete once `finish` has written meta/info.json; `atomic_output` in convert.py
makes sure nobody sees it before then.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ros2_vla.data import lerobot_format as fmt
from ros2_vla.data.frames import FrameDataset
from ros2_vla.data.stats import PixelHistogram, feature_stats, sample_positions, stats_to_json
from ros2_vla.data.video import VideoEncoder, VideoSettings
from ros2_vla.errors import DatasetError


@dataclass
class _VideoFile:
    encoder: VideoEncoder | None = None
    chunk: int = 0
    file: int = -1  # -1: nothing opened yet
    frames: int = 0  # frames already in the current file


@dataclass
class _Episode:
    index: int
    length: int
    samples: set[int]  # frame positions whose pixels go into the image statistics
    frames: dict[str, int]  # camera -> frames written
    histograms: dict[str, PixelHistogram]
    video: dict[str, tuple[int, int, float]] = field(default_factory=dict)  # camera -> (chunk, file, from_timestamp)


class LeRobotWriter:
    """A LeRobot v3.0 dataset being written episode by episode: camera videos, frame rows and meta files."""

    def __init__(
        self,
        root: Path,
        fps: int,
        robot_type: str,
        state_names: Sequence[str],
        action_names: Sequence[str],
        cameras: dict[str, tuple[int, int]],
        video: VideoSettings | None = None,
    ) -> None:
        """cameras: name -> (height, width) [px] of its frames."""
        self.root, self.fps, self.robot_type = Path(root), int(fps), robot_type
        self.state_names, self.action_names = tuple(state_names), tuple(action_names)
        self.cameras, self.video = dict(cameras), video or VideoSettings()
        self._videos = {c: _VideoFile() for c in self.cameras}
        self._histograms = {c: PixelHistogram() for c in self.cameras}
        self._tasks: dict[str, int] = {}
        self._episodes: list[dict] = []
        self._columns: dict[str, list[np.ndarray]] = {}  # feature -> per-episode arrays, for dataset statistics
        self._parquet = None  # pyarrow ParquetWriter of the current data file
        self._data_file = (0, 0)
        self._frames = 0
        self._episode: _Episode | None = None

    # --- episodes -----------------------------------------------------------------------------
    def start_episode(self, length: int) -> None:
        if self._episode is not None:
            raise DatasetError("LeRobotWriter: the previous episode was not ended")
        if length < 1:
            raise DatasetError("LeRobotWriter: an episode needs at least one frame")
        ep = _Episode(
            len(self._episodes),
            length,
            set(sample_positions(length).tolist()),
            dict.fromkeys(self.cameras, 0),
            {c: PixelHistogram() for c in self.cameras},
        )
        for cam, vf in self._videos.items():
            if vf.encoder is None or vf.encoder.size_mb() >= fmt.VIDEO_FILES_SIZE_MB:
                self._next_video_file(cam, vf)
            ep.video[cam] = (vf.chunk, vf.file, vf.frames / self.fps)
        self._episode = ep

    def write_frame(self, camera: str, rgb: np.ndarray) -> None:
        """The next frame of `camera` in the current episode: (H, W, 3) uint8 RGB."""
        ep = self._current()
        k = ep.frames[camera]
        if k >= ep.length:
            raise DatasetError(f"camera {camera}: more than {ep.length} frames given for episode {ep.index}")
        vf = self._videos[camera]
        vf.encoder.write(rgb)
        vf.frames += 1
        if k in ep.samples:
            ep.histograms[camera].add(rgb)
        ep.frames[camera] = k + 1

    def task_index(self, text: str) -> int:
        return self._tasks.setdefault(text, len(self._tasks))

    def end_episode(self, state: np.ndarray, action: np.ndarray, tasks: Sequence[str]) -> int:
        """Write the episode's frame rows; returns its episode index."""
        ep = self._current()
        n = ep.length
        short = {c: k for c, k in ep.frames.items() if k != n}
        if (
            short
            or state.shape != (n, len(self.state_names))
            or action.shape != (n, len(self.action_names))
            or len(tasks) != n
        ):
            raise DatasetError(
                f"episode {ep.index}: {n} frames expected; got camera frames {short or 'all'}, "
                f"state {state.shape}, action {action.shape}, {len(tasks)} tasks"
            )
        columns = {  # in the order of info.json's features, as LeRobot writes its columns
            fmt.ACTION: action.astype(np.float32),
            fmt.STATE: state.astype(np.float32),
            "timestamp": (np.arange(n) / self.fps).astype(np.float32),
            "frame_index": np.arange(n, dtype=np.int64),
            "episode_index": np.full(n, ep.index, dtype=np.int64),
            "index": self._frames + np.arange(n, dtype=np.int64),
            "task_index": np.array([self.task_index(t) for t in tasks], dtype=np.int64),
        }
        data_file = self._write_rows(columns)
        stats = {name: feature_stats(values) for name, values in columns.items()}
        for cam, hist in ep.histograms.items():
            stats[fmt.video_key(cam)] = hist.stats()
            self._histograms[cam].merge(hist)
        stats = {name: stats[name] for name in self.features()}  # in the features' order, as LeRobot's
        for name, values in columns.items():
            self._columns.setdefault(name, []).append(values)
        self._episodes.append(self._episode_row(ep, data_file, list(dict.fromkeys(tasks)), stats))
        self._frames += n
        self._episode = None
        return ep.index

    # --- the end ------------------------------------------------------------------------------
    def finish(self, extras: dict) -> None:
        """Close the files and write meta/: episodes, tasks, stats, extras, then info.json."""
        import pyarrow as pa
        import pyarrow.parquet as pq

        if self._episode is not None:
            raise DatasetError("LeRobotWriter: finish() inside an episode")
        if not self._episodes:
            raise DatasetError("LeRobotWriter: no episodes written")
        self._close_files()
        path = self.root / fmt.EPISODES_PATH.format(chunk_index=0, file_index=0)
        path.parent.mkdir(parents=True, exist_ok=True)
        pq.write_table(pa.Table.from_pylist(self._episodes), path)
        fmt.write_tasks(self.root / fmt.TASKS_PATH, list(self._tasks))
        stats = {name: feature_stats(np.concatenate(parts)) for name, parts in self._columns.items()}
        stats.update({fmt.video_key(c): h.stats() for c, h in self._histograms.items()})
        stats = {name: stats[name] for name in self.features()}
        fmt.write_json(self.root / fmt.STATS_PATH, stats_to_json(stats))
        fmt.write_json(self.root / fmt.EXTRAS_PATH, extras)
        info = fmt.make_info(
            self.fps, self.robot_type, self.features(), len(self._episodes), self._frames, len(self._tasks)
        )
        fmt.write_json(self.root / fmt.INFO_PATH, info)

    def abort(self) -> None:
        """Stop every ffmpeg process and close files, ignoring their errors (the folder is thrown away)."""
        try:
            self._close_files()
        except Exception:  # noqa: BLE001 (already failing: the first error is the one to report)
            pass

    def features(self) -> dict:
        out = {fmt.ACTION: fmt.vector_feature(self.action_names), fmt.STATE: fmt.vector_feature(self.state_names)}
        for cam, (h, w) in self.cameras.items():
            out[fmt.video_key(cam)] = fmt.video_feature(h, w, self.fps, self.video.codec, self.video.pix_fmt)
        out.update(fmt.INDEX_FEATURES)
        return out

    # --- helpers ------------------------------------------------------------------------------
    def _current(self) -> _Episode:
        if self._episode is None:
            raise DatasetError("LeRobotWriter: start_episode() first")
        return self._episode

    def _next_video_file(self, cam: str, vf: _VideoFile) -> None:
        if vf.encoder is not None:
            vf.encoder.close()
            vf.chunk, vf.file = fmt.next_file(vf.chunk, vf.file)
        else:
            vf.file = 0
        path = self.root / fmt.VIDEO_PATH.format(video_key=fmt.video_key(cam), chunk_index=vf.chunk, file_index=vf.file)
        h, w = self.cameras[cam]
        vf.encoder, vf.frames = VideoEncoder(path, w, h, self.fps, self.video), 0

    def _write_rows(self, columns: dict[str, np.ndarray]) -> tuple[int, int]:
        """Append one episode as one row group; returns the (chunk, file) it went to."""
        import pyarrow as pa
        import pyarrow.parquet as pq

        def column(v: np.ndarray):
            if v.ndim == 1:
                return pa.array(v)
            # fixed_size_list<float>[D], as datasets writes a LeRobot vector feature
            return pa.FixedSizeListArray.from_arrays(pa.array(v.reshape(-1)), v.shape[1])

        arrays = {name: column(v) for name, v in columns.items()}
        table = pa.table(arrays).replace_schema_metadata(fmt.hf_schema_metadata(self.features()))
        path = self.root / fmt.DATA_PATH.format(chunk_index=self._data_file[0], file_index=self._data_file[1])
        if self._parquet is not None and path.stat().st_size >= fmt.DATA_FILES_SIZE_MB * 1e6:
            self._parquet.close()
            self._data_file = fmt.next_file(*self._data_file)
            path = self.root / fmt.DATA_PATH.format(chunk_index=self._data_file[0], file_index=self._data_file[1])
            self._parquet = None
        if self._parquet is None:
            path.parent.mkdir(parents=True, exist_ok=True)
            self._parquet = pq.ParquetWriter(str(path), table.schema, compression="snappy")
        self._parquet.write_table(table)
        return self._data_file

    def _episode_row(self, ep: _Episode, data_file: tuple[int, int], tasks: list[str], stats: dict) -> dict:
        start = self._frames
        row = {
            "episode_index": ep.index,
            "tasks": tasks,
            "length": ep.length,
            "data/chunk_index": data_file[0],
            "data/file_index": data_file[1],
            "dataset_from_index": start,
            "dataset_to_index": start + ep.length,
        }
        for cam, (chunk, file, t0) in ep.video.items():
            key = fmt.video_key(cam)
            row.update(
                {
                    f"videos/{key}/chunk_index": chunk,
                    f"videos/{key}/file_index": file,
                    f"videos/{key}/from_timestamp": t0,
                    f"videos/{key}/to_timestamp": t0 + ep.length / self.fps,
                }
            )
        for feature, s in stats.items():
            for k, v in s.items():
                row[f"stats/{feature}/{k}"] = np.asarray(v).tolist()  # int64 counts (and integer extremes)
        row["meta/episodes/chunk_index"], row["meta/episodes/file_index"] = 0, 0
        return row

    def _close_files(self) -> None:
        errors = []
        for vf in self._videos.values():
            if vf.encoder is not None:
                try:
                    vf.encoder.close()
                except DatasetError as exc:
                    errors.append(exc)
                vf.encoder = None
        if self._parquet is not None:
            self._parquet.close()
            self._parquet = None
        if errors:
            raise errors[0]


def write_frames(dataset: FrameDataset, root: str | Path) -> None:
    """An in-memory `FrameDataset` as a LeRobot v3.0 folder (synthetic data for tests and benchmarks)."""
    writer = LeRobotWriter(
        root,
        fps=int(dataset.fps),
        robot_type=dataset.robot,
        state_names=[f"s{i}" for i in range(dataset.state.shape[1])],
        action_names=dataset.action_names,
        cameras={c: dataset.images[c].shape[1:3] for c in dataset.cameras},
    )
    for e in np.unique(dataset.episode_index):
        rows = np.flatnonzero(dataset.episode_index == e)
        writer.start_episode(rows.size)
        for c in dataset.cameras:
            for i in rows:
                writer.write_frame(c, dataset.images[c][i])
        writer.end_episode(
            dataset.state[rows], dataset.action[rows], [dataset.tasks[dataset.task_index[i]] for i in rows]
        )
    writer.finish({"action_space": dataset.action_space})
