"""Forward kinematics and Jacobians of one arm, from its `ChainSpec`, with pinocchio.

Frames: every pose is in the arm's base frame (`chain.base_link`), the root of the model.
Multiply by the arm's base pose in the world (`ArmSpec.base_xyz/base_rpy`) for world poses.
One `ArmModel` holds one pinocchio Data buffer: use one model per thread.
"""

from __future__ import annotations

import numpy as np
import pinocchio as pin

from ros2_vla.config import ArmSpec, ChainSpec
from ros2_vla.errors import KinematicsError
from ros2_vla.kinematics.urdf import chain_to_urdf


def _read_only(values) -> np.ndarray:
    out = np.array(values, dtype=np.float64)
    out.flags.writeable = False
    return out


class ArmModel:
    """A serial arm: joint limits, FK and the TCP Jacobian.

    Joint order is the chain's (`joint_names`); q is [rad], shape (n,).
    """

    def __init__(self, chain: ChainSpec, name: str = "arm") -> None:
        try:
            self._model = pin.buildModelFromXML(chain_to_urdf(chain, name))
        except (RuntimeError, ValueError) as exc:
            raise KinematicsError(
                f"arm {name}: pinocchio could not build the model of chain {chain.base_link}: {exc}"
            ) from exc
        self._data = self._model.createData()
        self.chain = chain
        self.name = name
        model_joints = tuple(self._model.names[1:])
        if model_joints != chain.joint_names:  # a serial URDF keeps its order; guard the assumption
            raise KinematicsError(
                f"arm {name}: pinocchio joint order {model_joints} differs from the chain's {chain.joint_names}"
            )
        self._frames = {link: self._model.getFrameId(link) for link in chain.link_names}
        self._ee = self._frames[chain.ee_link]
        self._lower = _read_only([j.lower for j in chain.joints])
        self._upper = _read_only([j.upper for j in chain.joints])
        self._velocity = _read_only([j.velocity for j in chain.joints])
        self._acceleration = _read_only([j.acceleration for j in chain.joints])
        self._home = _read_only(chain.home)

    @classmethod
    def from_arm(cls, arm: ArmSpec) -> ArmModel:
        """The model of one configured arm (its chain already carries the arm's prefix)."""
        return cls(arm.chain, name=arm.name)

    @property
    def joint_names(self) -> tuple[str, ...]:
        return self.chain.joint_names

    @property
    def link_names(self) -> tuple[str, ...]:
        """Every link `frame_pose` knows, base to TCP."""
        return self.chain.link_names

    @property
    def pinocchio_model(self) -> pin.Model:
        """The pinocchio model itself (collision geometry hangs on its frames); do not change it."""
        return self._model

    @property
    def nq(self) -> int:
        return self._model.nq

    @property
    def lower(self) -> np.ndarray:
        """[rad] position limits, shape (n,), read-only."""
        return self._lower

    @property
    def upper(self) -> np.ndarray:
        """[rad] position limits, shape (n,), read-only."""
        return self._upper

    @property
    def velocity_limits(self) -> np.ndarray:
        """[rad/s], shape (n,), read-only."""
        return self._velocity

    @property
    def acceleration_limits(self) -> np.ndarray:
        """[rad/s^2], shape (n,), read-only."""
        return self._acceleration

    @property
    def home(self) -> np.ndarray:
        """[rad] home posture, shape (n,), read-only."""
        return self._home

    def within_limits(self, q, tol: float = 0.0) -> bool:
        """True when lower - tol <= q <= upper + tol for every joint."""
        q = self._check(q)
        return bool(np.all(q >= self._lower - tol) and np.all(q <= self._upper + tol))

    def fk(self, q) -> np.ndarray:
        """T_base_ee: the TCP pose in the base frame, 4x4 float64."""
        return self.frame_pose(q, self.chain.ee_link)

    def frame_pose(self, q, link_name: str) -> np.ndarray:
        """T_base_link for any of `link_names`, 4x4 float64."""
        frame = self._frames.get(link_name)
        if frame is None:
            raise KinematicsError(f"arm {self.name}: no link {link_name!r}; links are {list(self._frames)}")
        pin.forwardKinematics(self._model, self._data, self._check(q))
        return pin.updateFramePlacement(self._model, self._data, frame).homogeneous

    def jacobian(self, q) -> np.ndarray:
        """TCP Jacobian, shape (6, n): rows [v; w], [m/s; rad/s] per [rad/s], in base-aligned axes
        (pinocchio LOCAL_WORLD_ALIGNED: the velocity of the TCP point, expressed in the base frame)."""
        return pin.computeFrameJacobian(self._model, self._data, self._check(q), self._ee, pin.LOCAL_WORLD_ALIGNED)

    def fk_and_jacobian(self, q) -> tuple[np.ndarray, np.ndarray]:
        """(T_base_ee, J) from one kinematics pass, as `fk` and `jacobian` give them."""
        J = self.jacobian(q)  # also leaves the joint placements of q in Data
        return pin.updateFramePlacement(self._model, self._data, self._ee).homogeneous, J

    def _check(self, q) -> np.ndarray:
        try:
            q = np.asarray(q, dtype=np.float64)
        except (TypeError, ValueError) as exc:
            raise KinematicsError(
                f"arm {self.name}: q must be {self.nq} numbers in the order {self.joint_names}"
            ) from exc
        if q.shape != (self._model.nq,):
            raise KinematicsError(
                f"arm {self.name}: q has shape {q.shape}; expected ({self.nq},) in the order {self.joint_names}"
            )
        if not np.isfinite(q).all():
            raise KinematicsError(f"arm {self.name}: q {q.tolist()} has NaN or inf")
        return q
