"""Keyboard end-effector teleoperation: keys to ee_delta action chunks. No ROS here.

A key press asks for a short burst of motion (`key_duration`, 0.3 s by default) along one axis, so a
terminal's auto-repeat turns a held key into a stream of chunks that overlap (smooth motion) and a
released key stops the arm within that burst. No key, no chunk: the bridge then holds the arm.

    teleop = KeyboardTeleop(load_robot_config("franka"))
    teleop.press("w")               # +x, queued until the next tick
    values = teleop.tick()          # (H, D) float32 in robot.action.dimension_names order, or None

Translation is in the arm base frame (x forward, y left, z up: the config's `action.frame`), rotation
is roll/pitch/yaw about the TCP point, as the bridge reads ee_delta chunks. A step never exceeds the
config's `safety.max_translation_per_step` / `max_rotation_per_step`: `speed` is the fraction of them.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from ros2_vla.actions.spaces import EE_DELTA, EE_ROTATION, EE_TRANSLATION, GRIPPER
from ros2_vla.config import RobotConfig
from ros2_vla.errors import ConfigError

# key -> (dimension name, sign)
MOTION_KEYS: dict[str, tuple[str, float]] = {
    "w": ("x", 1.0),
    "s": ("x", -1.0),
    "a": ("y", 1.0),
    "d": ("y", -1.0),
    "r": ("z", 1.0),
    "f": ("z", -1.0),
    "u": ("roll", 1.0),
    "o": ("roll", -1.0),
    "i": ("pitch", 1.0),
    "k": ("pitch", -1.0),
    "j": ("yaw", 1.0),
    "l": ("yaw", -1.0),
}
GRIPPER_KEY = " "
FASTER_KEYS = ("+", "=")  # "=" is "+" without shift on most layouts
SLOWER_KEYS = ("-", "_")
HOLD_KEY = "."
HELP_KEYS = ("h", "?")
QUIT_KEYS = ("q", "\x03", "\x04")  # q, Ctrl-C (arrives as a key where the terminal sends no SIGINT), Ctrl-D
SPEED_FACTOR = 1.5  # +/- multiply or divide the speed by this
MIN_SPEED = 0.02  # fraction of the per-step safety maximum

HELP = """keyboard teleop (end-effector deltas in the arm base frame):
  w/s  +x/-x (forward/back)    a/d  +y/-y (left/right)    r/f  +z/-z (up/down)
  u/o  +roll/-roll             i/k  +pitch/-pitch         j/l  +yaw/-yaw
  space  toggle the gripper    +/-  faster/slower         .  hold now
  h  this help                 q or Ctrl-C  quit
Hold a key to keep moving; release it and the arm stops within a fraction of a second."""


@dataclass(frozen=True)
class TeleopSettings:
    """How far and how long one key press moves the arm."""

    speed: float = 0.25  # fraction (0, 1] of the config's per-step translation/rotation maximum
    key_duration: float = 0.3  # [s] motion one key press asks for (rounded up to whole action steps)

    def __post_init__(self) -> None:
        if not 0.0 < self.speed <= 1.0:
            raise ConfigError(
                f"teleop speed must be in (0, 1] (a fraction of the safety maximum per step), got {self.speed}"
            )
        if not self.key_duration > 0.0:
            raise ConfigError(f"teleop key_duration must be > 0 s, got {self.key_duration}")


class KeyboardTeleop:
    """Turns key presses into ee_delta chunk values for one single-arm robot."""

    def __init__(self, robot: RobotConfig, settings: TeleopSettings = TeleopSettings()) -> None:
        if robot.action.space != EE_DELTA:
            raise ConfigError(
                f"keyboard teleop sends end-effector deltas, but {robot.name}'s action space is "
                f"{robot.action.space!r} ({len(robot.action.dimension_names)} dims): it drives ee_delta robots only "
                "(e.g. franka, widowx); record this robot with a leader arm or the sim's expert (--expert)"
            )
        self.robot = robot
        self.names = tuple(robot.action.dimension_names)
        self.index = {n: i for i, n in enumerate(self.names)}
        self.speed = settings.speed
        self.horizon = max(1, math.ceil(settings.key_duration / robot.action.dt - 1e-9))
        self.gripper = robot.arms[0].gripper if GRIPPER in self.index else None
        self.gripper_open = True  # the sim resets with the gripper open; a real arm is opened by the first toggle
        self._direction = np.zeros(len(self.names))  # unit direction asked for since the last tick
        self._pending = False  # a chunk is due at the next tick (motion, gripper change or hold)

    # --- step sizes ---------------------------------------------------------------------------
    @property
    def translation_step(self) -> float:
        """[m] per action step at the current speed."""
        return self.speed * self.robot.safety.max_translation_per_step

    @property
    def rotation_step(self) -> float:
        """[rad] per action step at the current speed."""
        return self.speed * self.robot.safety.max_rotation_per_step

    def gripper_value(self) -> float:
        """The gripper action for the current open/closed state, in the policy convention of the config."""
        opened = self.gripper_open != self.gripper.invert  # invert: the policy's 1 means closed
        return 1.0 if opened else 0.0

    # --- keys ---------------------------------------------------------------------------------
    def press(self, key: str) -> str | None:
        """Take one key. Returns a line to show the operator (help, speed, gripper, unknown key) or None."""
        key = key.lower() if key.isalpha() else key
        if key in MOTION_KEYS:
            name, sign = MOTION_KEYS[key]
            if name not in self.index:
                return f"{self.robot.name} has no {name!r} action dimension; key {key!r} does nothing"
            self._direction[self.index[name]] = sign  # the latest key on an axis wins
            self._pending = True
            return None
        if key == GRIPPER_KEY:
            if self.gripper is None:
                return f"{self.robot.name} has no gripper dimension"
            self.gripper_open = not self.gripper_open
            self._pending = True
            return f"gripper {'open' if self.gripper_open else 'close'}"
        if key in FASTER_KEYS or key in SLOWER_KEYS:
            factor = SPEED_FACTOR if key in FASTER_KEYS else 1.0 / SPEED_FACTOR
            self.speed = float(np.clip(self.speed * factor, MIN_SPEED, 1.0))
            return (
                f"speed {self.speed:.2f}: {self.translation_step / self.robot.action.dt:.3f} m/s, "
                f"{self.rotation_step / self.robot.action.dt:.2f} rad/s"
            )
        if key == HOLD_KEY:
            self._direction[:] = 0.0
            self._pending = True
            return "hold"
        if key in HELP_KEYS:
            return HELP
        if key in ("\n", "\r", "\t") or not key.isprintable():
            return None
        return f"key {key!r} does nothing; h for help"

    def tick(self) -> np.ndarray | None:
        """The chunk values for the keys since the last tick: (H, D) float32, or None when none is due.

        Motion rows carry the asked direction scaled to the current speed: the translation's norm is
        `translation_step`, the rotation's `rotation_step`, both within the safety maximum per step;
        other dims are 0, the gripper dim its current state. A hold or gripper-only chunk has no motion.
        """
        if not self._pending:
            return None
        row = np.zeros(len(self.names))
        for names, step in ((EE_TRANSLATION, self.translation_step), (EE_ROTATION, self.rotation_step)):
            cols = [self.index[n] for n in names if n in self.index]
            direction = self._direction[cols]
            norm = np.linalg.norm(direction)
            if norm > 0:  # two axes at once move diagonally at the same speed, never beyond the maximum
                row[cols] = direction / norm * step
        if self.gripper is not None:
            row[self.index[GRIPPER]] = self.gripper_value()
        self._direction[:] = 0.0
        self._pending = False
        return np.tile(row, (self.horizon, 1)).astype(np.float32)


def is_quit(key: str) -> bool:
    return key in QUIT_KEYS or key == "Q"
