"""Image decoding and observation assembly: what vla_node accepts, and what it refuses and why."""

from __future__ import annotations

import io

import numpy as np
import pytest

from ros2_vla.errors import PolicyError
from ros2_vla.policies.encodings import decode_raw
from ros2_vla.policies.observation import ObservationBuffer, decode_compressed

RGB = np.arange(4 * 5 * 3, dtype=np.uint8).reshape(4, 5, 3)


def test_rgb8_with_row_padding_decodes_to_the_same_pixels():
    step = 5 * 3 + 4  # drivers may pad rows
    rows = np.zeros((4, step), np.uint8)
    rows[:, :15] = RGB.reshape(4, 15)
    np.testing.assert_array_equal(decode_raw(rows.tobytes(), "rgb8", 4, 5, step), RGB)


def test_bgr8_is_swapped_to_rgb():
    np.testing.assert_array_equal(decode_raw(RGB[:, :, ::-1].tobytes(), "bgr8", 4, 5, 15), RGB)


def test_mono8_becomes_three_equal_channels():
    gray = np.arange(20, dtype=np.uint8).reshape(4, 5)
    out = decode_raw(gray.tobytes(), "mono8", 4, 5, 5)
    assert out.shape == (4, 5, 3) and np.all(out == gray[:, :, None])


@pytest.mark.parametrize("encoding", ["16UC1", "32FC1"])
def test_other_encodings_are_refused_by_name(encoding):
    with pytest.raises(PolicyError, match=f"encoding '{encoding}' is not supported"):
        decode_raw(b"\0" * 100, encoding, 2, 2, 8)


def test_truncated_image_is_refused():
    with pytest.raises(PolicyError, match="inconsistent"):
        decode_raw(RGB.tobytes()[:-1], "rgb8", 4, 5, 15)


@pytest.mark.parametrize("fmt", ["png", "jpeg"])
def test_compressed_images_decode(fmt):
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(np.full((8, 8, 3), 200, np.uint8)).save(buf, format=fmt.upper())
    out = decode_compressed(buf.getvalue(), fmt)
    assert out.shape == (8, 8, 3) and abs(int(out.mean()) - 200) <= 2


def test_garbage_compressed_image_is_refused():
    with pytest.raises(PolicyError, match="could not be decoded"):
        decode_compressed(b"not an image", "jpeg")


def _buffer(max_age: float = 0.5) -> ObservationBuffer:
    return ObservationBuffer(("scene", "wrist"), ("j1", "j2"), max_age, {"scene": (4, 5), "wrist": (4, 5)})


def test_assembles_newest_inputs_with_the_oldest_frame_as_stamp():
    b = _buffer()
    b.add_frame("scene", 10.0, RGB)
    b.add_frame("wrist", 10.03, RGB + 1)  # within sync_slop (50 ms)
    b.add_joint_state(10.2, ["j2", "other", "j1"], [2.0, 9.0, 1.0])
    obs = b.assemble(10.3, "pick")
    assert obs.stamp == 10.0 and list(obs.images) == ["scene", "wrist"]
    np.testing.assert_array_equal(obs.state, [1.0, 2.0])
    np.testing.assert_array_equal(obs.images["wrist"], RGB + 1)


def test_frames_of_one_moment_are_paired_not_the_newest_of_each():
    b = _buffer()
    for k, t in enumerate((1.0, 1.1, 1.2)):
        b.add_frame("scene", t, RGB + k)
    for k, t in enumerate((1.0, 1.1)):  # the wrist's 1.2 frame is still on its way
        b.add_frame("wrist", t + 0.001, RGB + 10 + k)
    b.add_joint_state(1.2, ["j1", "j2"], [0.0, 0.0])
    obs = b.assemble(1.25, "pick")
    assert obs.stamp == 1.1
    np.testing.assert_array_equal(obs.images["scene"], RGB + 1)
    np.testing.assert_array_equal(obs.images["wrist"], RGB + 11)
    b.add_frame("wrist", 1.201, RGB + 12)  # now the newest set is complete
    assert b.assemble(1.25, "pick").stamp == 1.2


def test_cameras_never_within_the_slop_are_refused_with_their_stamps():
    b = ObservationBuffer(("scene", "wrist"), ("j1", "j2"), 0.5, sync_slop=0.01)
    b.add_frame("scene", 1.0, RGB)
    b.add_frame("wrist", 1.05, RGB)
    b.add_joint_state(1.05, ["j1", "j2"], [0.0, 0.0])
    with pytest.raises(PolicyError, match=r"sync_slop 10 ms.*scene 1.000 s, wrist 1.050 s"):
        b.assemble(1.1, "pick")
    with pytest.raises(PolicyError, match="sync_slop"):
        ObservationBuffer(("scene",), ("j1",), 0.5, sync_slop=-1.0)


def test_a_clock_that_goes_back_forgets_the_later_frames():
    b = _buffer()
    b.add_frame("scene", 5.0, RGB)
    b.add_frame("wrist", 5.0, RGB)
    b.add_frame("scene", 0.1, RGB + 1)  # a sim reset
    b.add_frame("wrist", 0.1, RGB + 1)
    b.add_joint_state(0.1, ["j1", "j2"], [0.0, 0.0])
    obs = b.assemble(0.2, "pick")
    assert obs.stamp == 0.1


def test_missing_camera_stale_frame_and_missing_state_are_refused():
    b = _buffer()
    b.add_frame("scene", 10.0, RGB)
    with pytest.raises(PolicyError, match="no image yet from camera"):
        b.assemble(10.1, "pick")
    b.add_frame("wrist", 10.0, RGB)
    with pytest.raises(PolicyError, match="no complete joint state"):
        b.assemble(10.1, "pick")
    b.add_joint_state(10.0, ["j1", "j2"], [0.0, 0.0])
    with pytest.raises(PolicyError, match="stale image"):
        b.assemble(10.6, "pick")


def test_wrong_size_and_unknown_camera_are_refused():
    b = _buffer()
    with pytest.raises(PolicyError, match="config says 5x4"):
        b.add_frame("scene", 0.0, np.zeros((8, 5, 3), np.uint8))
    with pytest.raises(PolicyError, match="not one the policy uses"):
        b.add_frame("top", 0.0, RGB)


def test_partial_or_nan_joint_state_keeps_the_last_complete_one():
    b = _buffer()
    b.add_frame("scene", 1.0, RGB)
    b.add_frame("wrist", 1.0, RGB)
    b.add_joint_state(1.0, ["j1", "j2"], [0.5, 0.6])
    b.add_joint_state(1.1, ["j1"], [9.0])
    b.add_joint_state(1.1, ["j1", "j2"], [float("nan"), 0.0])
    np.testing.assert_allclose(b.assemble(1.2, "x").state, [0.5, 0.6])


def test_a_configured_camera_the_model_ignores_is_kept_not_refused():
    b = _buffer()
    b.cameras = ("scene",)  # what PolicyRunner does once a one-camera model (OpenVLA) is loaded
    b.add_frame("wrist", 1.0, RGB)  # the node still subscribes to every configured camera
    b.add_frame("scene", 2.0, RGB)
    b.add_joint_state(2.0, ["j1", "j2"], [0.0, 0.0])
    obs = b.assemble(2.1, "pick")  # the old wrist frame is neither needed nor stale
    assert list(obs.images) == ["scene"] and obs.stamp == 2.0


def test_rgb8_in_a_writable_buffer_is_viewed_not_copied_and_bytes_are_copied():
    import array

    buffer = array.array("B", RGB.tobytes())  # what rclpy hands over as Image.data
    out = decode_raw(buffer, "rgb8", 4, 5, 15)
    np.testing.assert_array_equal(out, RGB)
    assert np.shares_memory(out, np.frombuffer(buffer, np.uint8))
    from_bytes = decode_raw(RGB.tobytes(), "rgb8", 4, 5, 15)
    assert from_bytes.flags.writeable and from_bytes.flags.c_contiguous
