"""The camera encodings drivers publish decode to the RGB their reference encoding stands for (decode_raw);
a swapped pattern or byte order would not."""

from __future__ import annotations

import numpy as np
import pytest
from image_references import BAYER, ENCODED, block_image, encode, matches

from ros2_vla.errors import PolicyError
from ros2_vla.policies.encodings import ENCODINGS, decode_raw

IMAGE = block_image(48, 64)


def _decode(e, encoding: str, height: int = 48, width: int = 64) -> np.ndarray:
    return decode_raw(e.data, encoding, height, width, e.step, e.is_bigendian)


@pytest.mark.parametrize("encoding", ENCODED)
def test_each_encoding_decodes_to_its_reference(encoding):
    e = encode(IMAGE, encoding)
    out = _decode(e, encoding)
    assert out.shape == (48, 64, 3) and out.dtype == np.uint8
    ok, worst = matches(out, e)
    assert ok, f"{encoding}: off by {worst}"
    assert e.exact.mean() > 0.2  # the comparison covers a good part of the image


def test_big_endian_mono16_is_read_in_its_byte_order():
    e = encode(IMAGE, "mono16", big_endian=True)
    assert matches(_decode(e, "mono16"), e)[0]
    swapped = decode_raw(e.data, "mono16", 48, 64, e.step, is_bigendian=False)
    assert not matches(swapped, e)[0]


@pytest.mark.parametrize("encoding", [*BAYER, "yuv422_yuy2"])
def test_a_wrong_pattern_or_packing_would_be_caught(encoding):
    """Each reference tells its encoding from its siblings: decoding as another one fails the comparison."""
    e = encode(IMAGE, encoding)
    siblings = [b for b in BAYER if b != encoding] if encoding in BAYER else ["yuv422"]
    for other in siblings:
        assert not matches(_decode(e, other), e)[0], other


def test_padded_rows_are_skipped():
    e = encode(IMAGE, "yuv422_yuy2")
    rows = np.frombuffer(e.data, np.uint8).reshape(48, e.step)
    padded = np.concatenate([rows, np.zeros((48, 6), np.uint8)], 1)
    assert matches(decode_raw(padded.tobytes(), "yuv422_yuy2", 48, 64, e.step + 6), e)[0]


@pytest.mark.parametrize("encoding", ["16UC1", "32FC1", "bayer_rggb16", "nv21"])
def test_other_encodings_are_refused_by_name(encoding):
    with pytest.raises(PolicyError, match=f"encoding '{encoding}' is not supported") as err:
        decode_raw(b"\0" * 100, encoding, 2, 2, 8)
    assert "yuv422_yuy2" in str(err.value)  # and the message lists what is accepted


def test_odd_width_4_2_2_and_short_buffers_are_refused():
    with pytest.raises(PolicyError, match="odd width"):
        decode_raw(b"\0" * 60, "yuv422_yuy2", 2, 15, 30)
    with pytest.raises(PolicyError, match="inconsistent"):
        decode_raw(b"\0" * 10, "mono16", 2, 4, 8)
    assert set(ENCODED) < set(ENCODINGS)
