"""The bridge's state: armed or not, the latest joint state, the plan each arm is executing.

Pure (every time is passed in) so the whole safety behaviour is tested without ROS; bridge_node
only feeds it messages and a timer and publishes what `tick` returns.

Safety rules, in priority order:
1. Disarmed: nothing is sent. Disarming while moving sends one stop: the commanded motion brought to
   rest within the acceleration limits.
2. Joint states missing, incomplete or older than the timeout: the same stop, the plan is dropped, nothing
   else is sent until fresh states arrive. The stop starts from the command, not from the last measured
   position: the arm has moved on since that measurement (a hold there yanked it back, past its speed
   limits, in the sim).
3. A rejected chunk (or one with no reachable step) changes nothing: the current plan goes on or
   the arm holds.
4. The clock going back (a stepped system clock, a looping /clock): plans, joint state receipt times and
   chunk stamps are timed on the old clock, so the motion commanded at its last instant is stopped, and
   the bridge holds until joint states arrive on the new clock (`clock_jumps` says so, once each).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace

import numpy as np

from ros2_vla.actions.chunk import Chunk
from ros2_vla.bridge.gripper_plan import GripperPlan
from ros2_vla.bridge.planner import ChunkPlan, ChunkPlanner, IkSolver
from ros2_vla.bridge.status import BridgeCode, BridgeState
from ros2_vla.collision_config import CHECK_COLLISIONS, CollisionSpec, SceneBox
from ros2_vla.config import RobotConfig
from ros2_vla.errors import ChunkError, ConfigError, TrajectoryError
from ros2_vla.ik.params import IkParams
from ros2_vla.ik.solve import solve_ik
from ros2_vla.trajectory.blend_config import BlendConfig
from ros2_vla.trajectory.blending import TrajectoryBlender
from ros2_vla.trajectory.timing import time_waypoints


@dataclass(frozen=True)
class TrajectoryCommand:
    """One JointTrajectory to publish."""

    topic: str
    joint_names: tuple[str, ...]
    times_from_start: np.ndarray  # [s] (N,) strictly increasing, > 0
    positions: np.ndarray  # (N, m)
    velocities: np.ndarray | None  # (N, m); None: positions only, which a controller plays linearly
    # [s] the bridge time the points count from (a stop: one that arrives late must not be played late, and
    # one that arrives after its end is refused by the controller); None: from receipt (stamp zero).
    start: float | None = None


class Bridge:
    """The bridge's safety core: joint states and chunks in, the trajectories to send (each plan once) out."""

    def __init__(
        self,
        robot: RobotConfig,
        blend: BlendConfig | None = None,
        ik: IkParams | None = None,
        joint_state_timeout: float | None = None,
        ik_solver: IkSolver = solve_ik,
        check_collisions: bool = CHECK_COLLISIONS,
        scene_boxes: Sequence[SceneBox] = (),
    ) -> None:
        """check_collisions: check every planned step against the robot's collision model (`collision:` in its
        config) and the scene, with `scene_boxes` added to the config's; a robot without one is not checked."""
        self.robot = robot
        self.planner = ChunkPlanner(robot, ik, ik_solver, _collision_spec(robot, check_collisions, scene_boxes))
        self.timeout = robot.safety.joint_state_timeout if joint_state_timeout is None else joint_state_timeout
        blend = blend or BlendConfig()
        self.blenders = {
            name: TrajectoryBlender(blend, m.velocity_limits, m.acceleration_limits)
            for name, m in self.planner.models.items()
        }
        self.grippers = {arm.name: GripperPlan(arm.gripper) for arm in robot.arms if arm.gripper is not None}
        time_waypoints(np.zeros((2, 1)), 1.0, np.ones(1), np.ones(1))  # loads its compiled pass now, not on a chunk
        self.enabled = False
        self._q: dict[str, np.ndarray] = {}  # measured arm positions
        self._g: dict[str, float] = {}  # measured gripper positions
        self._stamps: dict[str, float] = {}  # receipt time of each arm's last complete, finite joint state
        self._holding_stale = False
        self._newest_stamp = float("-inf")  # [s] stamp of the newest chunk played: an older one is refused
        self._clock = float("-inf")  # [s] the latest time seen: one further back than CLOCK_JUMP is a jump
        self._jumped_back = 0.0  # [s] how far the clock last jumped back, until joint states arrive after it
        self._pending: list[TrajectoryCommand] = []  # the stop a clock jump made, sent at the next tick
        self.clock_jumps: list[str] = []  # what each clock jump did, for bridge_node to report (and clear)
        self._active = False  # a plan is loaded and not yet dropped
        # The loaded plan has changed since it was last sent. A plan goes out once, not every tick: a
        # JointTrajectoryController (open_loop_control false, its default) starts each trajectory it takes
        # from the measured state, so re-sending every tick restarts from behind the reference and must
        # catch up: measured joints ran up to 1.8x their speed limits in the sim that way.
        self._unsent = False
        self._last = BridgeState(BridgeCode.IDLE)

    def set_blend(self, blend: BlendConfig) -> None:
        """How the next chunks take over (bridge_node's blend_mode, blend_steps, ensemble_m while it runs)."""
        for blender in self.blenders.values():
            blender.set_config(blend)

    # --- inputs -----------------------------------------------------------------------------
    def update_joint_state(self, names: list[str], positions: list[float], now: float) -> None:
        """A /joint_states message received at `now`; names not of this robot are ignored."""
        self._see(now)
        index = {n: i for i, n in enumerate(names)}
        for arm in self.robot.arms:
            joints = arm.chain.joint_names
            if all(j in index for j in joints):
                q = np.array([positions[index[j]] for j in joints], dtype=np.float64)
                if np.all(np.isfinite(q)):
                    # Only a complete, finite state refreshes the arm: a message that lacks a joint
                    # (a gripper-only publisher) or holds NaN must not keep old positions "fresh".
                    self._q[arm.name] = q
                    self._stamps[arm.name] = now
            if (
                arm.gripper is not None
                and arm.gripper.joint in index
                and np.isfinite(positions[index[arm.gripper.joint]])
            ):
                self._g[arm.name] = float(positions[index[arm.gripper.joint]])

    def set_enabled(self, enabled: bool, now: float) -> tuple[bool, str, list[TrajectoryCommand]]:
        """Arm or disarm; returns (accepted, message, commands to send now)."""
        self._see(now)
        if enabled == self.enabled:
            return True, f"already {'enabled' if enabled else 'disabled'}", []
        if enabled:
            problem = self._input_problem(now)
            if problem:
                return False, f"cannot enable: {problem}", []
            self.enabled, self._holding_stale = True, False
            self._reset_to_measured(now)
            return True, "enabled: holding until the next chunk", []
        commands = self._stop_commands(now) if self._active else []
        self.enabled, self._active = False, False
        return True, "disabled: holding position", commands

    def on_chunk(self, chunk: Chunk, now: float) -> BridgeState:
        """Plan a new chunk into the executing trajectory; returns the status it leads to."""
        self._see(now)
        if not self.enabled:
            return self._set(BridgeState(BridgeCode.DISARMED, "disarmed: chunk ignored", chunk_sequence=chunk.sequence))
        problem = self._input_problem(now)
        if problem:
            return self._set(
                BridgeState(BridgeCode.STALE_INPUT, f"{problem}: chunk ignored, holding", True, chunk.sequence)
            )
        if self._newest_stamp > now:  # stamped ahead of this clock (another host's clock): forget the order
            self._newest_stamp = float("-inf")
        if chunk.stamp < self._newest_stamp:  # played after a newer one, it would rewind the plan
            return self._set(
                BridgeState(
                    BridgeCode.CHUNK_REJECTED,
                    (
                        f"chunk {chunk.sequence} is out of order: its observation ({chunk.stamp:.3f} s) is older "
                        f"than the chunk already played ({self._newest_stamp:.3f} s); ignored"
                    ),
                    True,
                    chunk.sequence,
                    chunk_lateness=lateness(chunk, now),
                )
            )
        if self._holding_stale:  # fresh again before the next tick: resume from the measured state here
            self._holding_stale, self._active = False, False
        if not self._active:
            self._reset_to_measured(now)
        # A delta chunk starts from the pose its observation saw (the commanded one then), not the later one.
        q_start = {name: b.chunk_start(now, chunk.stamp) for name, b in self.blenders.items()}
        try:
            plan = self.planner.plan(chunk, q_start)
        except ChunkError as exc:
            return self._set(
                BridgeState(BridgeCode.CHUNK_REJECTED, f"chunk {chunk.sequence} rejected: {exc}", True, chunk.sequence)
            )
        jump = 0.0
        if plan.steps > 0:
            jump = self._load(plan, chunk, now)
        self._newest_stamp = chunk.stamp
        return self._set(_state_of(plan, chunk.sequence, lateness(chunk, now), jump))

    # --- outputs ----------------------------------------------------------------------------
    def tick(self, now: float) -> list[TrajectoryCommand]:
        """What to send at this control tick: each arm's plan once after it changed, a hold, or nothing."""
        self._see(now)
        if not self.enabled:
            return []
        if self._pending:  # a clock jump's stop
            commands, self._pending = self._pending, []
            return commands
        problem = self._input_problem(now)
        if problem:
            if self._holding_stale:
                return []
            self._holding_stale = True
            self._set(replace(self._last, code=BridgeCode.STALE_INPUT, message=f"{problem}: holding"))
            commands = self._stop_commands(now)
            self._active = False
            return commands
        if self._holding_stale:  # fresh again: resume from where the arm really is
            self._holding_stale = False
            self._reset_to_measured(now)
            after = f" after the clock jumped back {self._jumped_back:.2f} s" if self._jumped_back else ""
            self._jumped_back = 0.0
            self._set(
                BridgeState(BridgeCode.IDLE, f"joint states fresh again{after}: holding until the next chunk", True)
            )
            return []
        if not self._active or self._plan_ended(now):
            return []
        drift = self._tracking_error()
        if drift:  # the arm is not where we are driving it: stop pushing, hold where it is
            self._set(replace(self._last, code=BridgeCode.TRACKING_ERROR, message=f"{drift}: holding"))
            commands = self._hold_commands(now)
            self._active = False
            return commands
        if not self._unsent:
            return []
        self._unsent = False
        return self._plan_commands(now)

    def state(self, now: float) -> BridgeState:
        """The status to publish now."""
        if not self.enabled:
            return replace(
                self._last, code=BridgeCode.DISARMED, message="disarmed: call /vla/enable to arm", enabled=False
            )
        problem = self._input_problem(now)
        if problem:
            return replace(self._last, code=BridgeCode.STALE_INPUT, message=f"{problem}: holding", enabled=True)
        return replace(self._last, enabled=True)

    def setpoint(self, arm: str, now: float) -> tuple[np.ndarray, float | None] | None:
        """The arm's commanded joint positions (n,) and gripper position at `now`, as a streaming output
        (a forward position controller) sends them each period; None while disarmed or before any state.
        While holding (stale input, a tracking error) it is the hold position."""
        blender = self.blenders[arm]
        if not self.enabled or blender.plan is None:
            return None
        gripper = self.grippers.get(arm)
        return blender.sample(now)[0], (float(gripper.sample(now)[0][0]) if gripper is not None else None)

    def predicted_path(self, arm: str, now: float) -> np.ndarray:
        """TCP positions [m] (N, 3) in the arm base frame along the rest of the plan."""
        plan = self.blenders[arm].plan
        if plan is None or not self._active:
            return np.zeros((0, 3))
        model = self.planner.models[arm]
        rows = [plan.sample(now)[0]] + [q for t, q in zip(plan.times, plan.positions) if t > now]
        return np.array([model.fk(q)[:3, 3] for q in rows])

    # --- internals --------------------------------------------------------------------------
    def _see(self, now: float) -> None:
        """Note the time `now` [s] of a call; a jump back is handled before the call goes on."""
        if now < self._clock - CLOCK_JUMP:
            self._clock_jumped(now, self._clock - now)
        self._clock = max(self._clock, now)

    def _clock_jumped(self, now: float, back: float) -> None:
        last = now + back
        if self.enabled:
            self._pending = self._stop_commands(now, at=last)
            self._holding_stale = True  # fresh joint states on the new clock resume from the measured state
        self._active = False
        self._stamps.clear()  # received on the old clock: none is known to be fresh on the new one
        self._newest_stamp = float("-inf")  # chunk order is on the old clock too
        self._clock = now
        self._jumped_back = back
        note = f"the clock jumped back {back:.2f} s: " + (
            "stopping the commanded motion, holding until joint states arrive" if self.enabled else "disarmed"
        )
        self._set(BridgeState(BridgeCode.STALE_INPUT, note, self.enabled))
        self.clock_jumps.append(note)

    def _input_problem(self, now: float) -> str:
        missing = [a.name for a in self.robot.arms if a.name not in self._stamps]
        if missing and self._jumped_back:
            return f"the clock jumped back {self._jumped_back:.2f} s; no joint state since"
        if missing:
            return f"no complete joint state yet for arm(s) {missing}"
        age = now - min(self._stamps.values())
        if age > self.timeout:
            return f"joint states are {age:.2f} s old (limit {self.timeout:.2f} s)"
        return ""

    def _tracking_error(self) -> str:
        limit = self.robot.safety.max_tracking_error
        for name, blender in self.blenders.items():
            # Against the command of the measurement's own time, not of `now`: a late control tick or a
            # late joint state (a busy CPU, DDS) is not the arm falling behind. From the plan in force then:
            # with joint states a few hundred ms old, the plan of now was not yet commanded at their time
            # (measured against it, the arm looked that far off and was held back where it had been).
            error = np.abs(blender.commanded_at(self._stamps[name]) - self._q[name])
            if error.max() > limit:
                joint = self.planner.models[name].joint_names[int(error.argmax())]
                return f"{joint} is {error.max():.2f} rad from its command (limit {limit:.2f})"
        return ""

    def _plan_ended(self, now: float) -> bool:
        """Every arm and gripper is at rest at the end of its plan."""
        return all(b.plan.end_time <= now for b in self.blenders.values()) and all(
            g.end_time <= now for g in self.grippers.values()
        )

    def _reset_to_measured(self, now: float) -> None:
        for name, b in self.blenders.items():
            b.reset(now, self._q[name])
        for name, g in self.grippers.items():
            g.reset(now, self._g.get(name, g.spec.open_position))
        self._active = False

    def _load(self, plan: ChunkPlan, chunk: Chunk, now: float) -> float:
        """Blend the plan into each arm's trajectory; returns the switch jump [rad]: the largest joint change
        the new plan makes to the command one step (chunk.dt) ahead, while the arm was moving (0 from rest)."""
        dt = chunk.dt / max(plan.speed_scale, 1e-3)  # near a singularity: the same path, slower
        # Near a collision: each step that closes in takes 1 / factor times longer (at most 1 / MIN_COLLISION_SPEED:
        # MoveIt Servo's factor reaches 0.001 at contact, while a plan here stops halt_distance before it), and
        # the steps before it slow down gradually.
        stretch = (
            None
            if plan.step_scales is None
            else gradual_stretch(1.0 / np.maximum(plan.step_scales, MIN_COLLISION_SPEED))
        )
        loaded, jump = 0, 0.0
        for wp in plan.arms:
            blender = self.blenders[wp.arm]
            before = blender.plan
            # From rest there is no old path to hand over from: the chunk's own targets are played.
            moving = self._active and before.end_time > now
            try:
                after = blender.add(now, chunk.stamp, dt, wp.positions, blend=moving, stretch=stretch)
            except TrajectoryError:
                continue
            if after is before:
                continue  # every step of the chunk is already in the past
            if moving:
                ahead = now + chunk.dt
                jump = max(jump, float(np.max(np.abs(after.sample(ahead)[0] - before.sample(ahead)[0]))))
            kept = len(after.times) - 1  # "skip" and "ensemble" drop the chunk's past steps
            if wp.gripper is not None and wp.arm in self.grippers:
                self.grippers[wp.arm].add(now, after.times[1:], wp.gripper[-kept:])
            loaded = max(loaded, kept)
        self._active = self._active or loaded > 0
        self._unsent = self._unsent or loaded > 0
        return jump

    def _plan_commands(self, now: float) -> list[TrajectoryCommand]:
        commands = []
        for arm in self.robot.arms:
            plan = self.blenders[arm.name].plan
            ahead = plan.times > now + 1e-6
            if not ahead.any():
                times = np.array([now + 1e-3])
                q, qd = plan.sample(times[0])
                q, qd = q[None, :], np.zeros_like(q)[None, :]
            else:
                times, q, qd = plan.times[ahead], plan.positions[ahead], plan.velocities[ahead]
            commands += self._commands_for(arm.name, times - now, q, qd, times)
        return commands

    def _hold_commands(self, now: float) -> list[TrajectoryCommand]:
        """Hold where the arm was measured (fresh): it is not where it was commanded (a tracking error)."""
        commands = []
        for arm in self.robot.arms:
            q = self._q[arm.name]
            self.blenders[arm.name].reset(now, q)
            self._stop_gripper(arm.name, now)
            # One point a control period ahead: the controller comes to rest there.
            t = np.array([1.0 / self.robot.control_rate_hz])
            commands += self._commands_for(arm.name, t, q[None, :], np.zeros((1, q.size)), now + t)
        return commands

    def _stop_commands(self, now: float, at: float | None = None) -> list[TrajectoryCommand]:
        """Bring each arm's motion commanded at `at` (default: now; before a clock jump: the old clock's last
        instant) to rest from `now` (`TrajectoryBlender.stop`), stamped with `now`."""
        commands = []
        for arm in self.robot.arms:
            if self.blenders[arm.name].plan is None:
                continue
            stop = self.blenders[arm.name].stop(now, 1.0 / self.robot.control_rate_hz, at=at)
            self._stop_gripper(arm.name, now, at)
            commands += self._commands_for(
                arm.name, stop.times[1:] - now, stop.positions[1:], stop.velocities[1:], stop.times[1:], start=now
            )
        return commands

    def _stop_gripper(self, arm_name: str, now: float, at: float | None = None) -> None:
        if arm_name in self.grippers:
            g = self.grippers[arm_name]
            g.reset(now, float(g.sample(now if at is None else at)[0][0]))

    def _commands_for(self, arm_name: str, t_rel, q, qd, t_abs, start: float | None = None) -> list[TrajectoryCommand]:
        arm = next(a for a in self.robot.arms if a.name == arm_name)
        names = arm.chain.joint_names
        gripper = self.grippers.get(arm_name)
        if gripper is None:
            return [TrajectoryCommand(arm.trajectory_topic, names, t_rel, q, qd, start)]
        # The gripper may need longer than the arm (GripperPlan): its later knots follow the arm's last
        # point, where the arm is at rest (plans stop at their end, holds stand still).
        t_abs = np.asarray(t_abs, dtype=float)
        later = gripper.times[gripper.times > t_abs[-1] + 1e-9]
        tg_abs = np.concatenate([t_abs, later])
        tg_rel = tg_abs - (t_abs[0] - t_rel[0])
        g, gd = gripper.sample(tg_abs)
        if arm.gripper.mode == "in_trajectory":
            q = np.vstack([q, np.repeat(q[-1:], later.size, axis=0)])
            qd = np.vstack([qd, np.zeros((later.size, qd.shape[1]))])
            return [
                TrajectoryCommand(
                    arm.trajectory_topic,
                    names + (arm.gripper.joint,),
                    tg_rel,
                    np.column_stack([q, g]),
                    np.column_stack([qd, gd]),
                    start,
                )
            ]
        # Positions only: a JointTrajectoryController then interpolates linearly, which is the gripper
        # path itself; velocities would make it a cubic that overshoots the rate limit between points.
        return [
            TrajectoryCommand(arm.trajectory_topic, names, t_rel, q, qd, start),
            TrajectoryCommand(arm.gripper.topic, (arm.gripper.joint,), tg_rel, g[:, None], None, start),
        ]

    def _set(self, state: BridgeState) -> BridgeState:
        self._last = state
        return state


CLOCK_JUMP = 0.05  # [s] a time this much before the latest one seen is a clock jump, not two callbacks' order
MAX_STRETCH_RATIO = 2.0  # a step lasts at most this many times the one before it
MIN_COLLISION_SPEED = 0.05  # a step slowed for a collision takes at most 20 times its dt


def gradual_stretch(stretch: np.ndarray) -> np.ndarray:
    """`stretch` (per step, >= 1) with earlier steps slowed too, so that no step lasts more than
    MAX_STRETCH_RATIO times the one before: the arm slows down over several steps before a step it must take
    slowly. The timing's waypoint velocities follow the neighbouring segments; next to a far slower segment
    they would carry the fast one's speed into it, and the cubic between them overshoots the waypoint (in
    the sim, the arm ran past a collision halt to its joint limits that way)."""
    out = np.array(stretch, dtype=np.float64)
    for k in range(out.size - 2, -1, -1):
        out[k] = max(out[k], out[k + 1] / MAX_STRETCH_RATIO)
    return out


def _collision_spec(robot: RobotConfig, check: bool, boxes: Sequence[SceneBox]) -> CollisionSpec | None:
    if boxes and robot.collision is None:
        raise ConfigError(f"collision boxes given, but {robot.name}'s config has no collision model (`collision:`)")
    if not check or robot.collision is None:
        return None
    return robot.collision.with_boxes(boxes)


def lateness(chunk: Chunk, now: float) -> float:
    """[s] how long after its first step's target time (stamp + dt) a chunk arrived; 0 when on time."""
    return max(0.0, now - (chunk.stamp + chunk.dt))


def _state_of(plan: ChunkPlan, sequence: int, late: float, jump: float) -> BridgeState:
    code = plan.code
    if plan.steps == 0 and code == BridgeCode.OK:
        code = BridgeCode.IDLE
    message = plan.message or f"chunk {sequence}: {plan.steps} steps planned"
    if late > 0 and not plan.message:
        message += f", {late:.2f} s late: played from now"
    return BridgeState(
        code,
        message,
        True,
        sequence,
        plan.ik_position_residual,
        plan.ik_rotation_residual,
        plan.condition_number,
        plan.slowest,
        late,
        jump,
    )
