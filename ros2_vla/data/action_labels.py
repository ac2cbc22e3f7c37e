"""Action labels in the policy's action space: what the robot did between frames ("measured"), or
what it was told to do ("commanded": the chunks on /vla/action_chunk, `ros2_vla.data.chunk_log`).

Measured:

- ee_delta: the TCP motion from t_k to t_{k+1}, poses by forward kinematics of the recorded joints,
  in the BridgeData convention `apply_ee_delta` plays back (frame "base": dp = p1 - p0 in base axes,
  R_delta = R1 R0^T; frame "ee": both in the TCP frame at t_k), rotation as roll/pitch/yaw.
- ee_absolute: the TCP pose at t_{k+1}. joint_position: the joints at t_{k+1}; joint_delta: their change.
- gripper dimensions: the commanded gripper (the trajectories its controller received), else the
  measured gripper joint, in the policy's convention: openness in [0, 1] (`GripperSpec.invert`
  flips it), the inverse of `ros2_vla.actions.gripper.gripper_commands`. Binarized grippers take
  the direction the gripper was driven (closing: 0, opening: 1), held while it rests, so a close is
  labelled from the step it was commanded, not once the fingers pass half-way.
"""

from __future__ import annotations

import numpy as np

from ros2_vla.actions.rotations import matrix_to_rpy
from ros2_vla.actions.spaces import (
    EE_ABSOLUTE,
    EE_DELTA,
    EE_FRAME,
    EE_ROTATION,
    EE_TRANSLATION,
    GRIPPER,
    JOINT_DELTA,
    JOINT_POSITION,
)
from ros2_vla.config import ArmSpec, GripperSpec
from ros2_vla.data.episode import COMMANDED, LABEL_SOURCES, MEASURED
from ros2_vla.data.sampling import FramePlan
from ros2_vla.data.series import EpisodeSeries
from ros2_vla.errors import DatasetError

MOVE_EPS = 0.02  # openness change per step that counts as the gripper being driven (2 % of its range)


def ee_deltas(T: np.ndarray, frame: str) -> np.ndarray:
    """Poses T_base_ee (N+1, 4, 4) -> deltas (N, 6): [dx dy dz droll dpitch dyaw], [m] and [rad]."""
    R0, R1 = T[:-1, :3, :3], T[1:, :3, :3]
    dp = T[1:, :3, 3] - T[:-1, :3, 3]
    if frame == EE_FRAME:
        dp = np.einsum("kji,kj->ki", R0, dp)  # R0^T dp
        R_delta = np.einsum("kji,kjl->kil", R0, R1)  # R0^T R1
    else:
        R_delta = np.einsum("kij,klj->kil", R1, R0)  # R1 R0^T
    return np.concatenate([dp, matrix_to_rpy(R_delta)], axis=1)


def tcp_poses(arm: ArmSpec, q: np.ndarray) -> np.ndarray:
    """Joint positions (K, n) of `arm`'s chain [rad] -> T_base_ee (K, 4, 4) in the arm base frame."""
    from ros2_vla.kinematics.model import ArmModel

    model = ArmModel.from_arm(arm)
    return np.stack([model.fk(row) for row in q])


def openness(position: np.ndarray, spec: GripperSpec) -> np.ndarray:
    """Gripper joint position [m or rad] -> openness in [0, 1] (0 = closed_position, 1 = open_position)."""
    span = spec.open_position - spec.closed_position
    return np.clip((np.asarray(position, dtype=np.float64) - spec.closed_position) / span, 0.0, 1.0)


def gripper_labels(position: np.ndarray, spec: GripperSpec) -> np.ndarray:
    """Gripper positions at the N+1 instants -> the policy's gripper action for the N frames."""
    o = openness(position, spec)
    if spec.binarize:
        step = np.diff(o)
        label, out = float(o[0] >= 0.5), np.empty(step.size)
        for k, d in enumerate(step):
            if abs(d) > MOVE_EPS:
                label = float(d > 0)  # driven open or shut during this step
            out[k] = label
    else:
        out = o[1:]
    return 1.0 - out if spec.invert else out


def gripper_positions(series: EpisodeSeries, plan: FramePlan, arm: ArmSpec) -> np.ndarray:
    """(N+1,) the gripper's commanded position at each instant, its measured one where no command had come."""
    assert arm.gripper is not None
    measured = plan.state[:, series.state_names.index(arm.gripper.joint)]
    log = series.grippers.get(arm.name)
    if log is None:
        return measured
    commanded = log.at(plan.times)
    return np.where(np.isnan(commanded), measured, commanded)


def action_labels(series: EpisodeSeries, plan: FramePlan, source: str = MEASURED) -> np.ndarray:
    """(N, D) float64 actions in `robot.action.dimension_names` order."""
    if source == COMMANDED:
        return commanded_labels(series, plan)
    if source != MEASURED:
        raise DatasetError(f"unknown action label source {source!r}; known: {', '.join(LABEL_SOURCES)}")
    robot = series.robot
    space, names = robot.action.space, robot.action.dimension_names
    columns: dict[str, np.ndarray] = {}
    if space in (EE_DELTA, EE_ABSOLUTE):
        if len(robot.arms) != 1:
            raise DatasetError(f"{space} actions need a single-arm robot; {robot.name} has {len(robot.arms)} arms")
        arm = robot.arms[0]
        q = plan.state[:, [series.state_names.index(n) for n in arm.chain.joint_names]]
        T = tcp_poses(arm, q)
        pose = (
            ee_deltas(T, robot.action.frame)
            if space == EE_DELTA
            else np.concatenate([T[1:, :3, 3], matrix_to_rpy(T[1:])], axis=1)
        )
        columns.update(zip(EE_TRANSLATION + EE_ROTATION, pose.T))
    elif space in (JOINT_POSITION, JOINT_DELTA):
        for n in robot.joint_names:
            q = plan.state[:, series.state_names.index(n)]
            columns[n] = q[1:] if space == JOINT_POSITION else np.diff(q)
    else:
        raise DatasetError(f"robot {robot.name}: cannot compute {space!r} actions from a recording")
    with_gripper = [arm for arm in robot.arms if arm.gripper is not None]
    for arm in with_gripper:
        columns[arm.gripper.joint] = gripper_labels(gripper_positions(series, plan, arm), arm.gripper)
    if len(with_gripper) == 1:
        columns[GRIPPER] = columns[with_gripper[0].gripper.joint]
    missing = [n for n in names if n not in columns]
    if missing:
        raise DatasetError(
            f"config/{robot.name}.yaml: action dimensions {missing} cannot be computed from a recording "
            f"of {space}; known: {sorted(columns)}"
        )
    return np.column_stack([columns[n] for n in names])


def commanded_labels(series: EpisodeSeries, plan: FramePlan) -> np.ndarray:
    """(N, D) the commanded step under way at each frame's instant (read with `read_series(with_chunks=True)`)."""
    if series.chunks is None:
        raise DatasetError(
            f"{series.bag.path}: no action chunks the bridge would take on /vla/action_chunk to label "
            f"frames with what was commanded; convert with --labels measured"
        )
    return series.chunks.at(plan.times[:-1])
