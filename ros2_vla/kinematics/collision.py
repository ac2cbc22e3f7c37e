"""Distances from one arm to itself and to the scene, with pinocchio's collision module (coal underneath),
and between the arms of a robot with several (ALOHA's two).

The arm's capsules (`config/<robot>.yaml`, `collision:`) hang on the frames of its `ArmModel`; the scene's
boxes are fixed in the arm's base frame (the world boxes moved by the arm's base pose). Pairs checked: every
two shapes on links that are not neighbours in the chain and not `allow`ed, and every shape against every
scene box unless its link stands on the scene (`on_scene`) or the pair is allowed.
Between two arms every capsule of one is checked against every capsule of the other, in the world frame
(each arm's base pose): capsule distances are segment distances less the radii, computed for all pairs at
once with numpy (the same numbers as coal's, `test_collision.py` compares them).
One `ArmCollisionModel` or `ArmPairCollision` holds one pinocchio Data buffer: use one per thread.
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
        # Two geometry models of the same shapes: one holds the self pairs, the other the scene pairs, so
        # that one computeDistances call each gives its kind's closest pair (its return value) without
        # reading every pair's result from Python (three quarters of the check's time before).
        self._geometry = pin.GeometryModel()
        self._scene_geometry = pin.GeometryModel()
        self._owner: list[str] = []  # geometry index -> link or scene box name
        order = {link: i for i, link in enumerate(model.link_names)}
        self._half_lengths: list[float] = []  # per capsule: half its segment [m]
        self._radii: list[float] = []
        for capsule in shapes.shapes:
            self._add_capsule(capsule)
        self.capsule_links = tuple(self._owner)  # the link of each capsule, in order
        self.T_world_base = _base_pose(arm)
        T_base_world = np.linalg.inv(self.T_world_base)
        first_box = len(self._owner)
        for box in spec.scene:
            self._add_box(box, T_base_world)
        self.self_pairs = self._pairs_self(shapes, order, first_box)
        self.scene_pairs = self._pairs_scene(shapes, first_box)
        self._geometry_data = pin.GeometryData(self._geometry)
        self._scene_data = pin.GeometryData(self._scene_geometry)

    def clearances(self, q: np.ndarray) -> tuple[Clearance, Clearance]:
        """(closest self pair, closest scene pair) at joint positions q [rad] (n,); NO_PAIR when none is checked."""
        pin.updateGeometryPlacements(self._model, self._data, self._geometry, self._geometry_data, np.asarray(q, float))
        pin.updateGeometryPlacements(self._model, self._data, self._scene_geometry, self._scene_data)
        return (
            self._closest(self._geometry, self._geometry_data, self.self_pairs),
            self._closest(self._scene_geometry, self._scene_data, self.scene_pairs),
        )

    def segments(self, q: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Each capsule at joint positions q [rad] (n,) in the world frame: its segment's ends (m, 3), (m, 3)
        [m] and its radius (m,) [m]."""
        pin.framesForwardKinematics(self._model, self._data, np.asarray(q, float))
        pin.updateGeometryPlacements(self._model, self._data, self._geometry, self._geometry_data)
        m = len(self._radii)
        poses = [self._geometry_data.oMg[i] for i in range(m)]
        center = np.array([pose.translation for pose in poses])
        axis = np.array([pose.rotation[:, 2] for pose in poses]) * np.array(self._half_lengths)[:, None]
        R, t = self.T_world_base[:3, :3], self.T_world_base[:3, 3]
        return (center - axis) @ R.T + t, (center + axis) @ R.T + t, np.array(self._radii)

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
        for geometry in (self._geometry, self._scene_geometry):
            geometry.addGeometryObject(pin.GeometryObject(name, joint, frame, placement, shape))
        self._owner.append(capsule.link)
        self._half_lengths.append(length / 2.0)
        self._radii.append(capsule.radius)

    def _add_box(self, box: SceneBox, T_base_world: np.ndarray) -> None:
        T = T_base_world @ _translation(box.center)
        placement = pin.SE3(T[:3, :3], T[:3, 3])
        for geometry in (self._geometry, self._scene_geometry):
            geometry.addGeometryObject(pin.GeometryObject(box.name, 0, 0, placement, coal.Box(*box.size)))
        self._owner.append(box.name)

    def _pairs_self(
        self, shapes: ArmCollision, order: dict[str, int], first_box: int
    ) -> tuple[tuple[int, int, int], ...]:
        pairs = []
        for i in range(first_box):
            for j in range(i + 1, first_box):
                a, b = self._owner[i], self._owner[j]
                # Neighbours share a joint: their shapes touch there by construction.
                if abs(order[a] - order[b]) <= 1 or frozenset((a, b)) in shapes.allowed:
                    continue
                pairs.append(self._pair(self._geometry, i, j))
        return tuple(pairs)  # plain tuples: indexed once per planned step, numpy's indexing costs more

    def _pairs_scene(self, shapes: ArmCollision, first_box: int) -> tuple[tuple[int, int, int], ...]:
        pairs = []
        for i in range(first_box):
            link = self._owner[i]
            if link in shapes.on_scene:
                continue
            for j in range(first_box, len(self._owner)):
                if frozenset((link, self._owner[j])) not in shapes.allowed:
                    pairs.append(self._pair(self._scene_geometry, i, j))
        return tuple(pairs)  # plain tuples: indexed once per planned step, numpy's indexing costs more

    @staticmethod
    def _pair(geometry: pin.GeometryModel, i: int, j: int) -> tuple[int, int, int]:
        """(pair index in `geometry`, first, second)."""
        geometry.addCollisionPair(pin.CollisionPair(i, j))
        return len(geometry.collisionPairs) - 1, i, j

    def _closest(
        self, geometry: pin.GeometryModel, data: pin.GeometryData, pairs: tuple[tuple[int, int, int], ...]
    ) -> Clearance:
        """The closest of `pairs` (all of `geometry`'s, in order), its shapes placed already."""
        if not pairs:
            return NO_PAIR
        index = pin.computeDistances(geometry, data)  # returns the closest pair's index
        _, i, j = pairs[index]
        return Clearance(float(data.distanceResults[index].min_distance), self._owner[i], self._owner[j])


class ArmPairCollision:
    """Two arms of one robot: the closest pair of their capsules, in the world frame."""

    def __init__(self, first: tuple[str, ArmCollisionModel], second: tuple[str, ArmCollisionModel]) -> None:
        (self.first, self._a), (self.second, self._b) = first, second

    def clearance(self, q_first: np.ndarray, q_second: np.ndarray) -> Clearance:
        """The closest pair with the arms at q_first and q_second [rad]; links named `arm/link`."""
        return self.clearances(np.asarray(q_first)[None, :], np.asarray(q_second)[None, :])[0]

    def clearances(self, q_first: np.ndarray, q_second: np.ndarray) -> list[Clearance]:
        """The closest pair at each of K configurations (K, n) of each arm, all pairs of all K in one go."""
        a0, a1, ra = (np.array(x) for x in zip(*(self._a.segments(q) for q in q_first)))
        b0, b1, rb = (np.array(x) for x in zip(*(self._b.segments(q) for q in q_second)))
        d = segment_distances(a0[:, :, None], a1[:, :, None], b0[:, None, :], b1[:, None, :])
        d -= ra[:, :, None] + rb[:, None, :]
        closest = []
        for k in range(d.shape[0]):
            i, j = np.unravel_index(int(np.argmin(d[k])), d[k].shape)
            closest.append(
                Clearance(
                    float(d[k, i, j]),
                    f"{self.first}/{self._a.capsule_links[i]}",
                    f"{self.second}/{self._b.capsule_links[j]}",
                )
            )
        return closest


def segment_distances(p0: np.ndarray, p1: np.ndarray, q0: np.ndarray, q1: np.ndarray) -> np.ndarray:
    """Distances [m] between segments p0-p1 and q0-q1 (..., 3), broadcast: the closest points are found by
    minimising over both segment parameters, clamped to [0, 1] (Ericson, Real-Time Collision Detection, 5.1.9)."""
    d1, d2, r = p1 - p0, q1 - q0, p0 - q0
    a = np.sum(d1 * d1, axis=-1)
    e = np.sum(d2 * d2, axis=-1)
    f = np.sum(d2 * r, axis=-1)
    c = np.sum(d1 * r, axis=-1)
    b = np.sum(d1 * d2, axis=-1)
    a, e, f, c, b = np.broadcast_arrays(a, e, f, c, b)
    tiny = 1e-12
    denom = a * e - b * b
    with np.errstate(divide="ignore", invalid="ignore"):
        # Closest point of the infinite lines, clamped to the first segment (any s when they are parallel).
        s = np.where(denom > tiny, np.clip((b * f - c * e) / denom, 0.0, 1.0), 0.0)
        s = np.where(e > tiny, s, np.clip(-c / a, 0.0, 1.0))  # the second segment is a point
        s = np.where(a > tiny, s, 0.0)  # the first is a point
        t = np.where(e > tiny, (b * s + f) / e, 0.0)
        # t outside [0, 1]: clamp it and recompute s for that end of the second segment.
        t_clamped = np.clip(t, 0.0, 1.0)
        s = np.where((t != t_clamped) & (a > tiny), np.clip((b * t_clamped - c) / a, 0.0, 1.0), s)
    t = t_clamped
    gap = (p0 + s[..., None] * d1) - (q0 + t[..., None] * d2)
    return np.linalg.norm(gap, axis=-1)


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
