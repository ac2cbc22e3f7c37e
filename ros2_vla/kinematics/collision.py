"""Distances from one arm to itself and to the scene, with pinocchio's collision module (coal underneath).

The arm's capsules (`config/<robot>.yaml`, `collision:`) hang on the frames of its `ArmModel`; the scene's
boxes are fixed in the arm's base frame (the world boxes moved by the arm's base pose). Pairs checked: every
two shapes on links that are not neighbours in the chain and not `allow`ed, and every shape against every
scene box unless its link stands on the scene (`on_scene`) or the pair is allowed.
One `ArmCollisionModel` holds one pinocchio Data buffer: use one per thread.
"""

from __future__ import annotations

from dataclasses import dataclass

import coal
import numpy as np
import pinocchio as pin

from ros2_vla.actions.rotations import rpy_to_matrix
from ros2_vla.collision_config import ArmCollision, Capsule, CollisionSpec, SceneBox
from ros2_vla.config import ArmSpec
from ros2_vla.errors import ConfigError
from ros2_vla.kinematics.model import ArmModel


@dataclass(frozen=True)
class Clearance:
    """The closest pair of one kind at one configuration."""

    distance: float  # [m] between the two surfaces (negative: they overlap)
    first: str  # link name
    second: str  # link name (self) or scene box name (scene)

    def describe(self) -> str:
        return f"{self.first} {self.distance * 1e3:.0f} mm from {self.second}"


NO_PAIR = Clearance(float("inf"), "", "")


class ArmCollisionModel:
    """One arm's capsules and the scene, as a pinocchio GeometryModel on the arm's kinematic model."""

    def __init__(self, model: ArmModel, arm: ArmSpec, spec: CollisionSpec) -> None:
        shapes = spec.arms.get(arm.name)
        if shapes is None:
            raise ConfigError(f"collision: no shapes for arm {arm.name} (arms with shapes: {sorted(spec.arms)})")
        self._model = model.pinocchio_model
        self._data = self._model.createData()
        self._geometry = pin.GeometryModel()
        self._owner: list[str] = []  # geometry index -> link or scene box name
        order = {link: i for i, link in enumerate(model.link_names)}
        for capsule in shapes.shapes:
            self._add_capsule(capsule)
        T_base_world = np.linalg.inv(_base_pose(arm))
        first_box = len(self._owner)
        for box in spec.scene:
            self._add_box(box, T_base_world)
        self.self_pairs = self._pairs_self(shapes, order, first_box)
        self.scene_pairs = self._pairs_scene(shapes, first_box)
        self._geometry_data = pin.GeometryData(self._geometry)

    def clearances(self, q: np.ndarray) -> tuple[Clearance, Clearance]:
        """(closest self pair, closest scene pair) at joint positions q [rad] (n,); NO_PAIR when none is checked."""
        pin.computeDistances(self._model, self._data, self._geometry, self._geometry_data, np.asarray(q, float))
        d = np.array([r.min_distance for r in self._geometry_data.distanceResults])
        return self._closest(d, self.self_pairs), self._closest(d, self.scene_pairs)

    # --- building ---------------------------------------------------------------------------
    def _add_capsule(self, capsule: Capsule) -> None:
        frame = self._model.getFrameId(capsule.link)
        if frame >= self._model.nframes:
            raise ConfigError(f"collision: no frame {capsule.link!r} in the arm model")
        a, b = np.asarray(capsule.a, float), np.asarray(capsule.b, float)
        length = float(np.linalg.norm(b - a))
        shape = coal.Capsule(capsule.radius, length) if length > 1e-9 else coal.Sphere(capsule.radius)
        R = _z_to(b - a) if length > 1e-9 else np.eye(3)
        placement = self._model.frames[frame].placement * pin.SE3(R, (a + b) / 2.0)
        joint = self._model.frames[frame].parentJoint
        name = f"{capsule.link}_{len(self._owner)}"
        self._geometry.addGeometryObject(pin.GeometryObject(name, joint, frame, placement, shape))
        self._owner.append(capsule.link)

    def _add_box(self, box: SceneBox, T_base_world: np.ndarray) -> None:
        T = T_base_world @ _translation(box.center)
        placement = pin.SE3(T[:3, :3], T[:3, 3])
        self._geometry.addGeometryObject(pin.GeometryObject(box.name, 0, 0, placement, coal.Box(*box.size)))
        self._owner.append(box.name)

    def _pairs_self(self, shapes: ArmCollision, order: dict[str, int], first_box: int) -> np.ndarray:
        pairs = []
        for i in range(first_box):
            for j in range(i + 1, first_box):
                a, b = self._owner[i], self._owner[j]
                # Neighbours share a joint: their shapes touch there by construction.
                if abs(order[a] - order[b]) <= 1 or frozenset((a, b)) in shapes.allowed:
                    continue
                pairs.append(self._pair(i, j))
        return np.array(pairs, dtype=int)

    def _pairs_scene(self, shapes: ArmCollision, first_box: int) -> np.ndarray:
        pairs = []
        for i in range(first_box):
            link = self._owner[i]
            if link in shapes.on_scene:
                continue
            for j in range(first_box, len(self._owner)):
                if frozenset((link, self._owner[j])) not in shapes.allowed:
                    pairs.append(self._pair(i, j))
        return np.array(pairs, dtype=int)

    def _pair(self, i: int, j: int) -> tuple[int, int, int]:
        """(pair index in the geometry model, first, second)."""
        self._geometry.addCollisionPair(pin.CollisionPair(i, j))
        return len(self._geometry.collisionPairs) - 1, i, j

    def _closest(self, d: np.ndarray, pairs: np.ndarray) -> Clearance:
        if pairs.size == 0:
            return NO_PAIR
        k = int(np.argmin(d[pairs[:, 0]]))
        index, i, j = pairs[k]
        return Clearance(float(d[index]), self._owner[i], self._owner[j])


def _base_pose(arm: ArmSpec) -> np.ndarray:
    T = np.eye(4)
    T[:3, :3] = rpy_to_matrix(np.asarray(arm.base_rpy, float))
    T[:3, 3] = arm.base_xyz
    return T


def _translation(p) -> np.ndarray:
    T = np.eye(4)
    T[:3, 3] = p
    return T


def _z_to(direction: np.ndarray) -> np.ndarray:
    """A rotation taking +z onto `direction` (coal's capsules lie along their z axis)."""
    z = direction / np.linalg.norm(direction)
    helper = np.array([1.0, 0.0, 0.0]) if abs(z[0]) < 0.9 else np.array([0.0, 1.0, 0.0])
    x = np.cross(helper, z)
    x /= np.linalg.norm(x)
    return np.column_stack([x, np.cross(z, x), z])
