"""sim_node's side of a driver profile: the simulated robot on the driver's own interfaces.

Each interface ends in the sim's JointTrajectoryController-like controllers (ros2_vla.sim.controller),
so the physics is the same whatever the profile; what changes is the wire, played as each driver does:
- JointTrajectory topics: as today;
- FollowJointTrajectory (ros2_controllers' JointTrajectoryController): a goal naming joints the controller
  does not have is rejected; a newer goal preempts the running one (which ends aborted here: rclpy cannot
  cancel a goal nobody asked to cancel, where JTC reports it canceled); a cancel request stops the joints
  where they are; feedback at 20 Hz; SUCCESSFUL when the trajectory has ended;
- forward position / Interbotix joint_group / joint_single in position mode: each command is the new
  position reference at once (a step, as forward_command_controller and xs_sdk set the motors' goal);
- joint_single in PWM mode (xs_sdk's default for the WidowX gripper): + opens, - closes at the gripper's
  velocity, 0 holds where it is;
- franka_gripper (gripper_action_server.cpp): `move` to a width, `grasp` that succeeds when the fingers
  stop within [width - inner, width + outer] and aborts otherwise, `homing` opens; `gripper_action`
  (GripperCommand, position per finger) moves when wider than now, else grasps with epsilon 0.005.
Joint states go out on each source's topic with its names (prefix off) and units.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from rclpy.action import ActionServer, CancelResponse, GoalResponse
from rclpy.node import Node
from rclpy.task import Future
from sensor_msgs.msg import JointState
from std_msgs.msg import Float64MultiArray
from trajectory_msgs.msg import JointTrajectory

from ros2_vla.config import ArmSpec, RobotConfig
from ros2_vla.driver_profile import FRANKA_GRIPPER_ACTIONS, DriverProfile, GripperOutput, driver_joint_state
from ros2_vla.ros.convert import time_to_sec, trajectory_points
from ros2_vla.ros.driver_outputs import interface_type
from ros2_vla.ros.qos import COMMAND, SENSOR_DRIVER
from ros2_vla.sim import controller as jtc
from ros2_vla.sim.world import Simulation

# (controller key, trajectory, what for the log) -> "" when accepted, else why not
Accept = Callable[[str, jtc.SimTrajectory, str], str]
FEEDBACK_PERIOD = 0.05  # [s] FollowJointTrajectory feedback
FRANKA_GRASP_EPSILON = 0.005  # [m] what gripper_action grasps with
SETTLE = 0.3  # [s] a gripper that has not moved for this long has stopped (reached, or on an object)


@dataclass
class _Goal:
    """An action goal the sim is executing: it ends when `done(now)` says so."""

    handle: object
    future: Future
    outcome: Callable[[float], object | None]  # sim time -> (status, result) once over, else None
    feedback: Callable[[float], object | None] | None = None
    next_feedback: float = 0.0


class DriverPlay:
    """The driver profile's topics and action servers on sim_node, feeding the simulated controllers."""

    def __init__(self, node: Node, sim: Simulation, robot: RobotConfig, profile: DriverProfile, accept: Accept) -> None:
        self.node, self.sim, self.robot, self.profile, self.accept = node, sim, robot, profile, accept
        self._goals: list[_Goal] = []
        self._fjt: dict[str, _Goal] = {}  # arm -> running FollowJointTrajectory goal
        self._keep: list = []  # servers and subscriptions live as long as this
        self.state_pubs = [(s, node.create_publisher(JointState, s.topic, SENSOR_DRIVER)) for s in profile.joint_states]
        for arm in robot.arms:
            self._arm(arm)
            if arm.gripper is not None:
                self._gripper(arm, profile.arm(arm.name).gripper)

    # --- joint states ---------------------------------------------------------------------------
    def publish_joint_states(self, names, positions, velocities, stamp) -> None:
        for source, pub in self.state_pubs:
            n, p, v = driver_joint_state(self.robot, self.profile, source, names, positions, velocities)
            msg = JointState(name=n, position=p, velocity=v)
            msg.header.stamp = stamp
            pub.publish(msg)

    # --- goals ------------------------------------------------------------------------------------
    def step(self) -> None:
        """Finish goals whose motion is over, send feedback; called at the physics rate."""
        now = self.sim.time
        for goal in list(self._goals):
            if goal.future.done():
                self._goals.remove(goal)
                continue
            if goal.feedback is not None and now >= goal.next_feedback:
                fb = goal.feedback(now)
                if fb is not None:
                    goal.handle.publish_feedback(fb)
                goal.next_feedback = now + FEEDBACK_PERIOD
            result = goal.outcome(now)
            if result is not None:
                goal.future.set_result(result)
                self._goals.remove(goal)

    def _server(self, action_type, name: str, execute, goal_callback=None) -> None:
        kwargs = {"goal_callback": goal_callback} if goal_callback else {}
        self._keep.append(
            ActionServer(
                self.node, action_type, name, execute, cancel_callback=lambda _: CancelResponse.ACCEPT, **kwargs
            )
        )

    async def _run(self, goal: _Goal):
        """An execute callback's body: wait (without blocking the executor) until the goal is done."""
        self._goals.append(goal)
        status, result = await goal.future
        getattr(goal.handle, status)()
        return result

    # --- arms -------------------------------------------------------------------------------------
    def _arm(self, arm: ArmSpec) -> None:
        command = self.profile.arm(arm.name).command
        key = arm.trajectory_topic
        if command.interface == "joint_trajectory":
            self._sub(JointTrajectory, command.name, lambda m: self._trajectory(key, m, command.name))
        elif command.interface == "forward_position":
            names = self.sim.controllers[key].joint_names
            self._sub(Float64MultiArray, command.name, lambda m: self._step(key, names, m.data, command.name))
        elif command.interface == "joint_group":
            msg_type = interface_type("interbotix_xs_msgs.msg", "JointGroupCommand")
            names = arm.chain.joint_names

            def on_group(m) -> None:
                if m.name != command.group:
                    self.node.get_logger().warning(
                        f"{command.name}: no group {m.name!r} (this robot has {command.group!r})"
                    )
                    return
                self._step(key, names, m.cmd, command.name)

            self._sub(msg_type, command.name, on_group)
        else:
            self._follow_joint_trajectory(arm, key, command.name)

    def _sub(self, msg_type, topic: str, callback) -> None:
        self._keep.append(self.node.create_subscription(msg_type, topic, callback, COMMAND))

    def _trajectory(self, key: str, msg: JointTrajectory, what: str) -> None:
        stamp = time_to_sec(msg.header.stamp)
        self.accept(key, self._sim_trajectory(msg, stamp), what)

    def _sim_trajectory(self, msg: JointTrajectory, stamp: float) -> jtc.SimTrajectory:
        points = tuple(jtc.TrajectoryPoint(tuple(p), t, tuple(v)) for p, t, v in trajectory_points(msg))
        start = 0.0 if stamp == 0.0 else self.node.sim_time_at(stamp)
        return jtc.SimTrajectory(tuple(msg.joint_names), points, start)

    def _step(self, key: str, names, values, what: str) -> str:
        values = [float(v) for v in values]
        if len(values) != len(names):
            self.node.get_logger().warning(
                f"{what}: {len(values)} values for {len(names)} joints {list(names)}: ignored",
                throttle_duration_sec=1.0,
            )
            return "wrong length"
        return self.accept(key, jtc.SimTrajectory(tuple(names), (jtc.TrajectoryPoint(tuple(values), 0.0),)), what)

    def _follow_joint_trajectory(self, arm: ArmSpec, key: str, name: str) -> None:
        action = interface_type("control_msgs.action", "FollowJointTrajectory")
        controller = self.sim.controllers[key]

        def on_goal(request) -> GoalResponse:
            names = list(request.trajectory.joint_names)
            if not names or set(names) - set(controller.joint_names) or not request.trajectory.points:
                self.node.get_logger().warning(f"{name}: goal for joints {names} rejected")
                return GoalResponse.REJECT
            return GoalResponse.ACCEPT

        async def execute(handle):
            request = handle.request
            result = action.Result()
            trajectory = self._sim_trajectory(request.trajectory, time_to_sec(request.trajectory.header.stamp))
            previous = self._fjt.pop(arm.name, None)
            if previous is not None and not previous.future.done():
                r = action.Result(error_code=action.Result.INVALID_GOAL)
                r.error_string = "Current goal cancelled due to new incoming action."
                previous.future.set_result(("abort", r))
            why = self.accept(key, trajectory, name)
            if why:
                result.error_code, result.error_string = action.Result.INVALID_GOAL, why
                handle.abort()
                return result
            names = list(request.trajectory.joint_names)
            cols = [controller.joint_names.index(n) for n in names]

            def done(now: float):
                if handle.is_cancel_requested:
                    # JTC (set_hold_position) holds the current state: one point there, at the start instant.
                    here = jtc.TrajectoryPoint(tuple(self.sim.measured(names)), 0.0)
                    self.accept(key, jtc.SimTrajectory(tuple(names), (here,)), f"{name} (cancel)")
                    return ("canceled", result)
                return ("succeed", result) if now >= controller.end_time() else None

            def feedback(now: float):
                fb = action.Feedback()
                fb.header.stamp = self.node.get_clock().now().to_msg()
                fb.joint_names = names
                desired = controller.sample(now)[cols]
                actual = np.array(self.sim.measured(names))
                fb.desired.positions, fb.actual.positions = desired.tolist(), actual.tolist()
                fb.error.positions = (desired - actual).tolist()
                return fb

            goal = _Goal(handle, Future(), done, feedback)
            self._fjt[arm.name] = goal
            return await self._run(goal)

        self._server(action, name, execute, on_goal)

    # --- grippers ---------------------------------------------------------------------------------
    def _gripper(self, arm: ArmSpec, out: GripperOutput) -> None:
        spec = arm.gripper
        key = spec.topic if spec.mode == "separate" else arm.trajectory_topic
        if out.interface == "in_trajectory":
            return  # travels in the arm's command
        if out.interface == "joint_trajectory":
            self._sub(JointTrajectory, out.name, lambda m: self._trajectory(key, m, out.name))
        elif out.interface == "joint_single":
            msg_type = interface_type("interbotix_xs_msgs.msg", "JointSingleCommand")

            def on_single(m) -> None:
                if m.name != out.joint:
                    self.node.get_logger().warning(f"{out.name}: no joint {m.name!r} (the gripper is {out.joint!r})")
                    return
                if not out.pwm:
                    value = out.to_bridge(spec, m.cmd)
                    self._step(key, (spec.joint,), (value,), out.name)
                elif m.cmd == 0:
                    self._ramp(key, spec, self._gripper_now(spec), spec.velocity, out.name)
                else:
                    target = spec.open_position if m.cmd > 0 else spec.closed_position
                    self._ramp(key, spec, target, spec.velocity, out.name)

            self._sub(msg_type, out.name, on_single)
        elif out.interface == "gripper_command":
            self._gripper_command(arm, key, out)
        else:
            self._franka_gripper(arm, key, out)

    def _gripper_now(self, spec) -> float:
        return float(self.sim.measured([spec.joint])[0])

    def _ramp(self, key: str, spec, target: float, speed: float, what: str) -> str:
        """Drive the gripper joint to `target` [bridge units] at `speed` [units/s]: returns "" or why not."""
        lo, hi = sorted((spec.closed_position, spec.open_position))
        target = float(np.clip(target, lo, hi))
        start = self._gripper_now(spec)
        duration = max(abs(target - start) / max(speed, 1e-6), 1e-3)
        points = (jtc.TrajectoryPoint((start,), 0.0), jtc.TrajectoryPoint((target,), duration))
        return self.accept(key, jtc.SimTrajectory((spec.joint,), points), what)

    def _settled(self, spec, since: float):
        """A predicate: the gripper has not moved for SETTLE s (reached its goal, or stopped on an object)."""
        track = {"value": self._gripper_now(spec), "at": since}

        def settled(now: float) -> bool:
            value = self._gripper_now(spec)
            if abs(value - track["value"]) > 1e-4:
                track["value"], track["at"] = value, now
            return now - track["at"] >= SETTLE

        return settled

    def _gripper_command(self, arm: ArmSpec, key: str, out: GripperOutput) -> None:
        action = interface_type("control_msgs.action", "GripperCommand")
        spec = arm.gripper
        to_bridge, to_driver = (lambda v: out.to_bridge(spec, v)), (lambda v: out.to_driver(spec, v))

        async def execute(handle):
            target = to_bridge(float(handle.request.command.position))
            lo, hi = sorted((spec.closed_position, spec.open_position))
            now_pos = self._gripper_now(spec)
            result = action.Result()
            if not lo - 1e-9 <= target <= hi + 1e-9:
                handle.abort()
                result.position = to_driver(now_pos)
                return result
            grasp = target < now_pos - 1e-4 if spec.open_position > spec.closed_position else target > now_pos + 1e-4
            self._ramp(key, spec, target, spec.velocity, out.name)
            settled = self._settled(spec, self.sim.time)

            def done(now: float):
                if not settled(now):
                    return None
                reached = self._gripper_now(spec)
                r = action.Result(position=to_driver(reached))
                r.reached_goal = abs(reached - target) <= FRANKA_GRASP_EPSILON
                r.stalled = not r.reached_goal
                return ("abort" if grasp and r.stalled else "succeed", r)

            return await self._run(_Goal(handle, Future(), done))

        self._server(action, out.name, execute)

    def _franka_gripper(self, arm: ArmSpec, key: str, out: GripperOutput) -> None:
        move = interface_type("franka_msgs.action", "Move")
        grasp = interface_type("franka_msgs.action", "Grasp")
        homing = interface_type("franka_msgs.action", "Homing")
        spec = arm.gripper
        ns = out.name.rstrip("/")
        to_bridge, to_driver = (lambda v: out.to_bridge(spec, v)), (lambda v: out.to_driver(spec, v))
        bridge_speed = lambda v: abs(to_bridge(v) - to_bridge(0.0))  # noqa: E731  width speed -> joint speed

        def make(action, kind: str):
            async def execute(handle):
                g = handle.request
                width = 1e9 if kind == "homing" else float(g.width)  # homing: open all the way
                speed = spec.velocity if kind == "homing" else bridge_speed(float(g.speed))
                why = self._ramp(key, spec, to_bridge(width), speed, f"{ns}/{kind}")
                if why:
                    handle.abort()
                    return action.Result(success=False, error=why)
                settled = self._settled(spec, self.sim.time)

                def done(now: float):
                    if not settled(now):
                        return None
                    reached = to_driver(self._gripper_now(spec))
                    if kind == "grasp":
                        ok = width - g.epsilon.inner <= reached <= width + g.epsilon.outer
                        text = "" if ok else f"grasp failed: width {reached:.4f} m outside the epsilon of {width:.4f} m"
                    else:
                        ok, text = True, ""
                    return ("succeed" if ok else "abort", action.Result(success=ok, error=text))

                return await self._run(_Goal(handle, Future(), done))

            return execute

        for action, kind in zip((move, grasp, homing), FRANKA_GRIPPER_ACTIONS):
            self._server(action, f"{ns}/{kind}", make(action, kind))
