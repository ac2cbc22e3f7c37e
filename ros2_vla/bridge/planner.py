"""One ActionChunk to joint waypoints per arm, within the robot's safety bounds.

The order is fixed and visible here: validate -> decode (tokens, un-normalize) -> per step:
target pose (delta or absolute) -> step clamp -> workspace box -> IK seeded from the previous
step -> singularity scale. Joint spaces skip the pose part and are clipped to the joint limits.
A step that cannot be reached (IK failure, singularity halt) ends the chunk there: the arm stops
at the last good step rather than doing something else.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from ros2_vla.actions.chunk import Chunk, chunk_to_array, ee_components, resolve_delta_frame, validate_chunk
from ros2_vla.actions.gripper import gripper_commands
from ros2_vla.actions.spaces import EE_ABSOLUTE, EE_DELTA, JOINT_DELTA, JOINT_VELOCITY
from ros2_vla.actions.targets import apply_ee_delta, clamp_step, clip_to_workspace, ee_absolute_target
from ros2_vla.bridge.status import BridgeCode
from ros2_vla.config import ArmSpec, RobotConfig
from ros2_vla.ik.params import IkParams, IkResult
from ros2_vla.ik.singularity import singularity_scale
from ros2_vla.ik.solve import solve_ik
from ros2_vla.kinematics.model import ArmModel

GRIPPER = "gripper"

# solve_ik's signature: (model, T_base_target (4, 4), q_seed [rad] (n,), params) -> IkResult. Another backend
# (MoveIt's /compute_ik, ros2_vla.ros.moveit_ik) plugs in here; the rest of the plan stays the same.
IkSolver = Callable[[ArmModel, np.ndarray, np.ndarray, IkParams], IkResult]


@dataclass(frozen=True)
class ArmWaypoints:
    """The planned steps of one arm."""

    arm: str
    joint_names: tuple[str, ...]
    positions: np.ndarray  # [rad] (K, n) joint targets, step k reached at stamp + (k+1) dt
    gripper: np.ndarray | None  # [m or rad] (K,) gripper joint targets; None: the chunk leaves it alone
    ee_targets: np.ndarray | None  # (K, 4, 4) commanded T_base_tcp after the safety bounds (ee spaces)


@dataclass(frozen=True)
class ChunkPlan:
    arms: tuple[ArmWaypoints, ...]
    steps: int  # K usable steps (<= H): 0 means hold
    code: BridgeCode  # the most serious thing that happened (OK when nothing did)
    message: str
    ik_position_residual: float = 0.0  # [m] worst over the steps kept
    ik_rotation_residual: float = 0.0  # [rad]
    condition_number: float = 0.0  # worst over the steps kept
    speed_scale: float = 1.0  # slowest singularity scale over the steps kept


class ChunkPlanner:
    """Holds the arm models and bounds of one robot; `plan` is a pure function of its inputs."""

    def __init__(self, robot: RobotConfig, ik: IkParams | None = None, ik_solver: IkSolver = solve_ik) -> None:
        self.robot = robot
        self.ik = ik or IkParams()
        self.ik_solver = ik_solver
        self.models = {arm.name: ArmModel.from_arm(arm) for arm in robot.arms}

    def plan(self, chunk: Chunk, q_start: dict[str, np.ndarray]) -> ChunkPlan:
        """Joint waypoints for `chunk` from the arms' start positions q_start[arm] [rad] (n,).
        Raises ChunkError when the chunk is invalid for this robot (the caller rejects it)."""
        validate_chunk(chunk, self.robot)
        actions = chunk_to_array(chunk)
        if chunk.action_space in (EE_DELTA, EE_ABSOLUTE):
            arm = self.robot.arms[0]
            return self._plan_ee(chunk, actions, arm, q_start[arm.name])
        return self._plan_joints(chunk, actions, q_start)

    def _plan_ee(self, chunk: Chunk, actions: np.ndarray, arm: ArmSpec, q0: np.ndarray) -> ChunkPlan:
        model, safety = self.models[arm.name], self.robot.safety
        comps = ee_components(actions, chunk.dimension_names)
        frame = resolve_delta_frame(chunk.frame_id, self.robot)
        T_prev = model.fk(q0)
        q = np.asarray(q0, dtype=np.float64)
        qs, targets = [], []
        code, message = BridgeCode.OK, ""
        worst = dict(pos=0.0, rot=0.0, cond=0.0, scale=1.0)
        for k in range(chunk.horizon):
            if chunk.action_space == EE_DELTA:
                T_goal = apply_ee_delta(T_prev, comps.xyz[k], comps.rpy[k], frame)
            else:
                T_goal = ee_absolute_target(comps.xyz[k], comps.rpy[k])
            T_goal, clamped = clamp_step(T_prev, T_goal, safety.max_translation_per_step, safety.max_rotation_per_step)
            T_goal, clipped = clip_to_workspace(T_goal, np.array(safety.workspace_min), np.array(safety.workspace_max))
            if clipped and code == BridgeCode.OK:
                code, message = BridgeCode.WORKSPACE_LIMIT, f"step {k}: target clipped to the workspace box"
            res = self.ik_solver(model, T_goal, q, self.ik)
            # Convergence first: an unreachable target leaves the best iterate stretched out, and so
            # singular; its condition number says nothing about the target.
            if not res.converged:
                code, message = BridgeCode.IK_FAILED, (f"step {k}: no IK solution (residual {res.position_error * 1e3:.1f} mm, "
                                                       f"{res.rotation_error:.3f} rad): stopping at step {k}")
                worst["pos"], worst["rot"] = max(worst["pos"], res.position_error), max(worst["rot"], res.rotation_error)
                break
            scale = singularity_scale(res.condition_number, safety.singularity_decelerate, safety.singularity_halt)
            if scale <= 0.0:
                code, message = BridgeCode.HALT_FOR_SINGULARITY, f"step {k}: condition number {res.condition_number:.0f} past {safety.singularity_halt:.0f}: halting"
                break
            if scale < 1.0 and code in (BridgeCode.OK, BridgeCode.WORKSPACE_LIMIT):
                code, message = BridgeCode.DECELERATE_FOR_SINGULARITY, f"step {k}: near a singularity (condition {res.condition_number:.0f}): slowing to {scale:.2f}"
            worst["pos"], worst["rot"] = max(worst["pos"], res.position_error), max(worst["rot"], res.rotation_error)
            worst["cond"], worst["scale"] = max(worst["cond"], res.condition_number), min(worst["scale"], scale)
            q, T_prev = res.q, T_goal
            qs.append(q)
            targets.append(T_goal)
        K = len(qs)
        gripper = None
        if comps.gripper is not None and arm.gripper is not None and K:
            gripper = gripper_commands(comps.gripper[:K], arm.gripper)
        positions = np.array(qs).reshape(K, model.nq)
        wp = ArmWaypoints(arm.name, model.joint_names, positions, gripper, np.array(targets).reshape(K, 4, 4))
        return ChunkPlan((wp,), K, code, message, worst["pos"], worst["rot"], worst["cond"], worst["scale"])

    def _plan_joints(self, chunk: Chunk, actions: np.ndarray, q_start: dict[str, np.ndarray]) -> ChunkPlan:
        index = {name: i for i, name in enumerate(chunk.dimension_names)}
        code, message, arms = BridgeCode.OK, "", []
        for arm in self.robot.arms:
            model = self.models[arm.name]
            q = actions[:, [index[n] for n in model.joint_names]]
            if chunk.action_space == JOINT_DELTA:
                q = np.asarray(q_start[arm.name])[None, :] + np.cumsum(q, axis=0)
            elif chunk.action_space == JOINT_VELOCITY:  # each velocity held for one step, from the start pose
                q = np.asarray(q_start[arm.name])[None, :] + np.cumsum(q * chunk.dt, axis=0)
            clipped = np.clip(q, model.lower, model.upper)
            if np.any(clipped != q):
                code, message = BridgeCode.JOINT_LIMIT, f"{arm.name}: targets clipped to the joint limits"
            gripper = None
            if arm.gripper is not None:
                name = arm.gripper.joint if arm.gripper.joint in index else (GRIPPER if GRIPPER in index else None)
                if name is not None:
                    gripper = gripper_commands(actions[:, index[name]], arm.gripper)
            arms.append(ArmWaypoints(arm.name, model.joint_names, clipped, gripper, None))
        return ChunkPlan(tuple(arms), chunk.horizon, code, message)
