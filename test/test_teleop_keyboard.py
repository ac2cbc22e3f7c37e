"""Keyboard teleop core: keys to ee_delta chunk values, within the config's safety bounds."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from ros2_vla.actions.chunk import Chunk, chunk_to_array, validate_chunk
from ros2_vla.config import load_robot_config
from ros2_vla.errors import ConfigError
from ros2_vla.teleop.keyboard import HELP, KeyboardTeleop, TeleopSettings


@pytest.fixture(scope="module")
def franka():
    return load_robot_config("franka")


def _column(teleop: KeyboardTeleop, values: np.ndarray, name: str) -> np.ndarray:
    return values[:, teleop.names.index(name)]


@pytest.mark.parametrize(
    ("key", "name", "sign"),
    [
        ("w", "x", 1),
        ("s", "x", -1),
        ("a", "y", 1),
        ("d", "y", -1),
        ("r", "z", 1),
        ("f", "z", -1),
        ("u", "roll", 1),
        ("o", "roll", -1),
        ("i", "pitch", 1),
        ("k", "pitch", -1),
        ("j", "yaw", 1),
        ("l", "yaw", -1),
    ],
)
def test_each_motion_key_moves_one_axis_the_right_way(franka, key, name, sign):
    teleop = KeyboardTeleop(franka, TeleopSettings(speed=0.5))
    assert teleop.press(key) is None
    values = teleop.tick()
    rotation = name in ("roll", "pitch", "yaw")
    step = 0.5 * (franka.safety.max_rotation_per_step if rotation else franka.safety.max_translation_per_step)
    assert np.allclose(_column(teleop, values, name), sign * step)
    others = [n for n in teleop.names if n not in (name, "gripper")]
    assert np.all(values[:, [teleop.names.index(n) for n in others]] == 0)
    assert np.all(_column(teleop, values, "gripper") == 1.0)  # open, franka's convention (1 = open)


def test_a_key_asks_for_a_short_burst_at_the_action_dt(franka):
    teleop = KeyboardTeleop(franka, TeleopSettings(key_duration=0.3))
    teleop.press("w")
    values = teleop.tick()
    assert values.shape == (3, len(franka.action.dimension_names)) and values.dtype == np.float32  # 0.3 s at 0.1 s
    widowx = load_robot_config("widowx")  # dt 0.2 s: 0.3 s rounds up to 2 steps
    assert KeyboardTeleop(widowx, TeleopSettings(key_duration=0.3)).horizon == 2


def test_no_key_no_chunk_and_each_press_is_used_once(franka):
    teleop = KeyboardTeleop(franka)
    assert teleop.tick() is None
    teleop.press("w")
    assert teleop.tick() is not None
    assert teleop.tick() is None  # releasing the key stops the stream: the bridge holds


def test_steps_never_exceed_the_safety_maximum(franka):
    teleop = KeyboardTeleop(franka, TeleopSettings(speed=1.0))
    for _ in range(5):
        teleop.press("+")  # already at the maximum
    teleop.press("w"), teleop.press("a"), teleop.press("r")  # three axes in one tick: diagonal
    values = teleop.tick().astype(np.float64)
    xyz = values[:, [teleop.names.index(n) for n in ("x", "y", "z")]]
    assert np.allclose(np.linalg.norm(xyz, axis=1), franka.safety.max_translation_per_step)
    assert np.allclose(xyz[0], xyz[0, 0])  # equal parts
    teleop.press("u"), teleop.press("j")
    values = teleop.tick().astype(np.float64)
    rpy = values[:, [teleop.names.index(n) for n in ("roll", "pitch", "yaw")]]
    assert np.all(np.linalg.norm(rpy, axis=1) <= franka.safety.max_rotation_per_step + 1e-6)


def test_speed_keys_scale_the_step_within_bounds(franka):
    teleop = KeyboardTeleop(franka, TeleopSettings(speed=0.2))
    assert "speed 0.30" in teleop.press("+")
    teleop.press("-"), teleop.press("-")
    assert teleop.speed == pytest.approx(0.2 / 1.5)
    for _ in range(30):
        teleop.press("-")
    assert teleop.speed > 0  # a floor, never zero or negative
    for _ in range(30):
        teleop.press("+")
    assert teleop.speed == 1.0


def test_space_toggles_the_gripper_and_sends_a_still_chunk(franka):
    teleop = KeyboardTeleop(franka)
    assert teleop.press(" ") == "gripper close"
    values = teleop.tick()
    assert np.all(_column(teleop, values, "gripper") == 0.0)  # franka: 0 = closed
    motion = [teleop.names.index(n) for n in teleop.names if n != "gripper"]
    assert np.all(values[:, motion] == 0)
    teleop.press("w")
    assert np.all(_column(teleop, teleop.tick(), "gripper") == 0.0)  # stays closed while moving
    assert teleop.press(" ") == "gripper open"
    assert np.all(_column(teleop, teleop.tick(), "gripper") == 1.0)


def test_gripper_value_follows_an_inverted_convention(franka):
    arm = franka.arms[0]
    inverted = dataclasses.replace(
        franka, arms=(dataclasses.replace(arm, gripper=dataclasses.replace(arm.gripper, invert=True)),)
    )
    teleop = KeyboardTeleop(inverted)
    teleop.press(" ")  # close: this policy convention says 1 = closed
    assert np.all(_column(teleop, teleop.tick(), "gripper") == 1.0)


def test_hold_key_sends_a_zero_motion_chunk(franka):
    teleop = KeyboardTeleop(franka)
    teleop.press("w")
    teleop.press(".")
    values = teleop.tick()
    assert values is not None and np.all(values[:, :6] == 0)


def test_chunks_validate_for_the_bridge_and_decode_to_the_same_values(franka):
    teleop = KeyboardTeleop(franka)
    teleop.press("d")
    values = teleop.tick()
    chunk = Chunk(
        embodiment=franka.name,
        action_space=franka.action.space,
        dimension_names=teleop.names,
        dt=franka.action.dt,
        horizon=values.shape[0],
        values=values,
    )
    validate_chunk(chunk, franka)
    assert np.allclose(chunk_to_array(chunk), values)


def test_help_unknown_keys_and_uppercase(franka):
    teleop = KeyboardTeleop(franka)
    assert teleop.press("h") == HELP
    assert "does nothing" in teleop.press("z")
    assert teleop.tick() is None
    teleop.press("W")  # caps lock on
    assert _column(teleop, teleop.tick(), "x")[0] > 0


def test_joint_position_robots_are_refused_clearly():
    with pytest.raises(ConfigError, match="aloha.*joint_position.*ee_delta"):
        KeyboardTeleop(load_robot_config("aloha"))


@pytest.mark.parametrize("kwargs", [{"speed": 0.0}, {"speed": 1.5}, {"key_duration": 0.0}])
def test_bad_settings_are_refused(kwargs):
    with pytest.raises(ConfigError):
        TeleopSettings(**kwargs)
