"""The bridge's collision model as `config/<robot>.yaml` writes it (`collision:`, read by `config.py`):
capsules on each link, the link pairs never checked, the static scene, and the distances where motion
slows and stops; and the scene boxes bridge_node's `collision_boxes` adds.

No ROS and no pinocchio here: this is data. `ros2_vla.kinematics.collision` builds the geometry, and
`ros2_vla.bridge.clearance` turns distances into a slower or shorter plan.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, replace

import numpy as np

from ros2_vla.errors import ConfigError

CHECK_COLLISIONS = True  # the bridge checks planned steps unless told not to (bridge_node's check_collisions)


@dataclass(frozen=True)
class Capsule:
    """A capsule on one link: the segment a-b [m] in the link's frame, grown by `radius` [m] (a == b: a sphere)."""

    link: str
    a: tuple[float, float, float]
    b: tuple[float, float, float]
    radius: float

    def __post_init__(self) -> None:
        if not self.radius > 0.0:
            raise ConfigError(f"collision capsule on {self.link}: radius must be > 0, got {self.radius}")


@dataclass(frozen=True)
class SceneBox:
    """A fixed box of the scene, axis-aligned in the world frame: centre and full edge lengths [m]."""

    name: str
    center: tuple[float, float, float]
    size: tuple[float, float, float]

    def __post_init__(self) -> None:
        if not self.name:
            raise ConfigError("a collision scene box needs a name")
        if min(self.size) <= 0.0:
            raise ConfigError(f"collision scene box {self.name}: every size must be > 0, got {list(self.size)}")


@dataclass(frozen=True)
class ArmCollision:
    """One arm's shapes and the pairs never checked (link names as in the arm's chain, prefix applied)."""

    shapes: tuple[Capsule, ...]
    allowed: frozenset[frozenset[str]]  # {link, link} or {link, scene box} pairs left out
    # Links that stand on the scene (the base on the table): never checked against it
    on_scene: frozenset[str]

    def renamed(self, links: dict[str, str]) -> ArmCollision:
        """The same shapes on other link names (a variant's chain); names not in `links` stay."""
        return ArmCollision(
            tuple(replace(c, link=links.get(c.link, c.link)) for c in self.shapes),
            frozenset(frozenset(links.get(n, n) for n in pair) for pair in self.allowed),
            frozenset(links.get(n, n) for n in self.on_scene),
        )


@dataclass(frozen=True)
class CollisionSpec:
    """What the bridge checks every planned step against, and how close is too close.

    Slowing follows MoveIt Servo's collision scaling: inside a proximity threshold the speed is
    exp(-ln(1000) (threshold - d) / threshold), 1 at the threshold and 0.001 at contact, and only while the
    distance shrinks (moving away is never slowed). A step that would come closer than `halt_distance`
    is not played: the plan stops at the step before.
    """

    arms: dict[str, ArmCollision]  # arm name -> its shapes
    scene: tuple[SceneBox, ...]
    self_proximity: float  # [m] self-collision distance where slowing starts
    scene_proximity: float  # [m] scene distance where slowing starts
    halt_distance: float  # [m] a step closer than this (and closing in) ends the plan

    def __post_init__(self) -> None:
        if not 0.0 <= self.halt_distance < min(self.self_proximity, self.scene_proximity):
            raise ConfigError(
                f"collision: need 0 <= halt_distance ({self.halt_distance}) < self_proximity "
                f"({self.self_proximity}) and scene_proximity ({self.scene_proximity})"
            )

    def with_boxes(self, boxes: Iterable[SceneBox]) -> CollisionSpec:
        """The same spec with more scene boxes (bridge_node's `collision_boxes`)."""
        extra = tuple(boxes)
        names = [b.name for b in (*self.scene, *extra)]
        twice = sorted({n for n in names if names.count(n) > 1})
        if twice:
            raise ConfigError(f"collision scene: box names {twice} are used twice")
        return CollisionSpec(
            self.arms, self.scene + extra, self.self_proximity, self.scene_proximity, self.halt_distance
        )


def parse_boxes(text: str) -> tuple[SceneBox, ...]:
    """Scene boxes from `;`-separated `parse_box` texts ("" gives none)."""
    return tuple(parse_box(part) for part in text.split(";") if part.strip())


def parse_box(text: str) -> SceneBox:
    """A scene box from `NAME X Y Z SX SY SZ` (centre and full sizes [m], world frame), as bridge_node's
    `collision_boxes` parameter writes each one."""
    parts = text.split()
    try:
        if len(parts) != 7:
            raise ValueError
        values = [float(p) for p in parts[1:]]
    except ValueError:
        raise ConfigError(
            f"collision box {text!r}: write NAME X Y Z SX SY SZ (centre and full sizes [m] in the world frame), "
            "e.g. 'shelf 0.5 0.3 0.2 0.3 0.6 0.02'"
        ) from None
    if not np.all(np.isfinite(values)):
        raise ConfigError(f"collision box {text!r}: numbers must be finite")
    return SceneBox(parts[0], tuple(values[:3]), tuple(values[3:]))
