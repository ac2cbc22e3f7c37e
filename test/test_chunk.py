"""The Chunk value: construction, validation against a robot, decoding to physical actions."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from ros2_vla.actions.chunk import (
    Chunk,
    check_layout,
    chunk_to_array,
    ee_components,
    resolve_delta_frame,
    validate_chunk,
)
from ros2_vla.config import ActionSpec, available_robots, load_robot_config
from ros2_vla.errors import ChunkError

EE_NAMES = ("x", "y", "z", "roll", "pitch", "yaw", "gripper")


@pytest.fixture(scope="module")
def franka():
    return load_robot_config("franka")


@pytest.fixture(scope="module")
def joint_robot(franka):
    """The franka arm driven by joint positions: arm joints plus a gripper dimension."""
    names = franka.joint_names + ("gripper",)
    return dataclasses.replace(franka, action=ActionSpec("joint_position", "base", names, 0.02))


@pytest.fixture(scope="module")
def two_arm_robot(franka):
    """An ALOHA-like pair: a second copy of the arm with prefixed joint names."""
    left = franka.arms[0]
    chain = left.chain
    right_chain = dataclasses.replace(
        chain,
        base_link="right_" + chain.base_link,
        ee_link="right_" + chain.ee_link,
        joints=tuple(dataclasses.replace(j, name="right_" + j.name) for j in chain.joints),
    )
    right = dataclasses.replace(
        left, name="right", chain=right_chain, gripper=dataclasses.replace(left.gripper, joint="right_finger")
    )
    names = left.chain.joint_names + ("left_gripper",) + right_chain.joint_names + ("right_gripper",)
    return dataclasses.replace(
        franka, name="pair", arms=(left, right), action=ActionSpec("joint_position", "base", names, 0.02)
    )


def ee_chunk(**overrides) -> Chunk:
    """A valid 2-step OpenVLA-style token chunk for franka."""
    fields = dict(
        embodiment="franka",
        action_space="ee_delta",
        dimension_names=EE_NAMES,
        dt=0.1,
        horizon=2,
        tokens=np.arange(14, dtype=np.uint16) * 10,
        num_bins=256,
        low=[-0.02] * 6 + [0.0],
        high=[0.04] * 6 + [1.0],
        normalized=[True] * 6 + [False],
    )
    fields.update(overrides)
    return Chunk(**fields)


def joint_chunk(robot, names=None, horizon=3, **overrides) -> Chunk:
    names = tuple(names if names is not None else robot.action.dimension_names)
    fields = dict(
        embodiment=robot.name,
        action_space="joint_position",
        dimension_names=names,
        dt=0.02,
        horizon=horizon,
        values=np.zeros(horizon * len(names)),
    )
    fields.update(overrides)
    return Chunk(**fields)


# --- construction --------------------------------------------------------------------------------------------


def test_arrays_coerced_copied_and_read_only():
    source = np.zeros(14)
    c = ee_chunk(tokens=[], num_bins=0, values=source)
    source[0] = 5.0
    assert c.values.dtype == np.float32 and c.values[0] == 0.0
    assert c.tokens.dtype == np.uint16 and c.low.dtype == np.float32 and c.normalized.dtype == np.bool_
    with pytest.raises(ValueError):
        c.values[0] = 1.0
    with pytest.raises(dataclasses.FrozenInstanceError):
        c.horizon = 5


def test_values_given_as_matrix_are_row_major():
    values = np.arange(14, dtype=np.float32).reshape(2, 7)
    c = ee_chunk(tokens=[], num_bins=0, values=values, normalized=[False] * 7)
    assert np.array_equal(chunk_to_array(c), values)


@pytest.mark.parametrize("tokens", [[-1, 3], [70000], [0.5, 1.0]])
def test_tokens_outside_uint16_or_not_integer_raise(tokens):
    with pytest.raises(ChunkError, match="tokens"):
        ee_chunk(tokens=tokens)


# --- validation: accepted ------------------------------------------------------------------------------------


def test_valid_token_chunk(franka):
    validate_chunk(ee_chunk(), franka)


def test_ee_subset_and_permutation_accepted(franka):
    names = ("gripper", "z", "x")
    validate_chunk(
        ee_chunk(dimension_names=names, tokens=np.zeros(6, np.uint16), low=[], high=[], normalized=[]), franka
    )


def test_joint_chunk_accepted(joint_robot, two_arm_robot):
    validate_chunk(joint_chunk(joint_robot), joint_robot)
    validate_chunk(joint_chunk(two_arm_robot), two_arm_robot)


def test_joint_chunk_without_gripper_dims_accepted(joint_robot):
    validate_chunk(joint_chunk(joint_robot, names=joint_robot.joint_names), joint_robot)


def test_token_at_num_bins_minus_one_accepted(franka):
    validate_chunk(ee_chunk(tokens=np.full(14, 255, np.uint16)), franka)


@pytest.mark.parametrize("name", available_robots())
def test_each_config_accepts_its_own_default_action(name):
    robot = load_robot_config(name)
    names = robot.action.dimension_names
    chunk = Chunk(
        embodiment=robot.name,
        action_space=robot.action.space,
        dimension_names=names,
        dt=robot.action.dt,
        horizon=4,
        values=np.zeros(4 * len(names)),
    )
    validate_chunk(chunk, robot)


# --- validation: rejected, one cause each --------------------------------------------------------------------

REJECTED_EE = {
    "embodiment": (dict(embodiment="widowx"), "widowx"),
    "action_space": (dict(action_space="cartesian_velocity"), "action_space"),
    "unknown_dim": (dict(dimension_names=EE_NAMES[:6] + ("grip",)), "grip"),
    "repeated_dim": (dict(dimension_names=EE_NAMES[:6] + ("x",)), "repeat"),
    "no_dims": (dict(dimension_names=(), tokens=[], low=[], high=[], normalized=[]), "dimension_names"),
    "horizon_0": (dict(horizon=0, tokens=[]), "horizon"),
    "dt_0": (dict(dt=0.0), "dt"),
    "dt_negative": (dict(dt=-0.1), "dt"),
    "dt_nan": (dict(dt=float("nan")), "dt"),
    "dt_inf": (dict(dt=float("inf")), "dt"),
    "neither": (dict(tokens=[]), "neither"),
    "both": (dict(values=np.zeros(14)), "both"),
    "values_length": (dict(tokens=[], values=np.zeros(13)), "13"),
    "values_nan": (dict(tokens=[], values=[np.nan] + [0.0] * 13), "NaN"),
    "values_inf": (dict(tokens=[], values=[np.inf] + [0.0] * 13), "NaN or infinite"),
    "tokens_length": (dict(tokens=np.zeros(15, np.uint16)), "15"),
    "num_bins_missing": (dict(num_bins=0), "num_bins"),
    "num_bins_1": (dict(num_bins=1), "num_bins"),
    "token_too_large": (dict(tokens=[256] + [0] * 13), "256"),
    "low_length": (dict(low=[0.0] * 6), "lengths"),
    "normalized_length": (dict(normalized=[True] * 8), "lengths"),
    "low_above_high": (dict(low=[0.05] + [-0.02] * 5 + [0.0]), "'x'"),
    "low_nan": (dict(low=[-0.02] * 5 + [np.nan, 0.0]), "NaN"),
    "high_inf": (dict(high=[0.04] * 5 + [np.inf, 1.0]), "NaN"),
    "frame_unknown": (dict(frame_id="world"), "frame_id"),
    "absolute_in_ee_frame": (dict(action_space="ee_absolute", frame_id="ee"), "base frame"),
}


@pytest.mark.parametrize("overrides,match", REJECTED_EE.values(), ids=REJECTED_EE.keys())
def test_rejected_ee_chunk(franka, overrides, match):
    with pytest.raises(ChunkError, match=match):
        validate_chunk(ee_chunk(**overrides), franka)


def test_bounds_unchecked_on_pass_through_dims(franka):
    # the gripper dim is not normalized, so its low/high may be anything
    validate_chunk(ee_chunk(low=[-0.02] * 6 + [np.nan], high=[0.04] * 6 + [-5.0]), franka)


def test_joint_chunk_unknown_name(joint_robot):
    names = joint_robot.joint_names + ("elbow",)
    with pytest.raises(ChunkError, match="elbow"):
        validate_chunk(joint_chunk(joint_robot, names=names), joint_robot)


def test_joint_chunk_missing_joint(joint_robot):
    names = joint_robot.joint_names[1:]
    with pytest.raises(ChunkError, match=joint_robot.joint_names[0]):
        validate_chunk(joint_chunk(joint_robot, names=names), joint_robot)


def test_joint_chunk_with_ee_names(joint_robot):
    with pytest.raises(ChunkError, match="roll"):
        validate_chunk(joint_chunk(joint_robot, names=EE_NAMES), joint_robot)


def test_ee_chunk_on_two_arm_robot(two_arm_robot):
    with pytest.raises(ChunkError, match="single-arm"):
        validate_chunk(ee_chunk(embodiment="pair"), two_arm_robot)


def test_ee_chunk_with_joint_names(franka):
    names = franka.joint_names
    with pytest.raises(ChunkError, match="unknown dimensions"):
        validate_chunk(
            ee_chunk(dimension_names=names, tokens=np.zeros(14, np.uint16), low=[], high=[], normalized=[]), franka
        )


# --- frames --------------------------------------------------------------------------------------------------


def test_resolve_delta_frame(franka):
    arm = franka.arms[0].chain
    assert resolve_delta_frame("", franka) == franka.action.frame
    assert resolve_delta_frame("ee", franka) == "ee"
    assert resolve_delta_frame("base", franka) == "base"
    assert resolve_delta_frame(arm.base_link, franka) == "base"
    assert resolve_delta_frame(arm.ee_link, franka) == "ee"


# --- decoding ------------------------------------------------------------------------------------------------


def test_tokens_decode_to_bin_centers_without_bounds():
    # bins 0, 127, 254, 255 -> centers -1 + 1/255, 0, 1 - 1/255, and 255 clips to the last center 1 - 1/255
    c = Chunk(
        embodiment="franka",
        action_space="ee_delta",
        dimension_names=("x", "y"),
        dt=0.1,
        horizon=2,
        tokens=[0, 127, 254, 255],
        num_bins=256,
    )
    expected = [[-1 + 1 / 255, 0.0], [1 - 1 / 255, 1 - 1 / 255]]
    assert chunk_to_array(c) == pytest.approx(np.array(expected), abs=1e-12)


def test_tokens_decode_through_bounds():
    # bin 127 -> 0 -> midpoint of [-0.02, 0.04] = 0.01; bin 0 -> -1 + 1/255 -> 0.5*(1/255)*0.06 - 0.02;
    # the unnormalized dim keeps its bin center
    c = Chunk(
        embodiment="franka",
        action_space="ee_delta",
        dimension_names=("x", "y", "gripper"),
        dt=0.1,
        horizon=1,
        tokens=[127, 0, 254],
        num_bins=256,
        low=[-0.02, -0.02, 0],
        high=[0.04, 0.04, 1],
        normalized=[True, True, False],
    )
    out = chunk_to_array(c)
    assert out.shape == (1, 3) and out.dtype == np.float64
    low, high = float(np.float32(-0.02)), float(np.float32(0.04))  # the message carries float32 bounds
    expected = [0.5 * (high - low) + low, 0.5 * (1 / 255) * (high - low) + low, 1 - 1 / 255]
    assert out[0] == pytest.approx(expected, abs=1e-12)


def test_values_unnormalized_and_pass_through_untouched():
    values = np.array([[-1.0, 0.123456], [1.0, -3.5]], dtype=np.float32)
    c = Chunk(
        embodiment="franka",
        action_space="ee_delta",
        dimension_names=("z", "gripper"),
        dt=0.1,
        horizon=2,
        values=values,
        low=[0.1, 0.0],
        high=[0.3, 1.0],
        normalized=[True, False],
    )
    out = chunk_to_array(c)
    assert out[:, 0] == pytest.approx([np.float32(0.1), np.float32(0.3)])
    assert np.array_equal(out[:, 1], values[:, 1].astype(np.float64))


def test_chunk_to_array_rejects_malformed():
    c = Chunk(
        embodiment="franka", action_space="ee_delta", dimension_names=("x",), dt=0.1, horizon=2, values=[0.0, 1.0, 2.0]
    )
    with pytest.raises(ChunkError, match="horizon"):
        chunk_to_array(c)
    with pytest.raises(ChunkError):
        check_layout(c)


def test_ee_components_fill_missing_with_zero():
    actions = np.array([[0.1, 0.5, 1.0], [0.2, -0.5, 0.0]])
    comp = ee_components(actions, ("x", "yaw", "gripper"))
    assert comp.xyz.tolist() == [[0.1, 0, 0], [0.2, 0, 0]]
    assert comp.rpy.tolist() == [[0, 0, 0.5], [0, 0, -0.5]]
    assert comp.gripper.tolist() == [1.0, 0.0]
    assert comp.present.tolist() == [True, False, False, False, False, True]
    assert ee_components(actions[:, :2], ("x", "yaw")).gripper is None
