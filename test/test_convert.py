"""Recorded sim episodes (rosbag2 MCAP) -> LeRobot v3.0 dataset -> FrameDataset, and what must not happen."""

from __future__ import annotations

import dataclasses
import json
import shutil
import subprocess

import numpy as np
import pyarrow.parquet as pq
import pytest
from bag_fixtures import EPOCH_NS, image_msg, simulate, write_bag
from helpers import cli

from ros2_vla.actions.spaces import hold_dims
from ros2_vla.actions.targets import apply_ee_delta, pose_error
from ros2_vla.bringup import NAMES
from ros2_vla.config import load_robot_config
from ros2_vla.data.bag_reader import open_episode, read_messages
from ros2_vla.data.chunk_log import ChunkLog
from ros2_vla.data.convert import ConvertOptions, convert_to_lerobot
from ros2_vla.data.episode import EpisodeMeta
from ros2_vla.data.lerobot_reader import load_lerobot_dataset
from ros2_vla.data.series import decode_image
from ros2_vla.data.video import count_frames
from ros2_vla.errors import DatasetError
from ros2_vla.kinematics.model import ArmModel


@pytest.fixture(scope="module")
def franka(tmp_path_factory):
    """Three franka episodes: a successful pick (the gripper closes), one labelled failure, one unlabelled."""
    root = tmp_path_factory.mktemp("franka_bags")
    good = simulate("franka", 1, "pick", time_limit=7.0)
    assert good.success, "the expert should finish this pick within 7 s"
    write_bag(root / "episode_0000", good, EpisodeMeta(robot="franka", task="pick", success=True, seed=1))
    for i, (seed, label) in enumerate(((2, False), (3, None)), start=1):
        rec = simulate("franka", seed, "pick", time_limit=1.5)
        write_bag(root / f"episode_{i:04d}", rec, EpisodeMeta(robot="franka", task="pick", success=label, seed=seed))
    return root, good


@pytest.fixture(scope="module")
def dataset(franka, tmp_path_factory):
    root, _ = franka
    out = tmp_path_factory.mktemp("datasets") / "franka"
    report = convert_to_lerobot([root], out)
    return out, report


def _bag_states(bag_path, robot):
    """(times [s] after the episode's first message, (J, S) state) read straight from the bag."""
    bag = open_episode(bag_path)
    names = tuple(robot.joint_names) + tuple(a.gripper.joint for a in robot.arms if a.gripper)
    times, rows = [], []
    for _, t, msg in read_messages(bag, [robot.joint_states_topic]):
        times.append(t)
        rows.append([msg.position[list(msg.name).index(n)] for n in names])
    return np.array(times), np.array(rows)


def test_failures_are_skipped_unless_asked(franka, dataset, tmp_path):
    root, _ = franka
    _, report = dataset
    assert report.episodes == 2 and [p.name for p in report.skipped_failed] == ["episode_0001"]
    everything = convert_to_lerobot([root], tmp_path / "all", ConvertOptions(include_failed=True))
    assert everything.episodes == 3 and everything.skipped_failed == ()


def test_info_json_describes_the_dataset(dataset):
    out, report = dataset
    info = json.loads((out / "meta/info.json").read_text())
    assert info["codebase_version"] == "v3.0" and info["robot_type"] == "franka" and info["fps"] == 10
    assert (info["total_episodes"], info["total_frames"], info["total_tasks"]) == (2, report.frames, report.tasks)
    assert info["data_path"] == "data/chunk-{chunk_index:03d}/file-{file_index:03d}.parquet"
    assert info["video_path"] == "videos/{video_key}/chunk-{chunk_index:03d}/file-{file_index:03d}.mp4"
    assert info["splits"] == {"train": "0:2"} and info["chunks_size"] == 1000
    f = info["features"]
    assert f["action"] == {
        "dtype": "float32",
        "shape": [7],
        "names": ["x", "y", "z", "roll", "pitch", "yaw", "gripper"],
    }
    assert f["observation.state"]["shape"] == [8] and f["observation.state"]["names"][-1] == "fr3_finger_joint1"
    scene = f["observation.images.scene"]
    assert (
        scene["dtype"] == "video"
        and scene["shape"] == [224, 224, 3]
        and scene["names"] == ["height", "width", "channels"]
    )
    assert (
        scene["info"]["video.codec"] == "h264"
        and scene["info"]["video.pix_fmt"] == "yuv420p"
        and scene["info"]["video.fps"] == 10
    )
    for name in ("timestamp", "frame_index", "episode_index", "index", "task_index"):
        assert f[name]["shape"] == [1]


def test_parquet_files_have_lerobot_columns(dataset):
    out, report = dataset
    data = pq.read_table(out / "data/chunk-000/file-000.parquet")
    assert data.column_names == [
        "action",
        "observation.state",
        "timestamp",
        "frame_index",
        "episode_index",
        "index",
        "task_index",
    ]
    assert data.num_rows == report.frames and data.column("index").to_pylist() == list(range(report.frames))
    assert (
        pq.ParquetFile(out / "data/chunk-000/file-000.parquet").num_row_groups == 2
    )  # one per episode, as LeRobot writes
    episodes = pq.read_table(out / "meta/episodes/chunk-000/file-000.parquet").to_pylist()
    assert [e["episode_index"] for e in episodes] == [0, 1]
    assert (
        episodes[0]["dataset_from_index"] == 0 and episodes[1]["dataset_from_index"] == episodes[0]["dataset_to_index"]
    )
    assert episodes[1]["dataset_to_index"] == report.frames
    for e in episodes:
        assert e["length"] == e["dataset_to_index"] - e["dataset_from_index"]
        assert len(e["tasks"]) == 1 and e["tasks"][0].startswith("pick up the ")
        key = "videos/observation.images.wrist"
        assert e[f"{key}/to_timestamp"] - e[f"{key}/from_timestamp"] == pytest.approx(e["length"] / 10)
        assert e["stats/action/count"] == [e["length"]] and len(e["stats/action/q99"]) == 7
    assert episodes[1]["videos/observation.images.scene/from_timestamp"] == pytest.approx(episodes[0]["length"] / 10)
    tasks = pq.read_table(out / "meta/tasks.parquet")
    assert tasks.column_names == ["task_index", "__index_level_0__"]
    # pandas reads the text back as the (unnamed) index
    assert json.loads(tasks.schema.metadata[b"pandas"])["index_columns"] == ["__index_level_0__"]


def test_round_trip_frames_state_and_pixels(franka, dataset):
    root, _ = franka
    out, report = dataset
    data = load_lerobot_dataset(out)
    robot = load_robot_config("franka")
    assert len(data) == report.frames and data.num_episodes == 2 and data.cameras == ("scene", "wrist")
    assert data.action_space == "ee_delta" and data.fps == 10 and data.robot == "franka"
    assert data.tasks[data.task_index[0]] == "pick up the green cube"
    for cam in data.cameras:
        assert data.images[cam].shape == (len(data), 224, 224, 3)
        assert count_frames(out / f"videos/observation.images.{cam}/chunk-000/file-000.mp4") == len(data)
    # Episode 0's states are the bag's latest joint state at or before each 0.1 s instant.
    times, states = _bag_states(root / "episode_0000", robot)
    first = data.episode_index == 0
    t0 = times[0]  # the sim publishes joint states and both cameras from t = 0
    at = np.searchsorted(times, t0 + np.arange(first.sum()) * 100_000_000 + 1, side="right") - 1
    np.testing.assert_allclose(data.state[first], states[at], atol=1e-6)
    # Pixels survive H.264 at crf 18: frame k shows the bag's latest wrist frame at or before its instant.
    bag = open_episode(root / "episode_0000")
    wrist = [(t, decode_image(bag, topic, m)) for topic, t, m in read_messages(bag, ["/camera/wrist/image_raw"])]
    stamps = np.array([t for t, _ in wrist])
    for k in (0, 20, int(first.sum()) - 1):
        shown = wrist[np.searchsorted(stamps, t0 + k * 100_000_000 + 1, side="right") - 1][1]
        mse = np.mean((shown.astype(float) - data.images["wrist"][k].astype(float)) ** 2)
        assert 10 * np.log10(255**2 / max(mse, 1e-9)) > 35.0, f"frame {k}"


def test_ee_deltas_integrate_back_to_the_recorded_poses(dataset):
    out, _ = dataset
    data = load_lerobot_dataset(out, episodes=[0])
    arm = load_robot_config("franka").arms[0]
    model = ArmModel.from_arm(arm)
    poses = [model.fk(q[:7].astype(np.float64)) for q in data.state]
    T = poses[0]
    moved = 0.0
    for k in range(len(data) - 1):
        T = apply_ee_delta(T, data.action[k, :3], data.action[k, 3:6], "base")
        err = pose_error(T, poses[k + 1])
        assert err.position < 1e-5 and err.rotation < 1e-5, f"step {k}: {err}"
        moved = max(moved, pose_error(poses[0], poses[k + 1]).position)
    assert moved > 0.1  # the expert really moved the arm


def test_gripper_action_is_the_commanded_close(franka, dataset):
    _, good = franka
    out, _ = dataset
    data = load_lerobot_dataset(out, episodes=[0])
    gripper = data.action[:, -1]
    assert set(np.unique(gripper)) == {0.0, 1.0}  # binarized: franka's policy convention, 1 = open
    # The expert's own chunk value for each frame's step (its chunks are recorded on /vla/action_chunk too).
    chunk_times = np.array([t for t, _ in good.chunks])
    expert = []
    for t in np.arange(len(data)) / data.fps:
        tc, values = good.chunks[np.searchsorted(chunk_times, t + 1e-9, side="right") - 1]
        expert.append(values[min(int(round((t - tc) / 0.1)), len(values) - 1), -1])
    closes = np.flatnonzero(gripper < 0.5)
    assert np.mean(np.array(expert) == gripper) > 0.95
    assert (
        abs(closes[0] - np.flatnonzero(np.array(expert) < 0.5)[0]) <= 1
    )  # labelled closed within a step of the decision


def test_stats_cover_every_frame(dataset):
    out, report = dataset
    data = load_lerobot_dataset(out)
    stats = json.loads((out / "meta/stats.json").read_text())
    a = stats["action"]
    assert a["count"] == [report.frames]
    np.testing.assert_allclose(a["mean"], data.action.mean(axis=0), atol=1e-6)
    np.testing.assert_allclose(a["std"], data.action.std(axis=0), atol=1e-6)
    np.testing.assert_allclose(a["q01"], np.quantile(data.action, 0.01, axis=0), atol=1e-6)
    np.testing.assert_allclose(a["q99"], np.quantile(data.action, 0.99, axis=0), atol=1e-6)
    np.testing.assert_allclose(stats["observation.state"]["max"], data.state.max(axis=0), atol=1e-6)
    assert np.array(stats["observation.images.scene"]["mean"]).shape == (3, 1, 1)
    assert (
        0.0
        <= np.min(stats["observation.images.scene"]["min"])
        <= np.max(stats["observation.images.scene"]["max"])
        <= 1.0
    )
    assert set(data.stats["action"]) >= {"mean", "std", "min", "max", "q01", "q99"}


def test_resize_on_load(dataset):
    out, _ = dataset
    data = load_lerobot_dataset(out, image_size=(112, 96), episodes=[1])
    assert data.images["scene"].shape == (len(data), 112, 96, 3) and set(data.episode_index) == {1}


def test_aloha_actions_are_the_next_joint_positions(tmp_path):
    rec = simulate("aloha", 0, "", time_limit=1.0)
    write_bag(tmp_path / "bags" / "episode_0000", rec, EpisodeMeta(robot="aloha", success=None))
    convert_to_lerobot([tmp_path / "bags"], tmp_path / "aloha")
    data = load_lerobot_dataset(tmp_path / "aloha")
    robot = load_robot_config("aloha")
    assert data.fps == 50 and data.action_space == "joint_position" and data.action.shape[1] == 14
    names = list(robot.action.dimension_names)
    state_names = list(robot.joint_names) + ["left_gripper", "right_gripper"]
    joints = [n for n in names if n in robot.joint_names]
    np.testing.assert_array_equal(
        data.action[:-1, [names.index(n) for n in joints]], data.state[1:, [state_names.index(n) for n in joints]]
    )
    grip = data.action[:, [names.index("left_gripper"), names.index("right_gripper")]]
    assert np.all((grip >= 0) & (grip <= 1)) and grip[0, 0] == pytest.approx(1.0, abs=0.05)  # open at the start


def test_existing_output_is_refused_then_replaced_with_overwrite(franka, tmp_path):
    root, _ = franka
    out = tmp_path / "ds"
    out.mkdir()
    (out / "keep.txt").write_text("mine")
    with pytest.raises(DatasetError, match="not empty; pass --overwrite"):
        convert_to_lerobot([root / "episode_0002"], out)
    assert (out / "keep.txt").read_text() == "mine"
    convert_to_lerobot([root / "episode_0002"], out, ConvertOptions(overwrite=True))
    assert not (out / "keep.txt").exists() and (out / "meta/info.json").is_file()
    assert [p.name for p in tmp_path.iterdir()] == ["ds"]  # no partial or old folder left beside it


def test_a_failure_while_writing_leaves_nothing_behind(franka, tmp_path):
    """A frame of another size in the second episode is found only while its video is written."""
    root, _ = franka
    bad = simulate("franka", 4, "pick", time_limit=1.0)
    i = [i for i, (_, topic, _) in enumerate(bad.messages) if topic == "/camera/scene/image_raw"][5]
    t, topic, _ = bad.messages[i]
    bad.messages[i] = (t, topic, image_msg(t, np.zeros((112, 112, 3), np.uint8)))
    write_bag(tmp_path / "bags" / "episode_0001", bad, EpisodeMeta(robot="franka"))
    shutil.copytree(root / "episode_0002", tmp_path / "bags" / "episode_0000")
    with pytest.raises(DatasetError, match="episode_0001: a frame on /camera/scene/image_raw is 112x112"):
        convert_to_lerobot([tmp_path / "bags"], tmp_path / "out")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bags"]


def test_cli_converts_and_reports_errors_in_one_line(franka, tmp_path):
    root, _ = franka
    ok = subprocess.run(
        cli("convert", str(root / "episode_0002"), "--to", "lerobot", str(tmp_path / "ds")),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert ok.returncode == 0, ok.stderr
    assert "wrote" in ok.stdout and (tmp_path / "ds/meta/info.json").is_file()
    again = subprocess.run(
        cli("convert", str(root / "episode_0002"), "--to", "lerobot", str(tmp_path / "ds")),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert again.returncode == 2 and again.stderr.count("\n") == 1
    assert again.stderr.startswith("ros2-vla: ") and "--overwrite" in again.stderr
    only_failed = subprocess.run(
        cli("convert", str(root / "episode_0001"), "--to", "lerobot", str(tmp_path / "x")),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert (
        only_failed.returncode == 2 and "--include-failed" in only_failed.stderr and only_failed.stderr.count("\n") == 1
    )


def _expert_stream(good, times):
    """The expert's chunk step under way at each sim time [s], worked out here from what it published."""
    chunk_times = np.array([t for t, _ in good.chunks])
    rows = []
    for t in times:
        tc, values = good.chunks[max(np.searchsorted(chunk_times, t + 1e-9, side="right") - 1, 0)]
        step = max(int(np.floor((t - tc) / good.robot.action.dt + 1e-9)), 0)
        rows.append(values[step] if step < len(values) else np.r_[np.zeros(6), values[-1, -1]])
    return np.array(rows)


def test_commanded_labels_are_the_chunk_steps_the_bridge_played(franka, tmp_path):
    root, good = franka
    out = tmp_path / "commanded"
    convert_to_lerobot([root / "episode_0000"], out, ConvertOptions(labels="commanded"))
    extras = json.loads((out / "meta/ros2_vla.json").read_text())
    assert extras["action_labels"] == "commanded"
    data = load_lerobot_dataset(out)
    t0 = (extras["episodes"][0]["start_ns"] - EPOCH_NS) / 1e9  # frame 0's instant on the sim clock
    expected = _expert_stream(good, t0 + np.arange(len(data)) / data.fps)
    np.testing.assert_allclose(data.action, expected, atol=1e-6)
    # Commanded steps are the expert's straight lines: steady where the measured motion lags and stops.
    measured = load_lerobot_dataset(convert_to_lerobot([root / "episode_0000"], tmp_path / "measured").out)
    jerk = lambda a: np.median(np.linalg.norm(np.diff(a[:, :3], axis=0), axis=1))  # noqa: E731
    assert jerk(data.action) < 0.5 * jerk(measured.action)
    # Both point where the arm went over the episode; the commands run ahead of the motion, as the
    # bridge's velocity and acceleration limits and the servo make the arm lag them.
    c, m = data.action[:, :3].sum(axis=0), measured.action[:, :3].sum(axis=0)
    assert c @ m / (np.linalg.norm(c) * np.linalg.norm(m)) > 0.95
    assert 0.8 < np.linalg.norm(c) / np.linalg.norm(m) < 1.6


def test_commanded_labels_need_chunks_the_robot_can_play(franka, tmp_path):
    _, good = franka
    write_bag(tmp_path / "none" / "episode_0000", good, skip_topics=(NAMES.action_chunk,))
    with pytest.raises(DatasetError, match="no action chunks .* --labels measured"):
        convert_to_lerobot([tmp_path / "none"], tmp_path / "out", ConvertOptions(labels="commanded"))
    convert_to_lerobot([tmp_path / "none"], tmp_path / "out")  # measured labels need no chunks
    in_ee = lambda msg: dataclasses.replace(msg, header=dataclasses.replace(msg.header, frame_id="ee"))  # noqa: E731
    ee = [(t, topic, in_ee(msg) if topic == NAMES.action_chunk else msg) for t, topic, msg in good.messages]
    write_bag(tmp_path / "ee" / "episode_0000", dataclasses.replace(good, messages=ee))
    with pytest.raises(DatasetError, match=r"episode_0000: /vla/action_chunk: a chunk in ee_delta \(frame 'ee'"):
        convert_to_lerobot([tmp_path / "ee"], tmp_path / "out2", ConvertOptions(labels="commanded"))
    assert not (tmp_path / "out2").exists()


def test_chunk_log_replaces_holds_and_starts_at_the_first_decision():
    robot = load_robot_config("franka")
    a = np.arange(3 * 7, dtype=np.float64).reshape(3, 7) + 1.0  # steps 0..2, gripper last
    b = -np.ones((3, 7))
    log = ChunkLog(
        receipt=np.array([0.52, 0.82]),
        start=np.array([0.5, 0.8]),
        actions=(a, b),
        dt=0.1,
        hold_motion=~hold_dims(robot.action.space, robot.action.dimension_names),
    )
    got = log.at(np.array([0.0, 0.5, 0.65, 0.75, 0.81, 0.85, 1.1, 1.3]))
    np.testing.assert_array_equal(got[0], a[0])  # before any chunk: the first one's step 0
    np.testing.assert_array_equal(got[1:4], a)  # step k from stamp + k dt
    np.testing.assert_array_equal(got[4], np.r_[np.zeros(6), a[-1, -1]])  # past its end: hold, gripper kept
    np.testing.assert_array_equal(got[5], b[0])  # the newer chunk has arrived
    np.testing.assert_array_equal(got[6:], np.tile(np.r_[np.zeros(6), b[-1, -1]], (2, 1)))
