"""One episode written to its own rosbag2 (MCAP) folder, off the caller's thread.

The caller (recorder_node's subscription callbacks) hands over CDR bytes and a receive time; a
bounded queue carries them to one writer thread, so a slow disk never stalls the ROS executor.
When the queue is full the message is dropped and counted, never blocks: the count ends up in the
episode's metadata (`EpisodeMeta.dropped`), next to the messages written per topic.

    writer = EpisodeBagWriter("out/demos", {"/joint_states": "sensor_msgs/msg/JointState"})
    writer.write("/joint_states", cdr_bytes, t_ns)
    writer.close(EpisodeMeta(robot="franka", success=True))   # or writer.discard()

`close` drains the queue, writes the metadata into rosbag2's custom_data (episode.CUSTOM_DATA_KEY),
writes metadata.yaml and fsyncs, so a closed episode is complete on disk. A folder without
metadata.yaml is an episode that was never closed (the process was killed): readers refuse it
(`read_episode_meta`) and new episodes never reuse its name.
"""

from __future__ import annotations

import os
import queue
import re
import shutil
import threading
import time
from collections.abc import Mapping
from pathlib import Path

from rosbags.interfaces import Connection, Qos, QosDurability, QosHistory, QosLiveliness, QosReliability, QosTime
from rosbags.rosbag2 import StoragePlugin, Writer, WriterError

from ros2_vla.data.episode import CUSTOM_DATA_KEY, EpisodeMeta
from ros2_vla.data.typestore import typestore
from ros2_vla.errors import ConfigError, RecordingError
from ros2_vla.parameters import RECORDER_QUEUE_SIZE

EPISODE_PREFIX = "episode_"
_EPISODE_RE = re.compile(rf"^{EPISODE_PREFIX}(\d+)$")
_STOP = object()


def next_episode_dir(out: str | Path) -> Path:
    """OUT/episode_NNNN, one past the highest existing index (closed or not), so names never repeat."""
    out = Path(out)
    used = (
        [int(m.group(1)) for p in out.glob(f"{EPISODE_PREFIX}*") if (m := _EPISODE_RE.match(p.name))]
        if out.is_dir()
        else []
    )
    return out / f"{EPISODE_PREFIX}{max(used, default=-1) + 1:04d}"


def bag_qos(reliable: bool, transient_local: bool, depth: int) -> Qos:
    """A rosbag2 offered-QoS entry, so `ros2 bag play` republishes a topic as it was offered."""
    zero = QosTime(0, 0)
    return Qos(
        QosHistory.KEEP_LAST,
        depth,
        QosReliability.RELIABLE if reliable else QosReliability.BEST_EFFORT,
        QosDurability.TRANSIENT_LOCAL if transient_local else QosDurability.VOLATILE,
        zero,
        zero,
        QosLiveliness.AUTOMATIC,
        zero,
        False,
    )


class EpisodeBagWriter:
    """An open episode bag: `write` from any thread, then `close(meta)` or `discard()` once."""

    def __init__(
        self,
        out: str | Path,
        topics: Mapping[str, str],
        qos: Mapping[str, Qos] | None = None,
        queue_size: int = RECORDER_QUEUE_SIZE,
        *,
        name: str = "",
        block: bool = False,
    ) -> None:
        """`topics`: topic -> message type ("sensor_msgs/msg/Image"); `qos`: topic -> offered QoS.
        name: the episode folder's name in `out` (refused if it exists; default: the next free index).
        block: `write` waits for room in a full queue instead of dropping (a producer that can wait: the
        in-process recorder)."""
        if queue_size < 1:
            raise ConfigError(f"recorder queue_size must be >= 1, got {queue_size}")
        store = typestore()
        unknown = sorted(t for t, msgtype in topics.items() if msgtype not in store.fielddefs)
        if unknown:
            raise ConfigError(f"cannot record {unknown}: message types not in the bag type store; run scripts/setup")
        self._writer, self.path = self._open(Path(out), name)
        try:
            self._connections: dict[str, Connection] = {
                topic: self._writer.add_connection(
                    topic, msgtype, typestore=store, offered_qos_profiles=[qos[topic]] if qos and topic in qos else []
                )
                for topic, msgtype in topics.items()
            }
        except Exception:
            self._writer.abort()
            shutil.rmtree(self.path, ignore_errors=True)
            raise
        self.written = dict.fromkeys(topics, 0)  # topic -> messages in the bag
        self.queue_dropped = dict.fromkeys(topics, 0)  # topic -> lost here: full queue or a failed write
        self.gaps = dict.fromkeys(topics, 0)  # topic -> lost before they reached us (add_gaps)
        self.first_ns: int | None = None  # [ns] timestamps of the first and last message written
        self.last_ns: int | None = None
        self._queue: queue.Queue = queue.Queue(maxsize=queue_size)
        self._block = block
        self._lock = threading.Lock()  # `write` vs `close`/`discard` from another thread
        self._open_for_writes = True
        self._discarding = False
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._drain, name=f"bag:{self.path.name}", daemon=True)
        self._thread.start()

    @staticmethod
    def _open(out: Path, name: str = "") -> tuple[Writer, Path]:
        out.mkdir(parents=True, exist_ok=True)
        if name:
            try:
                writer = Writer(out / name, version=9, storage_plugin=StoragePlugin.MCAP)
                writer.open()
            except WriterError as exc:
                raise RecordingError(f"cannot create episode {out / name}: {exc}") from exc
            return writer, out / name
        for _ in range(100):  # another recorder may take the same index between glob and mkdir
            path = next_episode_dir(out)
            writer = Writer(path, version=9, storage_plugin=StoragePlugin.MCAP)
            try:
                writer.open()
                return writer, path
            except WriterError:
                if not path.exists():
                    raise
        raise RecordingError(f"{out}: could not create a new episode folder")

    # --- the caller's side --------------------------------------------------------------------
    def write(self, topic: str, data: bytes | memoryview, t_ns: int) -> bool:
        """Queue one CDR message received at `t_ns` [ns]. False when it was dropped (queue full, closed)."""
        with self._lock:
            if not self._open_for_writes:
                return False
            if topic not in self._connections:
                raise ConfigError(f"topic {topic!r} is not in this episode's bag; known: {sorted(self._connections)}")
            try:
                self._queue.put((topic, t_ns, data), block=self._block)  # blocking: the drain thread takes no lock
                return True
            except queue.Full:
                self.queue_dropped[topic] += 1
                return False

    def add_gaps(self, topic: str, n: int) -> None:
        """Count `n` messages of `topic` lost upstream (publisher sequence gaps)."""
        if n > 0 and topic in self.gaps:
            self.gaps[topic] += n

    @property
    def dropped(self) -> dict[str, int]:
        """Topic -> messages lost: queue overflow plus upstream gaps."""
        return {t: self.queue_dropped[t] + self.gaps[t] for t in self.written}

    @property
    def pending(self) -> int:
        return self._queue.qsize()

    def close(self, meta: EpisodeMeta) -> EpisodeMeta:
        """Write what is queued, store `meta` (counts filled in) in the bag, close and fsync it.

        Returns the meta as stored. Raises RecordingError when a write failed (the bag is still
        closed and readable up to the failure)."""
        self._stop(discard=False)
        meta.message_counts = dict(self.written)
        meta.dropped = self.dropped
        meta.start_ns = meta.start_ns or (self.first_ns or time.time_ns())
        meta.stop_ns = meta.stop_ns or (self.last_ns or meta.start_ns)
        self._writer.set_custom_data(CUSTOM_DATA_KEY, meta.to_json())
        self._writer.close()
        _fsync_folder(self.path)
        if self._error is not None:
            raise RecordingError(
                f"{self.path}: writing failed after {sum(self.written.values())} messages: {self._error}"
            )
        return meta

    def discard(self) -> None:
        """Throw the episode away: nothing more is written and its folder is removed."""
        self._stop(discard=True)
        self._writer.abort()
        shutil.rmtree(self.path, ignore_errors=True)

    def _stop(self, discard: bool) -> None:
        with self._lock:
            if not self._open_for_writes:
                raise RecordingError(f"{self.path}: episode already closed or discarded")
            self._open_for_writes = False
            self._discarding = discard
        self._queue.put(_STOP)  # blocks only while the thread drains a full queue
        self._thread.join()

    # --- the writer thread --------------------------------------------------------------------
    def _drain(self) -> None:
        while (item := self._queue.get()) is not _STOP:
            topic, t_ns, data = item
            if self._discarding:
                continue
            if self._error is not None:
                self.queue_dropped[topic] += 1
                continue
            try:
                self._writer.write(self._connections[topic], t_ns, data)
            except Exception as exc:  # disk full, I/O error: keep the bag closable, report at close
                self._error = exc
                self.queue_dropped[topic] += 1
                continue
            self.written[topic] += 1
            self.first_ns = t_ns if self.first_ns is None else min(self.first_ns, t_ns)
            self.last_ns = t_ns if self.last_ns is None else max(self.last_ns, t_ns)


def _fsync_folder(path: Path) -> None:
    """Push the bag's files and their directory entries to the disk."""
    for f in path.iterdir():
        fd = os.open(f, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
