"""Proprioception the flow model reads: the joint state, and (FlowConfig.tcp_state) each arm's TCP pose.

An end-effector delta policy moves the TCP toward a point the images show, so it needs where the TCP
is; from joint angles alone a small network has to learn the arm's forward kinematics first, from a
few hundred demos (a compact model trained without the TCP pose missed the chunks of its own training
frames by half their length). FK of the shipped robot description gives it exactly, at run time as in
training.

Features per arm, in the arm's base frame (the frame of ee_delta actions): TCP position [m], then the
first two columns of its rotation (the continuous 6D rotation of Zhou et al. 2019: no wrap-around as
roll/pitch/yaw have). Both are O(1) for a table-top arm, so they enter the model unnormalized.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np

from ros2_vla.config import RobotConfig, load_robot_config
from ros2_vla.errors import PolicyError
from ros2_vla.policies.flow.config import FlowConfig
from ros2_vla.policies.flow.norm import NormStats
from ros2_vla.policies.observation import state_names

FEATURES_PER_ARM = 9  # position (3) + two rotation columns (6)


class TcpFeatures:
    """Policy state vectors (..., S) in `state_names(robot)` order -> TCP features (..., 9 * arms) float32."""

    def __init__(self, robot: RobotConfig) -> None:
        from ros2_vla.kinematics.model import ArmModel  # pinocchio: only for models that read the TCP

        names = state_names(robot)
        index = {n: i for i, n in enumerate(names)}
        self.state_dim = len(names)
        self.arms = [
            (ArmModel.from_arm(arm), np.array([index[j] for j in arm.chain.joint_names])) for arm in robot.arms
        ]

    @property
    def dim(self) -> int:
        return FEATURES_PER_ARM * len(self.arms)

    def __call__(self, state: np.ndarray) -> np.ndarray:
        s = np.asarray(state, np.float64)
        if s.shape[-1] != self.state_dim:
            raise PolicyError(
                f"state has {s.shape[-1]} values; TCP features need {self.state_dim} (arm joints, then grippers)"
            )
        flat = s.reshape(-1, self.state_dim)
        out = np.empty((flat.shape[0], self.dim), np.float32)
        for k, (model, joints) in enumerate(self.arms):
            for i, q in enumerate(flat[:, joints]):
                T = model.fk(q)
                out[i, FEATURES_PER_ARM * k : FEATURES_PER_ARM * (k + 1)] = np.concatenate(
                    [T[:3, 3], T[:3, 0], T[:3, 1]]
                )
        return out.reshape(*s.shape[:-1], self.dim)


@lru_cache(maxsize=8)
def _arm_count(robot: str) -> int:
    return len(load_robot_config(robot).arms)


def proprio_dim(config: FlowConfig) -> int:
    """Values the model's state token reads: the joint state, plus the TCP features with `tcp_state`."""
    if not config.tcp_state:
        return config.state_dim
    return config.state_dim + FEATURES_PER_ARM * _arm_count(tcp_robot(config))


def tcp_robot(config: FlowConfig) -> str:
    """The robot config whose kinematics give a `tcp_state` model its TCP features."""
    if not config.robot:
        raise PolicyError("FlowConfig.tcp_state needs the robot's name (config_for_robot sets it)")
    return config.robot


def tcp_features_for(config: FlowConfig, robot: RobotConfig | None = None) -> TcpFeatures | None:
    """The TCP features a model reads (None without `tcp_state`), from `robot` (its kinematic variant
    included) or else the default variant of the robot the model was trained for."""
    if not config.tcp_state:
        return None
    name = tcp_robot(config)
    if robot is not None and robot.name != name:
        raise PolicyError(f"this model reads the TCP pose of a {name}, not of a {robot.name}")
    return TcpFeatures(robot if robot is not None else load_robot_config(name))


def model_state(state: np.ndarray, norm_stats: NormStats, tcp: TcpFeatures | None) -> np.ndarray:
    """Joint states (..., S) -> what the model's state token reads (..., proprio_dim) float32: the
    z-scores of `norm_stats`, then the TCP features when the model has them. Training and FlowPolicy
    both come here, so the two never differ."""
    z = norm_stats.normalize_state(state)
    return z if tcp is None else np.concatenate([z, tcp(state)], axis=-1)
