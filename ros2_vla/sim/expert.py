"""A scripted expert that solves the sim's tasks from true poses, acting in the robot's action space.

It never drives the sim's joints itself; it emits what a policy would:
- `ee_delta` robots (FR3, WidowX): chunks of H end-effector deltas in `robot.action.dimension_names`
  order ([dx dy dz droll dpitch dyaw gripper]) at the config's dt, in the config's delta frame with
  the conventions of `ros2_vla.actions.targets` ("base": translation along the base axes,
  `R_new = R_delta @ R_cur`), gripper 1 = open (0 when the config's gripper `invert`s). The motion
  is a straight TCP line at `ExpertParams.speed`; the bridge turns it into joints with its IK.
- `joint_position` robots (ALOHA): joint targets. Each motion goal is solved once with the
  package's IK (`ros2_vla.ik.solve_ik` on `ArmModel`) from a few seeds, keeping the solution away
  from the joint limits; joints then move there in a straight joint-space line at
  `ExpertParams.joint_speed` of their limits, as a teleoperator's arm would. (Cartesian steps
  through the 6-DoF wrist's singularity flip its forearm onto the roll limits; joint lines don't.)
The phase machine is `script.ArmScript`; the expert predicts its own motion within a chunk.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from ros2_vla.actions.rotations import matrix_to_rpy
from ros2_vla.actions.spaces import EE_DELTA, EE_FRAME, GRIPPER, JOINT_POSITION
from ros2_vla.config import ArmSpec, RobotConfig
from ros2_vla.errors import ConfigError
from ros2_vla.sim.scene import SceneSpec, base_transform
from ros2_vla.sim.script import PICK_PHASES, PLACE_PHASES, ArmScript, ExpertParams, move_toward
from ros2_vla.sim.tasks import Task, task_kinds
from ros2_vla.sim.world import Simulation

_SEEDS = 8  # random IK seeds tried when the measured and home seeds give no good solution
_CENTRAL = 0.9  # a solution with every joint within this fraction of its half range of the middle is kept


class ExpertObservation(NamedTuple):
    """True state the expert acts on, world frame."""

    T_world_tcp: dict[str, np.ndarray]  # arm name -> (4, 4)
    T_world_objects: dict[str, np.ndarray]  # object body name -> (4, 4)
    q: dict[str, np.ndarray]  # arm name -> [rad] (n,) chain joint positions

    @classmethod
    def from_sim(cls, sim: Simulation) -> ExpertObservation:
        state = sim.joint_state()
        index = {n: i for i, n in enumerate(state.names)}
        return cls(
            {a.name: sim.tcp_pose(a.name, frame="world") for a in sim.robot.arms},
            {o: sim.object_pose(o) for o in sim.object_names()},
            {a.name: state.positions[[index[n] for n in a.chain.joint_names]] for a in sim.robot.arms},
        )


class ScriptedExpert:
    """Chunks of actions that solve `task` for `robot`; call `act` once per chunk with fresh observations."""

    def __init__(
        self,
        robot: RobotConfig,
        task: Task,
        horizon: int | None = None,
        scene: SceneSpec | None = None,
        params: ExpertParams | None = None,
    ) -> None:
        self.robot, self.task = robot, task
        self.params = params or ExpertParams()
        self.scene = scene or SceneSpec()
        self.dt = robot.action.dt
        self.horizon = horizon or max(1, round(0.5 / self.dt))  # about half a second per chunk
        space = robot.action.space
        if space not in (EE_DELTA, JOINT_POSITION) or (space == EE_DELTA and len(robot.arms) != 1):
            raise ConfigError(
                f"the scripted expert drives one-arm ee_delta or joint_position robots, not {robot.name} ({space})"
            )
        if task.kind not in task_kinds(robot):
            raise ConfigError(f"the expert does task kinds {task_kinds(robot)} on {robot.name}, not {task.kind!r}")
        phases = PLACE_PHASES if task.kind == "place" else PICK_PHASES
        joint_space = space == JOINT_POSITION
        self._scripts = [
            ArmScript(arm, cube, phases, self.params, self.scene, self.dt, natural_pads=joint_space)
            for arm, cube in zip(robot.arms, task.objects)
        ]
        s = robot.safety
        self._step = min(self.params.speed * self.dt, 0.8 * s.max_translation_per_step)  # [m]
        self._turn = min(self.params.rotation_speed * self.dt, 0.8 * s.max_rotation_per_step)  # [rad]
        self._movers = (
            {a.name: _JointMover(a, self.params.joint_speed * self.dt) for a in robot.arms} if joint_space else {}
        )

    def phases(self) -> dict[str, str]:
        """Arm name -> current phase."""
        return {sc.arm.name: sc.phase for sc in self._scripts}

    def act(self, obs: ExpertObservation) -> np.ndarray:
        """The next chunk, shape (H, D) in `robot.action.dimension_names` order."""
        columns: dict[str, np.ndarray] = {}
        for sc in self._scripts:
            sc.begin_chunk(obs.T_world_tcp[sc.arm.name], obs.T_world_objects)
            if self._movers:
                columns.update(self._joint_chunk(sc, obs))
            else:
                columns.update(self._delta_chunk(sc, obs))
        missing = [n for n in self.robot.action.dimension_names if n not in columns]
        if missing:
            raise ConfigError(f"robot {self.robot.name}: the expert has no values for action dimensions {missing}")
        return np.column_stack([columns[n] for n in self.robot.action.dimension_names])

    def _delta_chunk(self, sc: ArmScript, obs: ExpertObservation) -> dict[str, np.ndarray]:
        R_wb = base_transform(sc.arm)[:3, :3]
        open_value = 0.0 if sc.arm.gripper is not None and sc.arm.gripper.invert else 1.0
        rows = []
        T = obs.T_world_tcp[sc.arm.name]
        for _ in range(self.horizon):
            goal, is_open = sc.step(T, obs.T_world_objects)
            T_next = T if goal is None else move_toward(T, goal, self._step, self._turn)
            d, R_delta = T_next[:3, 3] - T[:3, 3], T_next[:3, :3] @ T[:3, :3].T
            R_frame = T[:3, :3] if self.robot.action.frame == EE_FRAME else R_wb  # axes the deltas are given in
            rows.append(
                [
                    *(R_frame.T @ d),
                    *matrix_to_rpy(R_frame.T @ R_delta @ R_frame),
                    open_value if is_open else 1.0 - open_value,
                ]
            )
            T = T_next
        rows = np.array(rows)
        return dict(zip(("x", "y", "z", "roll", "pitch", "yaw", GRIPPER), rows.T))

    def _joint_chunk(self, sc: ArmScript, obs: ExpertObservation) -> dict[str, np.ndarray]:
        mover = self._movers[sc.arm.name]
        T_wb = base_transform(sc.arm)
        q = obs.q[sc.arm.name].copy()
        rows, grips = [], []
        g = sc.arm.gripper
        for _ in range(self.horizon):
            T = T_wb @ mover.model.fk(q)
            goal, is_open = sc.step(T, obs.T_world_objects)
            if goal is not None:
                q = mover.toward(q, np.linalg.inv(T_wb) @ goal)
            rows.append(q.copy())
            grips.append(is_open)
        out = dict(zip(sc.arm.chain.joint_names, np.array(rows).T))
        if g is not None:
            # The action's gripper is the policy's [0, 1] openness (ACT's normalized gripper), as the
            # bridge reads it (`actions.gripper`), not the joint's own units.
            open_value = 0.0 if g.invert else 1.0
            out[g.joint] = np.where(grips, open_value, 1.0 - open_value)
        return out


class _JointMover:
    """Straight joint-space moves toward IK solutions of TCP goals, for one arm."""

    def __init__(self, arm: ArmSpec, speed_dt: float) -> None:
        from ros2_vla.kinematics.model import ArmModel  # pinocchio only for joint-space experts

        self.model = ArmModel.from_arm(arm)
        self.max_step = speed_dt * np.asarray(self.model.velocity_limits)  # [rad] per step, per joint
        self._mid = (self.model.lower + self.model.upper) / 2
        self._half = (self.model.upper - self.model.lower) / 2
        self._cache: tuple[np.ndarray, np.ndarray] | None = None  # (T_base_goal, q_goal)
        self._rng = np.random.default_rng(0)

    def toward(self, q: np.ndarray, T_base_goal: np.ndarray) -> np.ndarray:
        """q [rad] (n,) one step closer to the goal's IK solution, every joint arriving together."""
        q_goal = self.solve(T_base_goal, q)
        dq = q_goal - q
        ratio = float(np.max(np.abs(dq) / self.max_step))
        return q + (dq / ratio if ratio > 1.0 else dq)

    def solve(self, T_base_goal: np.ndarray, q_now: np.ndarray) -> np.ndarray:
        """IK of the goal; seeds: q_now, home, then random ones, until a central converged solution."""
        from ros2_vla.ik.solve import solve_ik

        if self._cache is not None and np.allclose(self._cache[0], T_base_goal, atol=1e-3):
            return self._cache[1]
        seeds = [q_now, self.model.home]
        seeds += [self._rng.uniform(self.model.lower, self.model.upper) for _ in range(_SEEDS)]
        best, best_cost = q_now, np.inf
        for seed in seeds:
            result = solve_ik(self.model, T_base_goal, seed)
            spread = float(np.max(np.abs(result.q - self._mid) / self._half))
            cost = result.position_error * 1e3 + result.rotation_error * 1e2 + spread
            if cost < best_cost:
                best, best_cost = result.q, cost
            if result.converged and spread < _CENTRAL:
                break
        self._cache = (np.array(T_base_goal), best)
        return best
