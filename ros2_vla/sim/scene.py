"""What the simulated workspace holds besides the robot: table, cubes, bowl, and where objects may spawn.

Everything about the robot itself (chains, bases, grippers, cameras, workspace boxes) comes from the
robot's `RobotConfig`; this spec only sizes the props and the stand-in gripper, so one spec serves
every robot. Frames: world, z up, the table top at `table_height`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

import numpy as np

from ros2_vla.actions.rotations import rpy_to_matrix
from ros2_vla.config import ArmSpec, ChainSpec, RobotConfig
from ros2_vla.errors import ConfigError

# RGBA of the colors a cube may have; task instructions name them.
COLORS: dict[str, tuple[float, float, float, float]] = {
    "red": (0.85, 0.12, 0.10, 1.0),
    "green": (0.12, 0.65, 0.20, 1.0),
    "blue": (0.10, 0.25, 0.85, 1.0),
    "yellow": (0.90, 0.80, 0.10, 1.0),
}
BOWL = "bowl"  # body name of the bowl


def cube_name(color: str) -> str:
    """Body name of the cube of that color."""
    return f"{color}_cube"


@dataclass(frozen=True)
class SceneSpec:
    """The simulated workspace besides the robot: physics step, table, cubes, bowl, fingers, servos and spawning."""

    timestep: float = 0.002  # [s] physics step
    table_height: float = 0.0  # [m] world z of the table top (the arm bases stand on it)
    cube_colors: tuple[str, ...] = ("red", "green", "blue")  # one cube each, keys of COLORS
    cube_size: float = 0.04  # [m] cube edge
    cube_mass: float = 0.05  # [kg]
    bowl_radius: float = 0.075  # [m] inner radius of the bowl
    bowl_wall_height: float = 0.04  # [m] rim height above the table
    bowl_mass: float = 0.4  # [kg] heavy enough that a dropped cube does not tip it
    finger_travel: float = 0.04  # [m] per finger, closed to fully open (8 cm between open pads)
    finger_force: float = 40.0  # [N] most a finger squeezes with
    friction: float = 1.5  # sliding friction of finger pads and objects
    shadows: bool = False  # the key light casts shadows: nicer images, but 2.5x the render time on CPU (Mesa)
    servo_hz: float = 8.0  # [Hz] natural frequency of the joint position servos (critically damped)
    spawn_fraction: float = 0.5  # objects spawn in this central fraction of each arm's workspace box (x, y)
    clearance: float = 0.05  # [m] least gap between object footprints at reset (room for the open pads)

    def __post_init__(self) -> None:
        unknown = [c for c in self.cube_colors if c not in COLORS]
        if unknown or len(set(self.cube_colors)) != len(self.cube_colors) or not self.cube_colors:
            raise ConfigError(f"scene cube_colors {self.cube_colors}: give distinct colors from {sorted(COLORS)}")
        positive = (
            "timestep",
            "cube_size",
            "cube_mass",
            "bowl_radius",
            "bowl_wall_height",
            "bowl_mass",
            "finger_travel",
            "finger_force",
            "friction",
            "servo_hz",
            "clearance",
        )
        bad = [f for f in positive if not getattr(self, f) > 0]
        if bad:
            raise ConfigError(f"scene fields {bad} must be positive")
        if not 0 < self.spawn_fraction <= 1:
            raise ConfigError(f"scene spawn_fraction {self.spawn_fraction} must be in (0, 1]")
        if 2 * self.finger_travel <= self.cube_size:
            raise ConfigError(f"scene finger_travel {self.finger_travel} m opens less than the {self.cube_size} m cube")

    @property
    def object_names(self) -> tuple[str, ...]:
        """Body names of the free objects: the cubes, then the bowl."""
        return (*(cube_name(c) for c in self.cube_colors), BOWL)


class Box2(NamedTuple):
    """An axis-aligned box in world x-y: its lower and upper corners."""

    lo: np.ndarray  # [m] (2,) world x, y
    hi: np.ndarray  # [m] (2,)


def camera_rotation(rpy) -> np.ndarray:
    """Rotation (3, 3) of a camera in its mount frame from the config's camera `rpy` [rad].

    Camera orientations in `config/<robot>.yaml` use MuJoCo's default euler sequence, intrinsic x-y-z:
    `R = Rx(roll) @ Ry(pitch) @ Rz(yaw)` (unlike joint origins, which are URDF fixed-axis rpy). The
    camera looks along its -z axis with +y up (MuJoCo and OpenGL convention).
    """
    r, p, y = (float(v) for v in rpy)
    Rx, Ry, Rz = (rpy_to_matrix(np.array(v)) for v in ([r, 0.0, 0.0], [0.0, p, 0.0], [0.0, 0.0, y]))
    return Rx @ Ry @ Rz


def gripper_frame(chain: ChainSpec) -> np.ndarray:
    """`R_tcp_gripper` (3, 3): the stand-in gripper's axes in the TCP frame.

    Columns: x = y cross z, y = the direction the pads slide apart, z = the approach direction (out of
    the gripper). The config names no approach axis, so it is taken as the TCP offset's direction
    seen from the TCP (the gripper points away from the wrist: FR3 +z, Interbotix +x), snapped to the
    nearest TCP axis; the pads slide along TCP y, or TCP x when y is the approach.
    """
    R_ee = rpy_to_matrix(np.asarray(chain.ee_rpy, dtype=float))
    offset = R_ee.T @ np.asarray(chain.ee_xyz, dtype=float)
    z = np.zeros(3)
    if np.linalg.norm(offset) < 1e-6:
        z[2] = 1.0
    else:
        k = int(np.argmax(np.abs(offset)))
        z[k] = np.sign(offset[k])
    y = np.array([1.0, 0.0, 0.0]) if abs(z[1]) > 0 else np.array([0.0, 1.0, 0.0])
    return np.column_stack([np.cross(y, z), y, z])


def base_transform(arm: ArmSpec) -> np.ndarray:
    """`T_world_base` (4, 4) of one arm, from its configured base pose."""
    T = np.eye(4)
    T[:3, :3] = rpy_to_matrix(np.asarray(arm.base_rpy))
    T[:3, 3] = arm.base_xyz
    return T


def arm_spawn_box(robot: RobotConfig, arm: ArmSpec, scene: SceneSpec) -> Box2:
    """The central `spawn_fraction` of the arm's safety workspace box (base frame), as a world x-y box.

    The workspace box is what the bridge lets the TCP reach, so objects placed in its middle are
    reachable from above without touching the box's edges.
    """
    lo, hi = np.asarray(robot.safety.workspace_min), np.asarray(robot.safety.workspace_max)
    centre, half = (lo + hi) / 2, (hi - lo) / 2 * scene.spawn_fraction
    corners = np.array(
        [[centre[0] + sx * half[0], centre[1] + sy * half[1], 0.0, 1.0] for sx in (-1, 1) for sy in (-1, 1)]
    )
    world = (base_transform(arm) @ corners.T).T[:, :2]
    return Box2(world.min(axis=0), world.max(axis=0))


def table_box(robot: RobotConfig, scene: SceneSpec, margin: float = 0.25) -> Box2:
    """World x-y extent of the table top: every arm base and whole workspace box, plus `margin` [m]."""
    pts = []
    lo, hi = np.asarray(robot.safety.workspace_min), np.asarray(robot.safety.workspace_max)
    for arm in robot.arms:
        T = base_transform(arm)
        pts.append(T[:2, 3])
        for x in (lo[0], hi[0]):
            for y in (lo[1], hi[1]):
                pts.append((T @ np.array([x, y, 0.0, 1.0]))[:2])
    pts = np.array(pts)
    return Box2(pts.min(axis=0) - margin, pts.max(axis=0) + margin)
