"""Gripper action value to gripper joint position."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from ros2_vla.actions.gripper import gripper_command, gripper_commands, gripper_openness
from ros2_vla.config import GripperSpec, load_robot_config
from ros2_vla.errors import ChunkError

FRANKA_HAND = GripperSpec(
    joint="finger",
    open_position=0.04,
    closed_position=0.0,
    velocity=0.1,
    mode="separate",
    topic="/gripper",
    binarize=True,
    threshold=0.5,
    invert=False,
)
CONTINUOUS = dataclasses.replace(FRANKA_HAND, binarize=False)


def test_binarized_hand_values():
    # >= 0.5 is open (0.04 m), below is closed (0 m); the threshold itself counts as open
    assert [gripper_command(v, FRANKA_HAND) for v in (0.7, 0.2, 0.5, 0.4999)] == [0.04, 0.0, 0.04, 0.0]


def test_inverted_policy_swaps_ends():
    spec = dataclasses.replace(FRANKA_HAND, invert=True)
    assert gripper_command(0.9, spec) == 0.0
    assert gripper_command(0.1, spec) == 0.04


def test_continuous_maps_linearly():
    # 0.25 of the way from closed 0 to open 0.04 -> 0.01; 1.5 and -0.3 clip to the ends
    assert gripper_command(0.25, CONTINUOUS) == pytest.approx(0.01)
    assert gripper_command(1.5, CONTINUOUS) == 0.04
    assert gripper_command(-0.3, CONTINUOUS) == 0.0


def test_continuous_inverted():
    # invert: 1 - 0.25 = 0.75 open -> 0.03
    assert gripper_command(0.25, dataclasses.replace(CONTINUOUS, invert=True)) == pytest.approx(0.03)


def test_closed_above_open():
    # a joint that closes towards larger values: open 0.2, closed 1.0; openness 0.25 -> 0.8
    spec = dataclasses.replace(CONTINUOUS, open_position=0.2, closed_position=1.0)
    assert gripper_command(0.25, spec) == pytest.approx(0.8)


def test_nan_raises():
    with pytest.raises(ChunkError, match="finger"):
        gripper_command(float("nan"), FRANKA_HAND)


def test_array_matches_scalar():
    values = np.array([[0.1, 0.6], [0.5, 0.3]])
    out = gripper_commands(values, CONTINUOUS)
    assert out.shape == (2, 2)
    assert out.tolist() == [[gripper_command(v, CONTINUOUS) for v in row] for row in values]


def test_config_gripper_spec_works():
    spec = load_robot_config("franka").arms[0].gripper
    assert gripper_command(1.0, spec) == spec.open_position
    assert gripper_command(0.0, spec) == spec.closed_position


positions = st.floats(-3.0, 3.0, allow_nan=False)
actions = st.floats(-10.0, 10.0, allow_nan=False)


@st.composite
def specs(draw):
    return dataclasses.replace(
        FRANKA_HAND,
        open_position=draw(positions),
        closed_position=draw(positions),
        binarize=draw(st.booleans()),
        threshold=draw(st.floats(0.0, 1.0)),
        invert=draw(st.booleans()),
    )


@given(spec=specs(), a=actions)
def test_always_within_joint_range(spec, a):
    lo, hi = sorted((spec.open_position, spec.closed_position))
    assert lo <= gripper_command(a, spec) <= hi


@given(spec=specs(), a=actions, b=actions)
def test_openness_monotonic(spec, a, b):
    lo, hi = min(a, b), max(a, b)
    o_lo, o_hi = gripper_openness(np.array([lo, hi]), spec)
    if spec.invert:
        assert o_lo >= o_hi
    else:
        assert o_lo <= o_hi
    # and the joint moves towards open as openness grows
    p_lo, p_hi = gripper_commands(np.array([lo, hi]), spec)
    towards_open = np.sign(spec.open_position - spec.closed_position)
    assert towards_open * (p_hi - p_lo) * (1 if not spec.invert else -1) >= -1e-12


@given(spec=specs(), a=actions)
def test_binarize_gives_only_end_values(spec, a):
    spec = dataclasses.replace(spec, binarize=True)
    assert gripper_command(a, spec) in (spec.open_position, spec.closed_position)
