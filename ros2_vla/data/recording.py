"""The recorder's state between episodes, without ROS: what recorder_node's callbacks and services call.

    rec = EpisodeRecorder("out/demos", episode_topics(robot, sim=True), sim=True)
    rec.on_message(topic, cdr_bytes, t_ns, publisher=gid, sequence=seq)   # every message, always
    rec.start(t_ns)                                                        # opens OUT/episode_NNNN
    meta = rec.stop(EpisodeMeta(robot="franka"), success=True, t_ns=...)  # closed bag, counts filled

Messages are only written while an episode is open, except that the latest message of each
`carry_over` topic (the instruction and the task in force) opens every episode, stamped at its
start, so each bag holds its own instruction even when it was published long before. Publisher sequence
numbers (where the middleware gives them) are followed all the time, so a gap during an episode counts as messages
lost before they reached the recorder (`EpisodeMeta.dropped`), next to those lost to a full queue.
"""

from __future__ import annotations

import time
from collections.abc import Hashable, Iterable, Mapping
from pathlib import Path

from rosbags.interfaces import Qos

from ros2_vla.data.bag_writer import EpisodeBagWriter
from ros2_vla.data.episode import EpisodeMeta
from ros2_vla.errors import RecordingError
from ros2_vla.parameters import RECORDER_QUEUE_SIZE


class SequenceGaps:
    """Messages missed per publisher, from each publisher's increasing sequence numbers."""

    def __init__(self) -> None:
        self._last: dict[Hashable, int] = {}

    def observe(self, publisher: Hashable, sequence: int) -> int:
        """How many messages of `publisher` were skipped before `sequence` (0 for its first one)."""
        last = self._last.get(publisher)
        if last is None or sequence <= last:  # new publisher, or a repeat/reordered sample
            self._last[publisher] = max(sequence, last or 0)
            return 0
        self._last[publisher] = sequence
        return sequence - last - 1


class EpisodeRecorder:
    """Idle or recording one episode; counts, instruction and the sim's success verdict per episode."""

    def __init__(
        self,
        output_dir: str | Path,
        topics: Mapping[str, str],
        qos: Mapping[str, Qos] | None = None,
        queue_size: int = RECORDER_QUEUE_SIZE,
        sim: bool = False,
        carry_over: Iterable[str] = (),
        block: bool = False,
    ) -> None:
        self.output_dir = Path(output_dir).expanduser()
        self.topics = dict(topics)  # topic -> message type, as written to every episode
        self.qos = dict(qos or {})
        self.queue_size = queue_size
        self.sim = sim
        self.block = block  # writes wait for a full queue instead of dropping (EpisodeBagWriter)
        self.instruction = ""  # latest on /vla/instruction or /sim/task
        self.sim_success = False  # /sim/success was true at some point of the current episode
        self.episodes_written = 0
        self.last_episode: Path | None = None
        self._writer: EpisodeBagWriter | None = None
        self._start_ns = 0
        self._started_at = 0.0  # [s] monotonic, for the status
        self._gaps: dict[str, SequenceGaps] = {t: SequenceGaps() for t in self.topics}
        self._latest: dict[str, bytes] = {}  # carry_over topic -> its last message
        self._carry_over = set(carry_over) & set(self.topics)

    @property
    def recording(self) -> bool:
        return self._writer is not None

    @property
    def episode(self) -> Path | None:
        """The folder of the episode being recorded."""
        return self._writer.path if self._writer else None

    # --- messages -----------------------------------------------------------------------------
    def on_message(
        self, topic: str, data: bytes, t_ns: int, publisher: Hashable | None = None, sequence: int | None = None
    ) -> None:
        """One message as received: CDR bytes, receive time [ns], and its publisher's sequence number if known."""
        missed = self._gaps[topic].observe(publisher, sequence) if sequence is not None and topic in self._gaps else 0
        if topic in self._carry_over:
            self._latest[topic] = data
        writer = self._writer
        if writer is not None:
            writer.add_gaps(topic, missed)
            writer.write(topic, data, t_ns)

    def note_instruction(self, text: str) -> None:
        self.instruction = text

    def note_sim_success(self, success: bool) -> None:
        if self.recording:
            self.sim_success = self.sim_success or success

    # --- episodes -----------------------------------------------------------------------------
    def start(self, t_ns: int | None = None, name: str = "") -> Path:
        """Open a new episode folder (`name`, or the next free index); RecordingError while one is open."""
        if self._writer is not None:
            raise RecordingError(f"already recording {self._writer.path}; stop or discard it first")
        self._writer = EpisodeBagWriter(
            self.output_dir, self.topics, self.qos, self.queue_size, name=name, block=self.block
        )
        self._start_ns = t_ns if t_ns is not None else time.time_ns()
        for topic, data in self._latest.items():
            self._writer.write(topic, data, self._start_ns)
        self._started_at = time.monotonic()
        self.sim_success = False
        return self._writer.path

    def stop(self, meta: EpisodeMeta, success: bool | None, t_ns: int | None = None) -> EpisodeMeta:
        """Close the episode with `meta` (robot, task, notes...) completed here; returns what was stored."""
        writer = self._take_writer("stop")
        meta.success = success
        meta.instruction = meta.instruction or self.instruction
        meta.sim_success = self.sim_success if self.sim else None
        meta.start_ns = self._start_ns
        meta.stop_ns = t_ns if t_ns is not None else time.time_ns()
        self.last_episode = writer.path
        meta = writer.close(meta)
        self.episodes_written += 1
        return meta

    def discard(self) -> Path:
        """Drop the episode being recorded and delete its folder; returns the folder it was."""
        writer = self._take_writer("discard")
        writer.discard()
        return writer.path

    def _take_writer(self, verb: str) -> EpisodeBagWriter:
        if self._writer is None:
            raise RecordingError(f"nothing to {verb}: no episode is being recorded")
        writer, self._writer = self._writer, None
        return writer

    def status(self) -> dict:
        """A JSON-able summary: state, episode, elapsed [s], messages and drops (total and per topic)."""
        w = self._writer
        out = {
            "state": "recording" if w else "idle",
            "episodes_written": self.episodes_written,
            "instruction": self.instruction,
        }
        if w is not None:
            dropped = w.dropped
            out.update(
                episode=str(w.path),
                elapsed_s=round(time.monotonic() - self._started_at, 1),
                messages=sum(w.written.values()),
                dropped=sum(dropped.values()),
                pending=w.pending,
                topics={t: {"written": w.written[t], "dropped": dropped[t]} for t in self.topics},
            )
            if self.sim:
                out["sim_success"] = self.sim_success
        elif self.last_episode is not None:
            out["last_episode"] = str(self.last_episode)
        return out


def episode_summary(path: Path | None, meta: EpisodeMeta) -> dict:
    """What a closed episode is, in a line's worth: its folder and headline figures (recorder_node's stop answer)."""
    return {
        "episode": str(path),
        "success": meta.success,
        "sim_success": meta.sim_success,
        "instruction": meta.instruction,
        "messages": sum(meta.message_counts.values()),
        "dropped": sum(meta.dropped.values()),
        "seconds": round((meta.stop_ns - meta.start_ns) * 1e-9, 2),
    }
