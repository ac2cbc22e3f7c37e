"""One ActionChunk to joint waypoints per arm, within the robot's safety bounds.

The order is fixed and visible here: validate -> decode (tokens, un-normalize) -> per step:
target pose (delta or absolute) -> step clamp -> workspace box -> IK seeded from the previous
step -> singularity scale -> collision check. Joint spaces skip the pose part and are clipped to the
joint limits, then checked for collisions. A step that cannot be reached (IK failure, singularity halt)
or that comes too near a collision ends the chunk there: the arm stops at the last good step rather
than doing something else.
With the package's IK the per-step loop runs compiled (`compiled_plan.py`: a 50-step chunk in well under
a millisecond); with an external IK (MoveIt) it runs in Python here. Both give the same plan (tested).
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from dataclasses import dataclass, replace

import numpy as np

from ros2_vla.actions.chunk import (
    Chunk,
    EeComponents,
    chunk_to_array,
    ee_components,
    resolve_delta_frame,
    validate_chunk,
)
from ros2_vla.actions.gripper import gripper_commands
from ros2_vla.actions.spaces import BASE_FRAME, EE_ABSOLUTE, EE_DELTA, EE_FRAME, JOINT_DELTA, JOINT_VELOCITY
from ros2_vla.actions.targets import apply_ee_delta, check_workspace, clamp_step, clip_to_workspace, ee_absolute_target
from ros2_vla.bridge.clearance import StepClearance, check_between, check_steps
from ros2_vla.bridge.compiled_plan import HALTED, IK_FAILED, RAN_THROUGH, ChainArrays, plan_ee_steps
from ros2_vla.bridge.status import BridgeCode
from ros2_vla.collision_config import CollisionSpec
from ros2_vla.config import ArmSpec, RobotConfig
from ros2_vla.errors import ChunkError
from ros2_vla.ik.params import IkParams, IkResult
from ros2_vla.ik.singularity import check_thresholds, singularity_scale
from ros2_vla.ik.solve import solve_ik
from ros2_vla.kinematics.collision import ArmCollisionModel, ArmPairCollision
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
    """One chunk planned: each arm's waypoints, the steps kept, the status and the worst IK and singularity figures."""

    arms: tuple[ArmWaypoints, ...]
    steps: int  # K usable steps (<= H): 0 means hold
    code: BridgeCode  # the most serious thing that happened (OK when nothing did)
    message: str
    ik_position_residual: float = 0.0  # [m] worst over the steps kept
    ik_rotation_residual: float = 0.0  # [rad]
    condition_number: float = 0.0  # worst over the steps kept
    speed_scale: float = 1.0  # slowest singularity scale over the steps kept: the whole chunk runs this much slower
    # (K,) each step's collision speed factor: the time to step k is stretched by 1 / step_scales[k]; None: all 1
    step_scales: np.ndarray | None = None

    @property
    def slowest(self) -> float:
        """The smallest speed factor of any step, singularity and collision together (1 nominal)."""
        collision = 1.0 if self.step_scales is None else float(self.step_scales.min(initial=1.0))
        return min(self.speed_scale, collision)


class ChunkPlanner:
    """Holds the arm models and bounds of one robot; `plan` is a pure function of its inputs."""

    def __init__(
        self,
        robot: RobotConfig,
        ik: IkParams | None = None,
        ik_solver: IkSolver = solve_ik,
        collision: CollisionSpec | None = None,
    ) -> None:
        """collision: what each planned step is checked against (`robot.collision`, perhaps with more scene
        boxes); None: no collision check."""
        self.robot = robot
        self.ik = ik or IkParams()
        self.ik_solver = ik_solver
        self.models = {arm.name: ArmModel.from_arm(arm) for arm in robot.arms}
        self.collision = collision
        self.colliders = (
            {arm.name: ArmCollisionModel(self.models[arm.name], arm, collision) for arm in robot.arms}
            if collision is not None
            else {}
        )
        # Every two arms (ALOHA's left and right) are checked against each other too.
        self.pair_colliders = [
            ArmPairCollision((a, self.colliders[a]), (b, self.colliders[b]))
            for a, b in itertools.combinations(self.colliders, 2)
        ]
        self._chains = {arm.name: ChainArrays.from_chain(arm.chain) for arm in robot.arms}
        safety = robot.safety
        # The compiled loop does not check them per step as the Python functions do: check once here.
        self._box_min, self._box_max = check_workspace(safety.workspace_min, safety.workspace_max)
        check_thresholds(safety.singularity_decelerate, safety.singularity_halt)
        self._warm_up()

    def _warm_up(self) -> None:
        """Load (or, the first time after an install, compile: ~10 s) the compiled loop now, not on the first chunk."""
        for arm in filter(self._compiled, self.robot.arms):
            still = EeComponents(np.zeros((1, 3)), np.zeros((1, 3)), None, np.ones(6, dtype=bool))
            self._ee_steps(still, False, BASE_FRAME, arm, np.array(arm.chain.home, dtype=np.float64))

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
        comps = ee_components(actions, chunk.dimension_names)
        if not (np.all(np.isfinite(comps.xyz)) and np.all(np.isfinite(comps.rpy))):
            raise ChunkError("chunk actions are NaN or infinite after decoding")
        steps = self._ee_steps(
            comps,
            chunk.action_space == EE_ABSOLUTE,
            resolve_delta_frame(chunk.frame_id, self.robot),
            arm,
            np.asarray(q0, dtype=np.float64),
        )
        K = steps.kept
        gripper = None
        if comps.gripper is not None and arm.gripper is not None and K:
            gripper = gripper_commands(comps.gripper[:K], arm.gripper)
        model = self.models[arm.name]
        wp = ArmWaypoints(arm.name, model.joint_names, steps.positions[:K], gripper, steps.targets[:K])
        plan = _summarize(steps, wp, self.robot.safety.singularity_halt)
        return self._check_collisions(plan, {arm.name: np.asarray(q0, dtype=np.float64)})

    def _ee_steps(self, comps: EeComponents, absolute: bool, frame: str, arm: ArmSpec, q0: np.ndarray) -> EeSteps:
        """Every step's target and IK: compiled with the package's IK (arms of 6+ joints), in Python otherwise."""
        H, model, safety, ik = comps.xyz.shape[0], self.models[arm.name], self.robot.safety, self.ik
        steps = EeSteps.empty(H, model.nq)
        if not self._compiled(arm):
            return self._ee_steps_python(comps, absolute, frame, arm, q0, steps)
        chain = self._chains[arm.name]
        steps.kept, steps.stop = plan_ee_steps(
            chain.origins,
            chain.axes,
            chain.tcp,
            model.lower,
            model.upper,
            model.home,
            q0,
            np.ascontiguousarray(comps.xyz),
            np.ascontiguousarray(comps.rpy),
            absolute,
            frame == EE_FRAME,
            safety.max_translation_per_step,
            safety.max_rotation_per_step,
            self._box_min,
            self._box_max,
            ik.damping,
            ik.max_iterations,
            ik.position_tolerance,
            ik.rotation_tolerance,
            ik.nullspace_gain,
            ik.max_step,
            safety.singularity_decelerate,
            safety.singularity_halt,
            steps.positions,
            steps.targets,
            steps.position_errors,
            steps.rotation_errors,
            steps.conditions,
            steps.scales,
            steps.clipped,
        )
        return steps

    def _compiled(self, arm: ArmSpec) -> bool:
        """The compiled loop runs the package's own IK on arms of 6+ joints (see compiled_plan)."""
        return self.ik_solver is solve_ik and self.models[arm.name].nq >= 6

    def _ee_steps_python(
        self, comps: EeComponents, absolute: bool, frame: str, arm: ArmSpec, q0: np.ndarray, steps: EeSteps
    ) -> EeSteps:
        """The same loop as `compiled_plan.plan_ee_steps`, around an external IK solver (MoveIt)."""
        model, safety = self.models[arm.name], self.robot.safety
        T_prev, q = model.fk(q0), q0
        for k in range(comps.xyz.shape[0]):
            if absolute:
                T_goal = ee_absolute_target(comps.xyz[k], comps.rpy[k])
            else:
                T_goal = apply_ee_delta(T_prev, comps.xyz[k], comps.rpy[k], frame)
            T_goal, _ = clamp_step(T_prev, T_goal, safety.max_translation_per_step, safety.max_rotation_per_step)
            T_goal, steps.clipped[k] = clip_to_workspace(T_goal, self._box_min, self._box_max)
            steps.targets[k] = T_goal
            res = self.ik_solver(model, T_goal, q, self.ik)
            steps.position_errors[k], steps.rotation_errors[k] = res.position_error, res.rotation_error
            steps.conditions[k] = res.condition_number
            if not res.converged:
                steps.kept, steps.stop = k, IK_FAILED
                return steps
            steps.scales[k] = singularity_scale(
                res.condition_number, safety.singularity_decelerate, safety.singularity_halt
            )
            if steps.scales[k] <= 0.0:
                steps.kept, steps.stop = k, HALTED
                return steps
            q, T_prev = res.q, T_goal
            steps.positions[k] = q
        steps.kept = comps.xyz.shape[0]
        return steps

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
        plan = ChunkPlan(tuple(arms), chunk.horizon, code, message)
        return self._check_collisions(plan, {n: np.asarray(q, dtype=np.float64) for n, q in q_start.items()})

    def _check_collisions(self, plan: ChunkPlan, q_start: dict[str, np.ndarray]) -> ChunkPlan:
        """The plan cut before the first step that comes too near a collision and slowed near one (every arm
        stops together: a bimanual motion stays coordinated)."""
        if not self.colliders or plan.steps == 0:
            return plan
        checks = {
            wp.arm: check_steps(self.colliders[wp.arm], self.collision, q_start[wp.arm], wp.positions[: plan.steps])
            for wp in plan.arms
        }
        # An arm the chunk does not move stands at its start pose.
        steps = {wp.arm: wp.positions[: plan.steps] for wp in plan.arms}
        for pair in self.pair_colliders:
            a, b = pair.first, pair.second
            if a in steps or b in steps:
                path = tuple(steps.get(n, np.repeat(q_start[n][None, :], plan.steps, axis=0)) for n in (a, b))
                checks[f"{a}+{b}"] = check_between(pair, self.collision, (q_start[a], q_start[b]), path)
        return _with_collisions(plan, checks)


@dataclass
class EeSteps:
    """Per-step results of the end-effector loop; rows past `kept` are unset except the stopping step's residuals."""

    positions: np.ndarray  # [rad] (H, n) IK solutions
    targets: np.ndarray  # (H, 4, 4) T_base_tcp after the step clamp and the workspace box
    position_errors: np.ndarray  # [m] (H,) IK residuals
    rotation_errors: np.ndarray  # [rad] (H,)
    conditions: np.ndarray  # (H,) Jacobian condition numbers at the solutions
    scales: np.ndarray  # (H,) singularity speed factors
    clipped: np.ndarray  # bool (H,) the workspace box moved the target
    kept: int = 0  # usable steps
    stop: int = RAN_THROUGH  # or IK_FAILED / HALTED at step `kept`

    @classmethod
    def empty(cls, horizon: int, n: int) -> EeSteps:
        return cls(
            np.zeros((horizon, n)),
            np.zeros((horizon, 4, 4)),
            np.zeros(horizon),
            np.zeros(horizon),
            np.zeros(horizon),
            np.ones(horizon),
            np.zeros(horizon, dtype=bool),
        )


def _summarize(steps: EeSteps, wp: ArmWaypoints, halt: float) -> ChunkPlan:
    """The plan's code and message (the most serious event, first of its kind) and its worst figures."""
    K = steps.kept
    code, message = BridgeCode.OK, ""
    outside = np.flatnonzero(steps.clipped[: K + (steps.stop != RAN_THROUGH)])
    if outside.size:
        code, message = BridgeCode.WORKSPACE_LIMIT, f"step {outside[0]}: target clipped to the workspace box"
    slow = np.flatnonzero(steps.scales[:K] < 1.0)
    if slow.size:
        k = slow[0]
        code, message = (
            BridgeCode.DECELERATE_FOR_SINGULARITY,
            (f"step {k}: near a singularity (condition {steps.conditions[k]:.0f}): slowing to {steps.scales[k]:.2f}"),
        )
    if steps.stop == IK_FAILED:
        code, message = (
            BridgeCode.IK_FAILED,
            (
                f"step {K}: no IK solution (residual {steps.position_errors[K] * 1e3:.1f} mm, "
                f"{steps.rotation_errors[K]:.3f} rad): stopping at step {K}"
            ),
        )
    elif steps.stop == HALTED:
        code, message = (
            BridgeCode.HALT_FOR_SINGULARITY,
            (f"step {K}: condition number {steps.conditions[K]:.0f} past {halt:.0f}: halting"),
        )
    # An IK failure's residuals count (they say how far off it was); a halted step's do not.
    counted = K + (steps.stop == IK_FAILED)
    pos, rot = steps.position_errors[:counted], steps.rotation_errors[:counted]
    return ChunkPlan(
        (wp,),
        K,
        code,
        message,
        float(pos.max(initial=0.0)),
        float(rot.max(initial=0.0)),
        float(steps.conditions[:K].max(initial=0.0)),
        float(steps.scales[:K].min(initial=1.0)),
    )


def _with_collisions(plan: ChunkPlan, checks: dict[str, StepClearance]) -> ChunkPlan:
    """`plan` after its collision checks: cut at the first halted step (every arm), each step slowed by the
    smallest factor of any arm there, and its code and message when collision is the most serious thing
    (a halt always is: every later step is gone)."""
    halted = [(c.kept, arm) for arm, c in checks.items() if c.halted]
    K = min(halted)[0] if halted else plan.steps
    factors = np.ones(K)
    for c in checks.values():
        n = min(K, c.factors.size)
        factors[:n] = np.minimum(factors[:n], c.factors[:n])
    slow = min(checks.values(), key=lambda c: c.scale)
    arms = tuple(
        replace(
            wp,
            positions=wp.positions[:K],
            gripper=None if wp.gripper is None else wp.gripper[:K],
            ee_targets=None if wp.ee_targets is None else wp.ee_targets[:K],
        )
        for wp in plan.arms
    )
    out = replace(plan, arms=arms, steps=K, step_scales=factors if factors.min(initial=1.0) < 1.0 else None)
    if halted:
        c = checks[min(halted)[1]]
        return replace(
            out,
            code=BridgeCode.HALT_FOR_COLLISION,
            message=(
                f"step {K}: {c.closest.describe()}: "
                + (f"stopping at step {K - 1}, before contact" if K else "holding, before contact")
            ),
        )
    scale = out.slowest
    if out.step_scales is None:
        return out
    outranked = plan.code not in (BridgeCode.OK, BridgeCode.WORKSPACE_LIMIT, BridgeCode.JOINT_LIMIT) and not (
        plan.code == BridgeCode.DECELERATE_FOR_SINGULARITY and slow.scale < plan.speed_scale
    )
    if outranked:
        return out
    return replace(
        out,
        code=BridgeCode.DECELERATE_FOR_COLLISION,
        message=f"step {slow.slowest_step}: {slow.closest.describe()}: slowing to {scale:.2f}",
    )
