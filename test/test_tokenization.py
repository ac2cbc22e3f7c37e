"""OpenVLA-compatible tokens and normalization: hand-computed values and properties."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ros2_vla.actions.tokenization import (
    bin_centers,
    bin_edges,
    bin_indices_to_token_ids,
    normalize,
    normalized_to_tokens,
    token_ids_to_bin_indices,
    tokens_to_normalized,
    unnormalize,
)
from ros2_vla.errors import ChunkError

VOCAB = 32000  # OpenVLA (Llama 2): text vocab 32064 minus pad_to_multiple_of 64


def test_bin_centers_openvla_count_and_ends():
    # 256 edges over [-1, 1] are 2/255 apart; 255 midpoints, the first at -1 + 1/255, the last at 1 - 1/255.
    c = bin_centers(256)
    assert c.shape == (255,)
    assert c[0] == pytest.approx(-1 + 1 / 255, abs=1e-15)
    assert c[-1] == pytest.approx(1 - 1 / 255, abs=1e-15)
    assert np.allclose(np.diff(c), 2 / 255)


def test_bin_centers_three_edges():
    # edges -1, 0, 1 -> centers (-1+0)/2 = -0.5 and (0+1)/2 = 0.5
    assert np.array_equal(bin_centers(3), [-0.5, 0.5])


def test_bin_center_127_is_zero():
    # center 127 = midpoint of edges -1 + 254/255 and -1 + 256/255 = -1 + 255/255 = 0
    assert tokens_to_normalized(np.array([127]), 256)[0] == pytest.approx(0.0, abs=1e-15)


def test_bin_tables_are_read_only():
    with pytest.raises(ValueError):
        bin_centers(256)[0] = 0.0
    with pytest.raises(ValueError):
        bin_edges(256)[0] = 0.0


@pytest.mark.parametrize("num_bins", [0, 1, -4, 2.5])
def test_bad_num_bins_raises(num_bins):
    with pytest.raises(ChunkError, match="num_bins"):
        bin_centers(num_bins)


def test_token_ids_count_from_end_of_vocab():
    # id 31999 -> 32000 - 31999 - 1 = 0; 31872 -> 127; 31745 -> 254; 31744 -> 255, clipped to 254 (last center)
    ids = np.array([31999, 31872, 31745, 31744])
    assert token_ids_to_bin_indices(ids, VOCAB, 256).tolist() == [0, 127, 254, 254]


def test_token_ids_outside_action_range_clip_like_openvla():
    # 100 is a text token: 32000 - 100 - 1 = 31899 -> clipped to 254; 32005 -> -6 -> clipped to 0
    assert token_ids_to_bin_indices(np.array([100, 32005]), VOCAB, 256).tolist() == [254, 0]


def test_token_ids_strict_rejects_text_tokens():
    with pytest.raises(ChunkError, match="non-action"):
        token_ids_to_bin_indices(np.array([31999, 100]), VOCAB, 256, strict=True)
    assert token_ids_to_bin_indices(np.array([31744, 31999]), VOCAB, 256, strict=True).tolist() == [254, 0]


def test_openvla_decode_pipeline():
    # OpenVLA: normalized = bin_centers[clip(V - id - 1, 0, 254)]; then where(mask, 0.5*(a+1)*(q99-q01)+q01, a).
    ids = np.array([31872, 31999, 31745])  # bins 127, 0, 254 -> a = 0, -1 + 1/255, 1 - 1/255
    low, high, mask = np.array([-0.02, -0.1, 0.0]), np.array([0.04, 0.1, 1.0]), np.array([True, True, False])
    a = tokens_to_normalized(token_ids_to_bin_indices(ids, VOCAB, 256), 256)
    out = unnormalize(a, low, high, mask)
    # dim 0: 0.5*(0+1)*0.06 - 0.02 = 0.01; dim 1: 0.5*(1/255)*0.2 - 0.1 = 0.1/255 - 0.1; dim 2 passes: 1 - 1/255
    assert out == pytest.approx([0.01, 0.1 / 255 - 0.1, 1 - 1 / 255], abs=1e-12)


def test_normalized_to_tokens_hand_values():
    # digitize against edges (step 2/255): -1 -> bin 0; 0 -> between edge 127 (-1/255) and 128 (+1/255) -> 127;
    # exactly 1 -> digitize overflow 255 -> last center 254; 5 is first clipped to 1.
    assert normalized_to_tokens(np.array([-1.0, 0.0, 1.0, 5.0, -7.0]), 256).tolist() == [0, 127, 254, 254, 0]


def test_encode_matches_openvla_tokenizer():
    # OpenVLA's tokenizer: id = V - digitize(clip(x, -1, 1), edges); its decoder takes V - id - 1.
    x = np.linspace(-1.2, 1.2, 1001)
    openvla_ids = VOCAB - np.digitize(np.clip(x, -1, 1), np.linspace(-1, 1, 256))
    ours = normalized_to_tokens(x, 256)
    assert np.array_equal(token_ids_to_bin_indices(openvla_ids, VOCAB, 256), ours)
    assert np.array_equal(token_ids_to_bin_indices(bin_indices_to_token_ids(ours, VOCAB), VOCAB, 256), ours)


def test_tokenize_nan_raises():
    with pytest.raises(ChunkError, match="NaN"):
        normalized_to_tokens(np.array([0.0, np.nan]))


def test_negative_bin_index_raises():
    with pytest.raises(ChunkError):
        tokens_to_normalized(np.array([-1, 3]), 256)


def test_unnormalize_ends_and_pass_through():
    # -1 -> low, +1 -> high, 0.5 -> 0.5*1.5*(0.04+0.02) - 0.02 = 0.025; unmasked dim keeps its value
    low, high = np.array([-0.02, 5.0]), np.array([0.04, 9.0])
    mask = np.array([True, False])
    x = np.array([[-1.0, 0.3], [1.0, -0.7], [0.5, 0.0]])
    assert unnormalize(x, low, high, mask) == pytest.approx(np.array([[-0.02, 0.3], [0.04, -0.7], [0.025, 0.0]]))


def test_normalize_hand_values_and_clip():
    # 2*(0.025+0.02)/(0.06+1e-8) - 1 = 0.5 (to 1e-7); 1.0 is above q99 -> clipped to 1; unmasked 3.3 passes
    low, high, mask = np.array([-0.02, 0.0]), np.array([0.04, 1.0]), np.array([True, False])
    out = normalize(np.array([[0.025, 3.3], [1.0, -2.0]]), low, high, mask)
    assert out == pytest.approx(np.array([[0.5, 3.3], [1.0, -2.0]]), abs=1e-6)


unit = st.floats(-1.0, 1.0, allow_nan=False)
n_bins = st.integers(2, 1024)


@given(x=unit, n=n_bins)
def test_round_trip_within_half_a_bin(x, n):
    back = tokens_to_normalized(normalized_to_tokens(np.array([x]), n), n)[0]
    assert abs(back - x) <= 1.0 / (n - 1) + 1e-12


@given(a=unit, b=unit, n=n_bins)
def test_tokens_monotonic(a, b, n):
    lo, hi = min(a, b), max(a, b)
    t = normalized_to_tokens(np.array([lo, hi]), n)
    assert t[0] <= t[1]
    c = tokens_to_normalized(t, n)
    assert c[0] <= c[1]


@st.composite
def bounds(draw, d=4):
    low = np.array(draw(st.lists(st.floats(-10, 10), min_size=d, max_size=d)))
    width = np.array(draw(st.lists(st.floats(0, 10), min_size=d, max_size=d)))
    mask = np.array(draw(st.lists(st.booleans(), min_size=d, max_size=d)))
    return low, low + width, mask


@given(b=bounds(), idx=st.lists(st.integers(0, 255), min_size=12, max_size=12))
def test_detokenized_normalized_dims_lie_in_bounds_and_others_pass(b, idx):
    low, high, mask = b
    a = tokens_to_normalized(np.array(idx).reshape(3, 4), 256)
    out = unnormalize(a, low, high, mask)
    tol = 1e-9 * (1 + np.abs(high))
    assert np.all((out[:, mask] >= low[mask] - tol[mask]) & (out[:, mask] <= high[mask] + tol[mask]))
    assert np.array_equal(out[:, ~mask], a[:, ~mask])


@settings(max_examples=50)
@given(b=bounds(), frac=st.lists(st.floats(0, 1), min_size=4, max_size=4))
def test_normalize_inverts_unnormalize(b, frac):
    low, high, mask = b
    high = np.where(high - low < 1e-3, low + 1e-3, high)  # a dim needs some width to be invertible
    x = low + np.array(frac) * (high - low)
    back = unnormalize(normalize(x, low, high, mask), low, high, mask)
    assert back == pytest.approx(x, abs=1e-6)
