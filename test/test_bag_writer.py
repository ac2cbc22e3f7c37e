"""EpisodeBagWriter: one rosbag2 MCAP folder per episode, read back with the real `rosbags` reader."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
from helpers import ROOT
from rosbags.rosbag2 import Reader, ReaderError

from ros2_vla.data.bag_writer import EpisodeBagWriter, bag_qos, next_episode_dir
from ros2_vla.data.episode import IMAGE, STRING, EpisodeMeta, read_episode_meta
from ros2_vla.data.typestore import typestore
from ros2_vla.errors import ConfigError, RecordingError

TOPICS = {"/camera/scene/image_raw": IMAGE, "/vla/instruction": STRING}


def image_cdr(value: int, size: int = 4) -> bytes:
    store = typestore()
    t = store.types
    msg = t[IMAGE](
        header=t["std_msgs/msg/Header"](stamp=t["builtin_interfaces/msg/Time"](sec=1, nanosec=value), frame_id="scene"),
        height=size,
        width=size,
        encoding="rgb8",
        is_bigendian=0,
        step=3 * size,
        data=np.full(3 * size * size, value % 256, np.uint8),
    )
    return bytes(store.serialize_cdr(msg, IMAGE))


def string_cdr(text: str) -> bytes:
    store = typestore()
    return bytes(store.serialize_cdr(store.types[STRING](data=text), STRING))


def read_all(path):
    store = typestore()
    with Reader(path) as reader:
        return [(c.topic, t, store.deserialize_cdr(raw, c.msgtype)) for c, t, raw in reader.messages()]


def test_closed_episode_reads_back_with_rosbags_and_its_metadata(tmp_path):
    qos = {"/vla/instruction": bag_qos(reliable=True, transient_local=False, depth=10)}
    writer = EpisodeBagWriter(tmp_path, TOPICS, qos)
    for i in range(5):
        assert writer.write("/camera/scene/image_raw", image_cdr(i), 1_000 + i)
    writer.write("/vla/instruction", string_cdr("pick up the red cube"), 1_002)
    meta = writer.close(EpisodeMeta(robot="franka", instruction="pick up the red cube", success=True, seed=3))

    assert writer.path == tmp_path / "episode_0000"
    assert (writer.path / "episode_0000.mcap").is_file()
    messages = read_all(writer.path)
    images = [m for topic, _, m in messages if topic == "/camera/scene/image_raw"]
    assert [int(m.data[0]) for m in images] == [0, 1, 2, 3, 4] and images[0].encoding == "rgb8"
    assert [m.data for topic, _, m in messages if topic == "/vla/instruction"] == ["pick up the red cube"]
    assert sorted(t for _, t, _ in messages) == [1000, 1001, 1002, 1002, 1003, 1004]

    stored = read_episode_meta(writer.path)
    assert stored == meta
    assert stored.success is True and stored.seed == 3 and stored.robot == "franka"
    assert stored.message_counts == {"/camera/scene/image_raw": 5, "/vla/instruction": 1}
    assert stored.dropped == {"/camera/scene/image_raw": 0, "/vla/instruction": 0}
    assert (stored.start_ns, stored.stop_ns) == (1000, 1004)


def test_offered_qos_is_stored_for_playback(tmp_path):
    writer = EpisodeBagWriter(tmp_path, TOPICS, {"/vla/instruction": bag_qos(True, True, 1)})
    writer.close(EpisodeMeta(robot="franka"))
    with Reader(writer.path) as reader:
        qos = {c.topic: c.ext.offered_qos_profiles for c in reader.connections}
    assert qos["/camera/scene/image_raw"] == []
    assert qos["/vla/instruction"][0].durability.name == "TRANSIENT_LOCAL"
    assert qos["/vla/instruction"][0].reliability.name == "RELIABLE"


def test_episode_folders_are_numbered_and_never_reused(tmp_path):
    first = EpisodeBagWriter(tmp_path, TOPICS)
    second = EpisodeBagWriter(tmp_path, TOPICS)  # two open at once get different folders
    assert (first.path.name, second.path.name) == ("episode_0000", "episode_0001")
    first.close(EpisodeMeta(robot="franka"))
    second.discard()
    assert next_episode_dir(tmp_path).name == "episode_0001"  # a discarded last index is free again
    (tmp_path / "episode_0007").mkdir()  # an unclosed leftover keeps its name
    assert next_episode_dir(tmp_path).name == "episode_0008"


def test_discard_removes_the_folder_and_refuses_more_messages(tmp_path):
    writer = EpisodeBagWriter(tmp_path, TOPICS)
    writer.write("/vla/instruction", string_cdr("x"), 1)
    writer.discard()
    assert not writer.path.exists()
    assert writer.write("/vla/instruction", string_cdr("y"), 2) is False
    with pytest.raises(RecordingError, match="already closed or discarded"):
        writer.close(EpisodeMeta(robot="franka"))


def test_full_queue_drops_and_counts_instead_of_blocking(tmp_path):
    writer = EpisodeBagWriter(tmp_path, TOPICS, queue_size=2)
    frame = image_cdr(1, size=256)  # ~200 kB: the writer thread cannot keep up with a tight loop
    switch = sys.getswitchinterval()
    sys.setswitchinterval(1.0)  # keep the GIL here while queueing, so the queue surely fills
    try:
        accepted = [writer.write("/camera/scene/image_raw", frame, i) for i in range(50)]
    finally:
        sys.setswitchinterval(switch)
    meta = writer.close(EpisodeMeta(robot="franka"))
    written, dropped = meta.message_counts["/camera/scene/image_raw"], meta.dropped["/camera/scene/image_raw"]
    assert dropped > 0 and written + dropped == 50
    assert written == sum(accepted)
    assert len(read_all(writer.path)) == written


def test_a_blocking_writer_waits_for_room_and_loses_nothing(tmp_path):
    writer = EpisodeBagWriter(tmp_path, TOPICS, queue_size=2, block=True)  # the in-process recorder's
    frame = image_cdr(1, size=256)
    switch = sys.getswitchinterval()
    sys.setswitchinterval(1.0)  # as above: without blocking, this loop overfills the queue
    try:
        accepted = [writer.write("/camera/scene/image_raw", frame, i) for i in range(50)]
    finally:
        sys.setswitchinterval(switch)
    meta = writer.close(EpisodeMeta(robot="franka"))
    assert all(accepted) and meta.message_counts["/camera/scene/image_raw"] == 50
    assert meta.dropped["/camera/scene/image_raw"] == 0 and len(read_all(writer.path)) == 50


def test_a_named_episode_goes_to_its_folder_and_is_not_overwritten(tmp_path):
    writer = EpisodeBagWriter(tmp_path, TOPICS, name="episode_0007")
    assert writer.path == tmp_path / "episode_0007"
    writer.close(EpisodeMeta(robot="franka"))
    with pytest.raises(RecordingError, match="episode_0007"):
        EpisodeBagWriter(tmp_path, TOPICS, name="episode_0007")
    assert next_episode_dir(tmp_path).name == "episode_0008"


def test_upstream_gaps_count_as_dropped(tmp_path):
    writer = EpisodeBagWriter(tmp_path, TOPICS)
    writer.add_gaps("/vla/instruction", 3)
    writer.add_gaps("/not/recorded", 5)  # ignored: not a topic of this bag
    meta = writer.close(EpisodeMeta(robot="franka"))
    assert meta.dropped == {"/camera/scene/image_raw": 0, "/vla/instruction": 3}


def test_bad_arguments_name_the_thing(tmp_path):
    with pytest.raises(ConfigError, match="queue_size"):
        EpisodeBagWriter(tmp_path, TOPICS, queue_size=0)
    with pytest.raises(ConfigError, match="/foo"):
        EpisodeBagWriter(tmp_path, {"/foo": "nope_msgs/msg/Nothing"})
    writer = EpisodeBagWriter(tmp_path, TOPICS)
    with pytest.raises(ConfigError, match="/other"):
        writer.write("/other", b"", 0)
    writer.discard()


def test_a_killed_recording_is_refused_by_name_and_not_reused(tmp_path):
    # A process that dies mid-episode (SIGKILL, power loss) never writes metadata.yaml.
    script = (
        f"import os; from ros2_vla.data.bag_writer import EpisodeBagWriter\n"
        f"w = EpisodeBagWriter({str(tmp_path)!r}, {TOPICS!r})\n"
        f"[w.write('/vla/instruction', b'\\x00\\x01\\x00\\x00\\x02\\x00\\x00\\x00a\\x00', i) for i in range(10)]\n"
        f"os._exit(0)\n"
    )
    subprocess.run([sys.executable, "-c", script], check=True, cwd=ROOT)
    folder = tmp_path / "episode_0000"
    assert folder.is_dir() and not (folder / "metadata.yaml").exists()
    with pytest.raises(ConfigError, match="episode_0000.*was the recording closed"):
        read_episode_meta(folder)
    assert next_episode_dir(tmp_path).name == "episode_0001"


def test_a_truncated_bag_fails_to_read(tmp_path):
    writer = EpisodeBagWriter(tmp_path, TOPICS)
    for i in range(20):
        writer.write("/camera/scene/image_raw", image_cdr(i, size=64), i)
    writer.close(EpisodeMeta(robot="franka"))
    mcap = writer.path / "episode_0000.mcap"
    mcap.write_bytes(mcap.read_bytes()[: mcap.stat().st_size // 2])
    with pytest.raises(ReaderError, match="magic"):  # rosbags' error; the converter names the file
        read_all(writer.path)
