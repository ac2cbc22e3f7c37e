"""Datasets LeRobot can merge: the package's writer against what LeRobot 0.4.4's own writer produces for
the same frames (lerobot_reference.py, from LeRobot's source): info.json field by field and in order, and
videos whose decode timestamps concatenate with LeRobot-encoded ones in either order, for both codecs."""

from __future__ import annotations

import json

import numpy as np
import pyarrow.parquet as pq
import pytest
from lerobot_reference import (
    concatenate,
    data_types,
    decode_timestamps,
    encode,
    episode_types,
    hf_features,
    info_json,
    vector_feature,
    video_feature,
)

from ros2_vla.data.lerobot_writer import LeRobotWriter
from ros2_vla.data.video import VideoSettings

FPS = 10
STATE = ["j1", "j2", "gripper"]
ACTION = ["x", "y", "gripper"]
CAMERAS = {"scene": (48, 64), "wrist": (32, 48)}
LENGTHS = (12, 9)


def _frames(camera: str, n: int, seed: int) -> list[np.ndarray]:
    h, w = CAMERAS[camera]
    rng = np.random.default_rng(seed)
    base = rng.integers(0, 256, (h, w, 3), np.uint8)
    return [np.roll(base, 2 * k, axis=1) for k in range(n)]  # moving content: real P/B frames


def _write(folder, codec: str) -> None:
    writer = LeRobotWriter(
        folder, fps=FPS, robot_type="test_arm", state_names=STATE, action_names=ACTION, cameras=CAMERAS,
        video=VideoSettings(codec=codec),
    )  # fmt: skip
    for e, n in enumerate(LENGTHS):
        writer.start_episode(length=n)
        for cam in CAMERAS:
            for rgb in _frames(cam, n, seed=e):
                writer.write_frame(cam, rgb)
        writer.end_episode(np.zeros((n, len(STATE))), np.zeros((n, len(ACTION))), ["pick up the cube"] * n)
    writer.finish({})


@pytest.fixture(scope="module", params=["h264", "av1"])
def written(request, tmp_path_factory):
    folder = tmp_path_factory.mktemp(f"lerobot_{request.param}") / "ds"
    _write(folder, request.param)
    return request.param, folder


def _video(folder, cam: str):
    return folder / f"videos/observation.images.{cam}/chunk-000/file-000.mp4"


def test_info_json_is_what_lerobots_writer_writes(written):
    codec, folder = written
    ours = json.loads((folder / "meta/info.json").read_text())
    features = {"action": vector_feature(ACTION), "observation.state": vector_feature(STATE)}
    features |= {f"observation.images.{c}": video_feature(_video(folder, c)) for c in CAMERAS}
    reference = info_json(FPS, "test_arm", features, len(LENGTHS), sum(LENGTHS), 1)
    assert ours == reference
    assert list(ours) == list(reference) and list(ours["features"]) == list(reference["features"])
    for key, feature in reference["features"].items():
        assert list(ours["features"][key]) == list(feature), key
        if "info" in feature:
            assert list(ours["features"][key]["info"]) == list(feature["info"]), key
    assert ours["features"]["observation.images.scene"]["info"]["video.codec"] == codec


def test_parquet_files_are_typed_as_lerobots(written):
    """Data: the non-video features in order, fixed-size float32 lists, datasets' Features as metadata;
    episodes: the columns LeRobot's metadata buffer gets, in order, as pyarrow types them; tasks: the
    text as pandas' unnamed index."""
    _, folder = written
    features = json.loads((folder / "meta/info.json").read_text())["features"]
    data = pq.read_schema(folder / "data/chunk-000/file-000.parquet")
    assert {n: str(data.field(n).type) for n in data.names} == data_types(features)
    assert data.names == list(data_types(features))
    assert json.loads(data.metadata[b"huggingface"])["info"]["features"] == hf_features(features)
    episodes = pq.read_schema(folder / "meta/episodes/chunk-000/file-000.parquet")
    assert [(n, str(episodes.field(n).type)) for n in episodes.names] == list(episode_types(features).items())
    tasks = pq.read_schema(folder / "meta/tasks.parquet")
    assert tasks.names == ["task_index", "__index_level_0__"] and str(tasks.field("task_index").type) == "int64"
    assert json.loads(tasks.metadata[b"pandas"])["index_columns"] == ["__index_level_0__"]


@pytest.mark.parametrize("order", ["ours first", "lerobot first"])
def test_videos_concatenate_with_lerobot_encoded_ones_in_either_order(written, tmp_path, order):
    """What aggregate_datasets does with two datasets' files: libavformat's concat demuxer into one mp4,
    whose decode timestamps must keep increasing (PyAV raises "non monotonically increasing dts")."""
    codec, folder = written
    ours = _video(folder, "scene")
    theirs = encode(_frames("scene", 10, seed=7), FPS, codec, tmp_path / "lerobot.mp4")
    assert decode_timestamps(theirs)[0] == decode_timestamps(ours)[0]  # the same start: -1 frame (h264) or 0
    first, second = (ours, theirs) if order == "ours first" else (theirs, ours)
    warnings = concatenate(first, second, tmp_path / "merged.mp4")
    assert "monoton" not in warnings.lower(), warnings
    dts = decode_timestamps(tmp_path / "merged.mp4")
    assert len(dts) == sum(LENGTHS) + 10 and all(b > a for a, b in zip(dts, dts[1:]))


def test_the_old_encoding_would_not_merge_after_lerobots(tmp_path):
    """Why the h264 files have one B-frame: without, LeRobot's file after ours goes backwards in DTS."""
    frames = _frames("scene", 10, seed=1)
    theirs = encode(frames, FPS, "h264", tmp_path / "lerobot.mp4")
    folder = tmp_path / "ds"
    writer = LeRobotWriter(
        folder, fps=FPS, robot_type="test_arm", state_names=STATE, action_names=ACTION,
        cameras={"scene": CAMERAS["scene"]}, video=VideoSettings(bframes=0),
    )  # fmt: skip
    writer.start_episode(length=10)
    for rgb in frames:
        writer.write_frame("scene", rgb)
    writer.end_episode(np.zeros((10, 3)), np.zeros((10, 3)), ["t"] * 10)
    writer.finish({})
    warnings = concatenate(_video(folder, "scene"), theirs, tmp_path / "merged.mp4")
    assert "monoton" in warnings.lower(), warnings


def test_each_codec_decodes_back_to_the_frames_in_order(tmp_path):
    from ros2_vla.data.video import read_video

    h, w = CAMERAS["scene"]
    ramp = np.linspace(0, 255, w, dtype=np.float32)[None, :, None].repeat(h, 0).repeat(3, 2)
    frames = [np.clip(ramp + 12 * k, 0, 255).astype(np.uint8) for k in range(8)]  # each frame brighter
    for codec in ("h264", "av1"):
        folder = tmp_path / codec
        writer = LeRobotWriter(
            folder, fps=FPS, robot_type="test_arm", state_names=STATE, action_names=ACTION,
            cameras={"scene": (h, w)}, video=VideoSettings(codec=codec),
        )  # fmt: skip
        writer.start_episode(length=len(frames))
        for rgb in frames:
            writer.write_frame("scene", rgb)
        writer.end_episode(np.zeros((8, 3)), np.zeros((8, 3)), ["t"] * 8)
        writer.finish({})
        decoded = list(read_video(_video(folder, "scene")))
        assert len(decoded) == len(frames), codec
        for k, (got, want) in enumerate(zip(decoded, frames)):
            err = np.abs(got.astype(np.int16) - want.astype(np.int16)).mean()
            assert err < 4, (codec, k, err)  # and frame k is frame k: neighbours differ by 12
