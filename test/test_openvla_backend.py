"""The openvla backend end to end on a checkpoint in OpenVLA's published layout (random weights, CPU)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from openvla_helpers import checkpoint_variant

from ros2_vla.actions.chunk import Chunk, chunk_to_array
from ros2_vla.actions.tokenization import bin_centers
from ros2_vla.errors import PolicyError
from ros2_vla.policies.base import Observation
from ros2_vla.policies.openvla import OpenVlaConfig, OpenVlaPolicy
from ros2_vla.policies.openvla.published_stats import BRIDGE_ORIG_ACTION

pytestmark = pytest.mark.slow
CAMERAS = ("scene", "wrist")


@pytest.fixture(scope="module")
def policy(openvla_checkpoint):
    return OpenVlaPolicy(OpenVlaConfig(checkpoint=str(openvla_checkpoint), dt=0.2, cameras=CAMERAS, device="cpu"))


def _obs(instruction="pick up the red cube", seed=0, **images):
    rng = np.random.default_rng(seed)
    frames = images or {"scene": rng.integers(0, 256, (48, 64, 3), dtype=np.uint8)}
    return Observation(stamp=1.5, images=frames, state=np.zeros(7, np.float32), instruction=instruction)


def test_spec_describes_one_step_from_the_first_camera(policy, openvla_checkpoint):
    spec = policy.spec
    assert spec.horizon == 1 and spec.dt == 0.2
    assert spec.cameras == ("scene",)
    assert spec.image_size == (224, 224)  # from the checkpoint's image processor
    assert spec.dimension_names == ("x", "y", "z", "roll", "pitch", "yaw", "gripper")
    assert spec.action_space == "ee_delta"
    assert spec.name == f"openvla:{openvla_checkpoint.name}"


def test_infer_returns_one_step_of_bin_indices_with_bridge_orig_bounds(policy):
    out = policy.infer(_obs())
    assert out.tokens.shape == (1, 7) and out.tokens.dtype == np.uint16
    assert out.tokens.max() <= 254  # 255 bin centers for 256 bins
    assert out.values.size == 0
    assert out.num_bins == 256
    assert np.array_equal(out.low, np.float32(BRIDGE_ORIG_ACTION["q01"]))
    assert np.array_equal(out.high, np.float32(BRIDGE_ORIG_ACTION["q99"]))
    assert out.normalized.tolist() == BRIDGE_ORIG_ACTION["mask"]


def test_infer_is_deterministic(policy):
    assert np.array_equal(policy.infer(_obs()).tokens, policy.infer(_obs()).tokens)


def test_prompt_ends_with_the_word_start_token_once(policy):
    inputs = policy.encode(_obs())
    ids = inputs["input_ids"][0].tolist()
    space = policy.processor.tokenizer.convert_tokens_to_ids("\u2581")
    assert ids[-1] == space == 29871 and ids[-2] != space
    assert ids[0] == 1  # <s>; the model puts the image patches right after it
    assert inputs["pixel_values"].shape == (1, 6, 224, 224)  # DINOv2's and SigLIP's normalizations, stacked


def test_decoding_is_constrained_although_the_model_prefers_text(policy):
    inputs = policy.encode(_obs())
    with torch.no_grad():
        logits = policy.model.prefill(inputs["input_ids"], inputs["pixel_values"]).logits[0]
    first, last = policy.action_ids
    assert not first <= int(logits.argmax()) <= last, "the random model should prefer a non-action id"
    ids = policy.generate_ids(inputs)
    assert ids.shape == (7,) and np.all((ids >= first) & (ids <= last))
    assert ids[0] == first + int(logits[first : last + 1].argmax())  # the best action id of the first step


def test_chunk_decodes_like_openvla_predict_action(policy):
    # The bridge's decoding of the chunk must equal what OpenVLA's predict_action computes from the ids.
    inputs = policy.encode(_obs())
    ids = policy.generate_ids(inputs)
    out = policy.infer(_obs())
    normalized = bin_centers(256)[np.clip(policy.vocab_size - ids - 1, 0, 254)]
    q01, q99 = np.array(BRIDGE_ORIG_ACTION["q01"]), np.array(BRIDGE_ORIG_ACTION["q99"])
    expected = np.where(BRIDGE_ORIG_ACTION["mask"], 0.5 * (normalized + 1) * (q99 - q01) + q01, normalized)
    chunk = Chunk(
        embodiment="widowx",
        action_space="ee_delta",
        dimension_names=policy.spec.dimension_names,
        dt=policy.spec.dt,
        horizon=1,
        tokens=out.tokens.reshape(-1),
        num_bins=out.num_bins,
        low=out.low,
        high=out.high,
        normalized=out.normalized,
    )
    assert np.allclose(chunk_to_array(chunk)[0], expected, atol=1e-6)


def test_4bit_policy_infers_valid_tokens(openvla_checkpoint):
    policy = OpenVlaPolicy(
        OpenVlaConfig(checkpoint=str(openvla_checkpoint), dt=0.2, cameras=CAMERAS, quantization="4bit", device="cpu")
    )
    assert policy.quantization == "4bit"
    out = policy.infer(_obs())
    assert out.tokens.shape == (1, 7) and out.tokens.max() <= 254


def test_chosen_camera_is_used_and_required(openvla_checkpoint):
    policy = OpenVlaPolicy(
        OpenVlaConfig(checkpoint=str(openvla_checkpoint), dt=0.2, cameras=CAMERAS, camera="wrist", device="cpu")
    )
    assert policy.spec.cameras == ("wrist",)
    frame = np.zeros((32, 32, 3), np.uint8)
    assert policy.infer(_obs(wrist=frame)).tokens.shape == (1, 7)
    with pytest.raises(PolicyError, match="no image from camera 'wrist'"):
        policy.infer(_obs(scene=frame))


def test_instruction_over_the_limit_is_refused(policy):
    limit = policy.spec.max_instruction_chars
    assert policy.prompt("x" * limit)  # at the limit: accepted
    with pytest.raises(PolicyError, match=f"{limit + 1} characters, over the limit of {limit}"):
        policy.infer(_obs("x" * (limit + 1)))


def test_empty_instruction_is_refused(policy):
    with pytest.raises(PolicyError, match="empty"):
        policy.infer(_obs("  "))


@pytest.mark.parametrize(
    "image",
    [
        np.zeros((32, 32, 3), np.float32),
        np.zeros((32, 32), np.uint8),
        np.zeros((32, 32, 4), np.uint8),
        np.zeros((0, 32, 3), np.uint8),
    ],
)
def test_bad_image_is_refused(policy, image):
    with pytest.raises(PolicyError, match="camera 'scene'"):
        policy.infer(_obs(scene=image))


def test_unknown_unnorm_key_is_refused_before_weights(openvla_checkpoint):
    with pytest.raises(PolicyError, match="Did you mean 'bridge_orig'"):
        OpenVlaPolicy(OpenVlaConfig(checkpoint=str(openvla_checkpoint), dt=0.2, cameras=CAMERAS, unnorm_key="bridge"))


def test_several_datasets_need_an_unnorm_key(openvla_checkpoint, tmp_path):
    """openvla-7b carries the statistics of dozens of datasets: without unnorm_key the actions would be
    un-normalized with an arbitrary one, so the backend refuses and lists them."""

    def second_dataset(config: dict) -> None:
        config["norm_stats"]["fractal20220817_data"] = config["norm_stats"]["bridge_orig"]

    ck = checkpoint_variant(openvla_checkpoint, tmp_path / "multi", config=second_dataset)
    with pytest.raises(PolicyError, match="2 datasets: set unnorm_key to one of bridge_orig, fractal20220817_data"):
        OpenVlaPolicy(OpenVlaConfig(checkpoint=str(ck), dt=0.2, cameras=CAMERAS))
    chosen = OpenVlaPolicy(
        OpenVlaConfig(checkpoint=str(ck), dt=0.2, cameras=CAMERAS, unnorm_key="bridge_orig", device="cpu")
    )
    assert chosen.stats.key == "bridge_orig"


def test_dimension_names_must_match_the_statistics(openvla_checkpoint):
    with pytest.raises(PolicyError, match="6 names but the checkpoint's statistics have 7"):
        OpenVlaPolicy(
            OpenVlaConfig(
                checkpoint=str(openvla_checkpoint),
                dt=0.2,
                cameras=CAMERAS,
                dimension_names=("x", "y", "z", "roll", "pitch", "yaw"),
            )
        )


def test_missing_checkpoint_is_refused(tmp_path):
    with pytest.raises(PolicyError, match="does not exist"):
        OpenVlaPolicy(OpenVlaConfig(checkpoint=str(tmp_path / "none"), dt=0.2, cameras=CAMERAS))


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(dt=0.0), "dt must be > 0"),
        (dict(cameras=()), "cameras is empty"),
        (dict(camera="sceen"), "Did you mean 'scene'"),
        (dict(action_space="ee_velocity"), "unknown action_space"),
        (dict(max_instruction_chars=0), "max_instruction_chars"),
        (dict(prompt_template="In: {task}"), "{instruction}"),
    ],
)
def test_config_is_checked(kwargs, message):
    args = dict(checkpoint="unused", dt=0.2, cameras=CAMERAS) | kwargs
    with pytest.raises(PolicyError, match=message):
        OpenVlaConfig(**args)
