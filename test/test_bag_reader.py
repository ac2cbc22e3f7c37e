"""Reading recorded episodes back: finding them, their series, and a clear error for every bad bag."""

from __future__ import annotations

import io
import struct
import subprocess

import numpy as np
import pytest
from bag_fixtures import EPOCH_NS, simulate, write_bag
from helpers import cli
from PIL import Image

from ros2_vla.config import load_robot_config
from ros2_vla.data.bag_reader import find_episodes, open_episode, read_messages
from ros2_vla.data.convert import convert_to_lerobot
from ros2_vla.data.episode import IMAGE, EpisodeMeta, episode_topics
from ros2_vla.data.series import COMPRESSED_IMAGE, read_series
from ros2_vla.data.typestore import typestore
from ros2_vla.errors import DatasetError

WRIST = "/camera/wrist/image_raw"


@pytest.fixture(scope="module")
def rec():
    """One second of a franka pick: joint states, two cameras, commands, chunks."""
    return simulate("franka", 5, "pick", time_limit=1.0)


@pytest.fixture
def bag(rec, tmp_path):
    return write_bag(tmp_path / "episode_0000", rec, EpisodeMeta(robot="franka", success=True))


def _mcap(bag_path):
    return next(bag_path.glob("*.mcap"))


def _convert_error(paths, out) -> str:
    with pytest.raises(DatasetError) as info:
        convert_to_lerobot(paths, out)
    assert not out.exists() and not list(out.parent.glob(f".{out.name}.*")), "a partial dataset was left behind"
    return str(info.value)


def test_find_episodes_takes_bags_and_folders_of_bags(rec, tmp_path):
    for name in ("episode_0001", "episode_0000", ".episode_tmp"):
        write_bag(tmp_path / "demos" / name, rec)
    (tmp_path / "demos" / "notes.txt").write_text("not a bag")
    assert [p.name for p in find_episodes([tmp_path / "demos"])] == ["episode_0000", "episode_0001"]
    assert find_episodes([tmp_path / "demos" / "episode_0001"]) == [tmp_path / "demos" / "episode_0001"]
    with pytest.raises(DatasetError, match="more than once"):
        find_episodes([tmp_path / "demos", tmp_path / "demos" / "episode_0000"])
    with pytest.raises(DatasetError, match="no such file"):
        find_episodes([tmp_path / "nowhere"])
    (tmp_path / "empty").mkdir()
    with pytest.raises(DatasetError, match="empty: neither a rosbag2 episode folder"):
        find_episodes([tmp_path / "empty"])


def _count(rec, topic):
    return sum(m[1] == topic for m in rec.messages)


def test_open_episode_gives_metadata_and_topics(rec, bag):
    opened = open_episode(bag)
    assert opened.meta.robot == "franka" and opened.meta.success is True
    assert opened.topics["/joint_states"] == "sensor_msgs/msg/JointState" and opened.topics[WRIST] == IMAGE
    assert (
        opened.counts["/joint_states"] == _count(rec, "/joint_states") > 100
        and opened.counts[WRIST] == _count(rec, WRIST) > 10
    )


def test_read_series_orders_the_state_and_keeps_gripper_commands(rec, bag):
    robot = load_robot_config("franka")
    series = read_series(open_episode(bag), robot)
    assert series.state_names == (*robot.joint_names, "fr3_finger_joint1")
    assert series.state.shape == (_count(rec, "/joint_states"), 8) and series.state_times[0] == 0.0
    np.testing.assert_allclose(series.state[0, :7], robot.arms[0].chain.home, atol=1e-3)
    assert series.cameras["wrist"].shape == (224, 224, 3) and series.cameras["wrist"].times.size == _count(rec, WRIST)
    commanded = series.grippers["arm"].at(np.array([-1.0, 0.5]))
    assert np.isnan(commanded[0]) and commanded[1] == pytest.approx(0.04)  # open, as the expert starts
    assert series.sim_tasks[0][1].startswith("pick up the ") and series.instructions == series.sim_tasks


def test_unclosed_recording_is_named(bag, tmp_path):
    (bag / "metadata.yaml").unlink()  # what a killed recorder leaves: the storage file alone
    message = _convert_error([bag], tmp_path / "out")
    assert str(bag) in message and "no metadata.yaml" in message and "closed" in message


def test_truncated_bag_is_named(bag, tmp_path):
    mcap = _mcap(bag)
    mcap.write_bytes(mcap.read_bytes()[: mcap.stat().st_size * 6 // 10])
    message = _convert_error([bag], tmp_path / "out")
    assert str(mcap) in message and "truncated or corrupted" in message


@pytest.mark.parametrize("where", ["first chunk", "summary"])
def test_overwritten_bytes_are_named(bag, tmp_path, where):
    mcap = _mcap(bag)
    data = bytearray(mcap.read_bytes())
    header_length = struct.unpack_from("<Q", data, 9)[0]  # magic (8), then the header record: opcode, length
    offset = 8 + 9 + header_length + 9 if where == "first chunk" else len(data) - 200
    data[offset : offset + 64] = b"\xff" * 64
    mcap.write_bytes(bytes(data))
    message = _convert_error([bag], tmp_path / "out")
    assert str(mcap) in message and "corrupted" in message


def test_missing_topics_are_named(rec, tmp_path):
    robot = load_robot_config("franka")
    no_wrist = write_bag(tmp_path / "a" / "episode_0000", rec, skip_topics=(WRIST,))
    message = _convert_error([no_wrist], tmp_path / "out")
    assert str(no_wrist) in message and f"missing required topic(s) ['{WRIST}']" in message
    no_states = write_bag(tmp_path / "b" / "episode_0000", rec, skip_topics=(robot.joint_states_topic,))
    assert "['/joint_states']" in _convert_error([no_states], tmp_path / "out")


def test_a_camera_without_frames_or_a_too_short_episode_has_no_frames(rec, tmp_path):
    silent = write_bag(
        tmp_path / "a" / "episode_0000",
        rec.__class__(rec.robot, rec.instruction, rec.success, [m for m in rec.messages if m[1] != WRIST]),
    )
    assert f"no messages on ['{WRIST}']" in _convert_error([silent], tmp_path / "out")
    short = write_bag(
        tmp_path / "b" / "episode_0000",
        rec.__class__(rec.robot, rec.instruction, rec.success, [m for m in rec.messages if m[0] < 0.05]),
    )
    message = _convert_error([short], tmp_path / "out")
    assert str(short) in message and "has no frames" in message


def test_episodes_of_different_robots_are_refused(bag, tmp_path):
    widowx = simulate("widowx", 0, "pick", time_limit=0.5, cameras=True)
    other = write_bag(tmp_path / "widowx" / "episode_0000", widowx, EpisodeMeta(robot="widowx"))
    message = _convert_error([bag, other], tmp_path / "out")
    assert "different robots" in message and str(other) in message and "widowx" in message


def test_compressed_camera_topic_is_accepted(rec, tmp_path):
    """A camera recorded as `<topic>/compressed` (jpeg), as `ros2 bag record` of image_transport gives."""
    T = typestore().types
    messages = []
    for t, topic, msg in rec.messages:
        if topic == WRIST:
            buf = io.BytesIO()
            Image.fromarray(np.frombuffer(msg.data, np.uint8).reshape(msg.height, msg.width, 3)).save(
                buf, "JPEG", quality=95
            )
            msg = T["sensor_msgs/msg/CompressedImage"](
                header=msg.header, format="rgb8; jpeg compressed bgr8", data=np.frombuffer(buf.getvalue(), np.uint8)
            )
            topic = WRIST + "/compressed"
        messages.append((t, topic, msg))
    topics = episode_topics(rec.robot, sim=True)
    topics[WRIST + "/compressed"] = COMPRESSED_IMAGE
    del topics[WRIST]
    bag = write_bag(
        tmp_path / "episode_0000", rec.__class__(rec.robot, rec.instruction, rec.success, messages), topics=topics
    )
    series = read_series(open_episode(bag), load_robot_config("franka"))
    assert series.cameras["wrist"].topic == WRIST + "/compressed" and series.cameras["wrist"].shape == (224, 224, 3)
    report = convert_to_lerobot([bag], tmp_path / "out")
    assert report.frames == 10


def test_messages_come_in_log_time_order(bag):
    times = [t for _, t, _ in read_messages(open_episode(bag), ["/joint_states", WRIST])]
    assert times == sorted(times) and times[0] == EPOCH_NS


def test_cli_names_the_bad_bag_in_one_line(bag, tmp_path):
    mcap = _mcap(bag)
    mcap.write_bytes(mcap.read_bytes()[:1000])
    result = subprocess.run(
        cli("convert", str(bag), "--to", "lerobot", str(tmp_path / "out")), capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 2 and result.stderr.count("\n") == 1
    assert result.stderr.startswith(f"ros2-vla: {mcap}: truncated or corrupted bag")
    assert not (tmp_path / "out").exists()


def test_a_bag_from_the_recorders_writer_converts(rec, tmp_path):
    """The recorder's own writer (queue, thread, metadata at close) makes bags the converter reads."""
    from ros2_vla.data.bag_writer import EpisodeBagWriter

    topics = episode_topics(rec.robot, sim=True)
    writer = EpisodeBagWriter(tmp_path / "demos", topics, queue_size=100_000)  # no drops in a burst
    for t, topic, msg in sorted(rec.messages, key=lambda m: m[0]):
        assert writer.write(topic, typestore().serialize_cdr(msg, topics[topic]), EPOCH_NS + int(round(t * 1e9)))
    writer.close(EpisodeMeta(robot="franka", success=True))
    report = convert_to_lerobot([tmp_path / "demos"], tmp_path / "out")
    assert report.episodes == 1 and report.frames == 10
