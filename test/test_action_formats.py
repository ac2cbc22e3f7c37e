"""The seed families' action formats: RT-1's 11 tokens, RT-2's text numbers and FAST tokens, decoded by
hand-computed cases and by round trips."""

from __future__ import annotations

import json
import math
import time

import numpy as np
import pytest

from ros2_vla.actions.fast import FastTokenizer, chunk_to_coefficients, coefficients_to_chunk, dct_matrix
from ros2_vla.actions.rt1 import RT1_TOKENS, RtAction, decode_rt1, decode_rt2, encode_rt1, token_to_value
from ros2_vla.actions.rt2_text import decode_action_text, format_action_text, parse_action_text
from ros2_vla.errors import ChunkError


# --- RT-1 / RT-2 -------------------------------------------------------------------------------------
def test_rt1_tokens_decode_to_rt1s_bounds_by_hand():
    tokens = np.array([1, 0, 255, 51, 0, 255, 127, 255, 0, 255, 0])
    action = decode_rt1(tokens)
    assert action.mode == "arm" and not action.terminate
    # world vector [-1, 1]: token t -> -1 + 2 t / 255 (a lower bin edge, as RT-1 detokenizes)
    assert action.arm[:3] == pytest.approx([-1.0, 1.0, -1.0 + 2 * 51 / 255])
    # rotation [-pi/2, pi/2]
    assert action.arm[3:6] == pytest.approx([-math.pi / 2, math.pi / 2, -math.pi / 2 + math.pi * 127 / 255])
    assert action.arm[6] == pytest.approx(1.0)  # gripper: close
    assert action.base == pytest.approx([-math.pi, 1.0, -1.0])


def test_rt1_mode_token_zero_terminates():
    assert decode_rt1(np.r_[0, np.full(RT1_TOKENS - 1, 128)]).terminate
    assert decode_rt1(np.r_[2, np.full(RT1_TOKENS - 1, 128)]).mode == "base"


def test_rt1_round_trip_is_within_one_bin():
    rng = np.random.default_rng(0)
    for _ in range(50):
        arm = np.r_[rng.uniform(-1, 1, 3), rng.uniform(-math.pi / 2, math.pi / 2, 3), rng.uniform(-1, 1)]
        base = np.r_[rng.uniform(-math.pi, math.pi), rng.uniform(-1, 1, 2)]
        tokens = encode_rt1(RtAction("arm", arm, base))
        back = decode_rt1(tokens)
        widths = np.r_[[2 / 255] * 3, [math.pi / 255] * 3, 2 / 255, 2 * math.pi / 255, 2 / 255, 2 / 255]
        values, expected = np.r_[back.arm, back.base], np.r_[arm, base]
        assert np.all(values <= expected + 1e-9) and np.all(expected - values < widths + 1e-9)
        # RT-1 truncates, so a decoded edge can re-encode one bin lower in floating point; mid-bin is exact
        mid = RtAction("arm", back.arm + widths[:7] / 2, back.base + widths[7:] / 2)
        assert np.array_equal(encode_rt1(mid), tokens)


@pytest.mark.parametrize(
    "tokens, message",
    [
        (np.zeros(10, np.int64), "expected 11"),
        (np.r_[1, np.full(10, 256)], "0..255"),
        (np.r_[3, np.zeros(10, np.int64)], "mode token 3"),
        (np.r_[1.0, np.zeros(10)], "integers"),
    ],
)
def test_bad_rt1_tokens_are_refused(tokens, message):
    with pytest.raises(ChunkError, match=message):
        decode_rt1(tokens)


def test_rt2_text_from_the_paper_decodes_by_hand():
    action = decode_action_text("1 128 91 241 5 101 127 217")
    assert action.mode == "arm"
    assert action.arm == pytest.approx(
        [
            token_to_value(128, -1, 1),
            token_to_value(91, -1, 1),
            token_to_value(241, -1, 1),
            token_to_value(5, -math.pi / 2, math.pi / 2),
            token_to_value(101, -math.pi / 2, math.pi / 2),
            token_to_value(127, -math.pi / 2, math.pi / 2),
            token_to_value(217, -1, 1),
        ]
    )
    assert action.arm[0] == pytest.approx(1 / 255)  # 128 of 0..255 is just above the middle
    assert np.all(action.base == 0)
    assert np.array_equal(decode_rt2(parse_action_text("1 128 91 241 5 101 127 217")).arm, action.arm)


def test_rt2_text_round_trip_and_whitespace():
    tokens = np.array([0, 1, 2, 3, 252, 253, 254, 255])
    assert np.array_equal(parse_action_text("  " + format_action_text(tokens).replace(" ", "\t") + "\n"), tokens)
    assert decode_action_text(format_action_text(tokens)).terminate


@pytest.mark.parametrize(
    "text",
    [
        "",
        "1 128 91 241 5 101 127",
        "1 128 91 241 5 101 127 217 3",
        "1 128 91 241 5 101 127 256",
        "1 128 91 241 5 101 127 -1",
        "Action: 1 128 91 241 5 101 127",
        "1 128 91 241 5 101 127 2.5",
        "1 128 91 241 5 101 127 \u00b2",
        "3 128 91 241 5 101 127 217",
    ],
)
def test_anything_but_eight_integers_in_range_is_refused(text):
    with pytest.raises(ChunkError):
        decode_action_text(text)


# --- FAST ----------------------------------------------------------------------------------------------
def test_dct_matrix_is_orthonormal_and_its_first_row_is_the_mean():
    m = dct_matrix(8)
    assert np.allclose(m @ m.T, np.eye(8))
    assert np.allclose(m[0], 1 / math.sqrt(8))


def test_a_constant_chunk_is_one_coefficient_by_hand():
    # DCT-II (ortho) of c over 4 steps: c * sqrt(4) = 2c at frequency 0, nothing else; scale 10 -> 10 for c = 0.5
    chunk = np.full((4, 2), 0.5)
    chunk[:, 1] = -0.25
    coefficients = chunk_to_coefficients(chunk, 10.0)
    assert coefficients.tolist() == [[10, -5], [0, 0], [0, 0], [0, 0]]
    assert np.allclose(coefficients_to_chunk(coefficients, 10.0), chunk)


def _fit_tokenizer(chunks: list[np.ndarray], scale: float, folder) -> FastTokenizer:
    """A FAST tokenizer laid out as physical-intelligence/fast publishes one: a byte-level BPE over the
    characters of the shifted coefficients (tokenizer.json) and processor_config.json."""
    from tokenizers import ByteLevelBPETokenizer
    from tokenizers.trainers import BpeTrainer

    flat = [chunk_to_coefficients(c, scale).reshape(-1) for c in chunks]
    low, high = int(min(f.min() for f in flat)), int(max(f.max() for f in flat))
    bpe = ByteLevelBPETokenizer()
    trainer = BpeTrainer(
        vocab_size=400,
        min_frequency=2,
        show_progress=False,
        special_tokens=[],
        initial_alphabet=[chr(i) for i in range(high - low + 1)],
        max_token_length=10000,
    )
    bpe._tokenizer.train_from_iterator(("".join(map(chr, f - low)) for f in flat), trainer=trainer)
    folder.mkdir()
    bpe._tokenizer.save(str(folder / "tokenizer.json"))
    (folder / "processor_config.json").write_text(
        json.dumps(
            {
                "processor_class": "UniversalActionProcessor",
                "scale": scale,
                "min_token": low,
                "vocab_size": 400,
                "action_dim": None,
                "time_horizon": None,
            }
        )
    )
    return FastTokenizer.load(folder)


@pytest.fixture(scope="module")
def smooth_chunks():
    rng = np.random.default_rng(0)
    t = np.linspace(0, 1, 10)[:, None]
    return [
        np.clip(rng.normal(0, 0.3, (1, 7)) + rng.normal(0, 0.5, (1, 7)) * np.sin(3 * t + rng.uniform(0, 6, 7)), -1, 1)
        for _ in range(200)
    ]


def test_fast_round_trip_is_within_the_rounding(smooth_chunks, tmp_path):
    tok = _fit_tokenizer(smooth_chunks, 10.0, tmp_path / "fast")
    for chunk in smooth_chunks[:20]:
        ids = tok.encode(chunk)
        assert len(ids) < chunk.size  # BPE compresses the 70 coefficients
        back = tok.decode(ids, 10, 7)
        # orthonormal DCT: the error is the rounding of each coefficient, at most 0.5 / scale, in L2
        assert np.linalg.norm(back - chunk) <= 0.5 / 10 * math.sqrt(chunk.size) + 1e-9
        assert np.array_equal(tok.encode(back), ids)


def test_fast_tokens_that_do_not_make_the_chunk_are_refused(smooth_chunks, tmp_path):
    tok = _fit_tokenizer(smooth_chunks, 10.0, tmp_path / "fast")
    ids = tok.encode(smooth_chunks[0])
    with pytest.raises(ChunkError, match="not 10 x 7"):
        tok.decode(ids[:-1], 10, 7)  # cut off
    with pytest.raises(ChunkError, match="token ids must be in"):
        tok.decode([*ids, 10_000], 10, 7)


def test_a_folder_that_is_not_a_fast_tokenizer_is_refused(tmp_path):
    with pytest.raises(ChunkError, match="not a FAST tokenizer folder"):
        FastTokenizer.load(tmp_path)


# --- terminate: the runner stops and says so -------------------------------------------------------------
def test_an_rt2_terminate_stops_the_runner_until_the_next_instruction():
    """A policy whose model writes RT-2 text: the terminate token ends the chunks (the bridge holds with no
    new chunk), the status says why, and a new instruction starts it again."""
    import threading

    from ros2_vla.actions.rt1 import check_not_terminated
    from ros2_vla.errors import PolicyDone
    from ros2_vla.policies.base import PolicyOutput, PolicySpec
    from ros2_vla.policies.observation import ObservationBuffer
    from ros2_vla.policies.runner import PolicyRunner

    with pytest.raises(PolicyDone, match="terminate"):
        check_not_terminated(decode_action_text("0 128 128 128 128 128 128 255"))

    class TextPolicy:
        spec = PolicySpec(
            "rt2:test", ("scene",), (8, 8), "ee_delta", ("x", "y", "z", "roll", "pitch", "yaw", "gripper"), 1, 0.2
        )
        replies = iter(["1 128 91 241 5 101 127 217", "0 128 128 128 128 128 128 255"])

        def infer(self, obs):
            action = check_not_terminated(decode_action_text(next(self.replies)))
            return PolicyOutput(values=action.arm[None].astype(np.float32))

    buffer = ObservationBuffer(("scene",), ("j",), max_age=100.0)
    chunks, statuses, done = [], [], threading.Event()
    now = [0.0]

    def on_status(s):
        statuses.append(s)
        if s.code == "IDLE" and "terminate" in s.message:
            done.set()

    runner = PolicyRunner("franka", buffer, lambda: now[0], chunks.append, on_status)
    runner.start()
    try:
        runner.load(TextPolicy)
        runner.set_instruction("pick up the red cube")
        for t in (1.0, 2.0, 3.0):
            now[0] = t
            buffer.add_frame("scene", t, np.zeros((8, 8, 3), np.uint8))
            buffer.add_joint_state(t, ["j"], [0.0])
            runner.notify()
            time.sleep(0.3)
        assert done.wait(5), [s.message for s in statuses]
        assert len(chunks) == 1  # the terminating step published nothing
        assert "the policy ended the episode" in statuses[-1].message
    finally:
        runner.stop()
