"""The bridge's collision model as `config/<robot>.yaml` writes it (`collision:`): capsules on each link,
the link pairs never checked, the static scene, and the distances where motion slows and stops.

No ROS and no pinocchio here: this is data. `ros2_vla.kinematics.collision` builds the geometry, and
`ros2_vla.bridge.clearance` turns distances into a slower or shorter plan.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, replace

import numpy as np

from ros2_vla.errors import ConfigError


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


def parse_collision(raw: dict | None, chain_key: str, prefix: str, links: tuple[str, ...]) -> ArmCollision | None:
    """One arm's part of the `collision:` section: the shapes of chain `chain_key`, names prefixed.
    None when the file has no collision section; ConfigError when it has one but not for this chain."""
    if raw is None:
        return None
    chains = raw.get("chains", {})
    if chain_key not in chains:
        raise ConfigError(f"collision: no shapes for chain {chain_key!r} (chains with shapes: {sorted(chains)})")
    entry = chains[chain_key]
    known = set(links)
    scene = {b["name"] for b in raw.get("scene", [])}

    def link(name: str, where: str, also: frozenset[str] | set[str] = frozenset()) -> str:
        full = prefix + name
        if full not in known and name not in also:
            raise ConfigError(f"collision {where}: {name!r} is not a link of chain {chain_key} ({sorted(links)})")
        return full if full in known else name

    shapes = tuple(
        Capsule(link(s["link"], "shape"), _vec3(s["a"]), _vec3(s.get("b", s["a"])), float(s["radius"]))
        for s in entry["shapes"]
    )
    allowed = frozenset(frozenset(link(n, "allow", scene) for n in pair) for pair in entry.get("allow", []))
    on_scene = frozenset(link(n, "on_scene") for n in entry.get("on_scene", []))
    return ArmCollision(shapes, allowed, on_scene)


def parse_spec(raw: dict, arms: dict[str, ArmCollision]) -> CollisionSpec:
    """The robot-wide part: scene boxes and thresholds, around each arm's shapes."""
    scene = tuple(SceneBox(b["name"], _vec3(b["center"]), _vec3(b["size"])) for b in raw.get("scene", []))
    return CollisionSpec(
        arms,
        scene,
        float(raw["self_proximity"]),
        float(raw["scene_proximity"]),
        float(raw["halt_distance"]),
    )


def _vec3(v) -> tuple[float, float, float]:
    out = tuple(float(x) for x in v)
    if len(out) != 3:
        raise ConfigError(f"collision: expected 3 numbers, got {list(v)}")
    return out
