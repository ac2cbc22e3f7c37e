"""Random object layouts at reset: where the bowl and the cubes start, in world x-y.

Each object goes to one arm (round-robin over the arms, shuffled per layout), inside that arm's
spawn box (`scene.arm_spawn_box`) and nearer that arm's base than any other's, so every arm of a
bimanual robot gets cubes on its own side. Footprints (circles around the objects) stay
`SceneSpec.clearance` apart, room for the open pads to come down between them.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np

from ros2_vla.config import RobotConfig
from ros2_vla.errors import ConfigError
from ros2_vla.sim.scene import BOWL, SceneSpec, arm_spawn_box

_LAYOUT_TRIES = 100  # whole layouts: an unlucky early object can leave no room for the rest
_OBJECT_TRIES = 200


class Placement(NamedTuple):
    """Where one object starts at reset: its body name, world position and yaw."""

    name: str  # object body name
    xyz: np.ndarray  # [m] (3,) world position of the body origin, resting on the table
    yaw: float  # [rad] about world z


def object_footprint(name: str, scene: SceneSpec) -> float:
    """[m] radius of the circle an object covers on the table."""
    return scene.bowl_radius + 0.01 if name == BOWL else scene.cube_size / math.sqrt(2)


def random_layout(robot: RobotConfig, scene: SceneSpec, rng: np.random.Generator) -> list[Placement]:
    """Bowl first (the largest), then the cubes; raises ConfigError when the boxes are too small."""
    names = (BOWL, *(n for n in scene.object_names if n != BOWL))
    for _ in range(_LAYOUT_TRIES):
        order = rng.permutation(len(robot.arms))
        xy = _try_layout(robot, scene, rng, names, [int(order[k % len(order)]) for k in range(len(names))])
        if xy is not None:
            break
    else:
        raise ConfigError(
            f"no room for {names} in the arms' spawn boxes with clearance {scene.clearance} m: "
            "raise SceneSpec.spawn_fraction or lower its clearance"
        )
    out = []
    for name, p in zip(names, xy):
        z = scene.table_height if name == BOWL else scene.table_height + scene.cube_size / 2
        out.append(Placement(name, np.array([p[0], p[1], z]), float(rng.uniform(-math.pi, math.pi))))
    return out


def _try_layout(
    robot: RobotConfig, scene: SceneSpec, rng: np.random.Generator, names, arms: list[int]
) -> list[np.ndarray] | None:
    """x-y [m] of each object near its arm (index); None when one does not fit."""
    bases = np.array([arm.base_xyz[:2] for arm in robot.arms])
    placed: list[tuple[np.ndarray, float]] = []
    for name, k in zip(names, arms):
        radius = object_footprint(name, scene)
        box = arm_spawn_box(robot, robot.arms[k], scene)
        for _ in range(_OBJECT_TRIES):
            xy = rng.uniform(box.lo, box.hi)
            nearest = int(np.argmin(np.linalg.norm(bases - xy, axis=1)))
            if nearest == k and all(np.linalg.norm(xy - p) >= radius + r + scene.clearance for p, r in placed):
                placed.append((xy, radius))
                break
        else:
            return None
    return [p for p, _ in placed]
