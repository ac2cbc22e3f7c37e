"""bridge_node: ActionChunks in, joint commands out, at the control rate, safely.

A thin shell over ros2_vla.bridge.Bridge: it converts messages, keeps the timers, and sends what the core
decides through the output adapters of the robot's driver profile (`driver`: JointTrajectory topics by
default; FollowJointTrajectory, forward position, GripperCommand, franka_gripper, Interbotix commands:
ros2_vla.ros.driver_outputs). Topics and limits come from config/<robot>.yaml.
"""

from __future__ import annotations

import sys
from dataclasses import replace

from geometry_msgs.msg import PoseStamped
from nav_msgs.msg import Path
from rcl_interfaces.msg import SetParametersResult
from rclpy.node import Node
from std_srvs.srv import SetBool

from ros2_vla.actions.chunk import chunk_from_message
from ros2_vla.bridge.bridge import Bridge, TrajectoryCommand
from ros2_vla.bridge.status import BridgeCode, BridgeState
from ros2_vla.bringup import NAMES
from ros2_vla.collision_config import parse_boxes
from ros2_vla.config import load_robot_config
from ros2_vla.driver_profile import load_driver_profile
from ros2_vla.errors import ConfigError, TrajectoryError
from ros2_vla.ik.solve import solve_ik
from ros2_vla.msg import ActionChunk, BridgeStatus
from ros2_vla.ros.convert import bridge_status_msg
from ros2_vla.ros.driver_inputs import subscribe_joint_states
from ros2_vla.ros.driver_outputs import JointSingle, Segment, make_outputs
from ros2_vla.ros.parameters import declare_parameters
from ros2_vla.ros.qos import COMMAND, STATUS
from ros2_vla.ros.spin import run_node
from ros2_vla.trajectory.blend_config import BlendConfig

_BLEND_PARAMETERS = ("blend_mode", "blend_steps", "ensemble_m")  # dynamic: read at the next chunk


class BridgeNode(Node):
    """The `bridge` node: the Bridge core on ROS topics, with its control and status timers and enable service."""

    def __init__(self) -> None:
        super().__init__("bridge")
        # The core gets seconds since the first clock reading: float64 epoch seconds (~1.7e9) keep only
        # ~0.2 us, too coarse for the short segment durations the timing divides by. 0: not read yet.
        self._t0_ns = 0
        p = declare_parameters(self, "bridge")
        self.robot = load_robot_config(p["robot"], variant=p["variant"] or None)
        blend = BlendConfig(mode=p["blend_mode"], blend_steps=p["blend_steps"], ensemble_m=p["ensemble_m"])
        timeout = p["joint_state_timeout"] if p["joint_state_timeout"] > 0 else None
        self._moveit = None
        self.bridge = Bridge(
            self.robot,
            blend,
            joint_state_timeout=timeout,
            ik_solver=self._ik_solver(p),
            check_collisions=p["check_collisions"],
            scene_boxes=parse_boxes(p["collision_boxes"]),
        )

        self.profile = load_driver_profile(self.robot, p["driver"])
        self.outputs = make_outputs(self, self.robot.arms, self.profile)
        self._fault = ""  # why an output failed: disarmed until /vla/enable re-arms
        self.status_pub = self.create_publisher(BridgeStatus, NAMES.bridge_status, STATUS)
        self.path_pub = self.create_publisher(Path, NAMES.predicted_path, STATUS)
        self.create_subscription(ActionChunk, NAMES.action_chunk, self._on_chunk, COMMAND)
        subscribe_joint_states(self, self.robot, self.profile, self._on_joint_state)
        self.create_service(SetBool, NAMES.enable, self._on_enable)
        rate = p["control_rate_hz"] if p["control_rate_hz"] > 0 else self.robot.control_rate_hz
        self._tick_period = 1.0 / rate
        self._tick_last: float | None = None  # [s] when the previous control tick ran
        self._tick_delay_max = 0.0  # [s] the latest tick since the previous status, past its period
        self.create_timer(self._tick_period, self._on_tick)
        self.create_timer(1.0 / p["status_rate_hz"], self._publish_status)
        self._want_enabled = p["enabled"]
        self.add_on_set_parameters_callback(self._on_parameters)
        outputs = ", ".join(
            f"{d.arm}: {d.command.interface} {d.command.name}"
            + (f" + gripper {d.gripper.interface} {d.gripper.name}".rstrip() if d.gripper else "")
            for d in self.profile.arms
        )
        self.get_logger().info(
            f"{self.robot.name} ({self.profile.name or 'default'} driver profile): bridging {NAMES.action_chunk} "
            f"-> {outputs} at {rate:.0f} Hz, "
            f"blend {blend.mode}, IK {p['ik_backend']}, "
            f"{'arming when joint states arrive' if p['enabled'] else 'disarmed'}"
        )

    def _on_parameters(self, params) -> SetParametersResult:
        """The blending parameters take effect at the next chunk; a combination BlendConfig refuses is refused."""
        changed = {p.name: p.value for p in params if p.name in _BLEND_PARAMETERS}
        if not changed:
            return SetParametersResult(successful=True)
        current = {name: self.get_parameter(name).value for name in _BLEND_PARAMETERS}
        current.update(changed)
        try:
            blend = BlendConfig(
                mode=current["blend_mode"], blend_steps=current["blend_steps"], ensemble_m=current["ensemble_m"]
            )
        except TrajectoryError as exc:
            return SetParametersResult(successful=False, reason=str(exc))
        self.bridge.set_blend(blend)
        self.get_logger().info(
            f"blending from the next chunk: {blend.mode}, blend_steps {blend.blend_steps}, "
            f"ensemble_m {blend.ensemble_m:g}"
        )
        return SetParametersResult(successful=True)

    def _ik_solver(self, p: dict):
        """solve_ik, or MoveIt's /compute_ik behind the same signature."""
        if p["ik_backend"] == "pinocchio":
            return solve_ik
        if p["ik_backend"] != "moveit":
            raise ConfigError(f"unknown ik_backend {p['ik_backend']!r}; use pinocchio or moveit")
        from ros2_vla.ros.moveit_ik import MoveItIk  # raises RequirementError without moveit_msgs

        if not p["moveit_group"]:
            raise ConfigError("ik_backend moveit needs moveit_group: the arm's MoveIt planning group (e.g. fr3_arm)")
        self._moveit = MoveItIk(
            p["moveit_group"], timeout=p["moveit_ik_timeout"], node_name=f"{self.get_name()}_moveit_ik"
        )
        if not self._moveit.wait_for_service(2.0):
            self.get_logger().warning("MoveIt's /compute_ik is not available yet: chunks fail IK until move_group runs")
        return self._moveit

    def destroy_node(self) -> None:
        if self._moveit is not None:
            self._moveit.destroy()
        super().destroy_node()

    def _now(self) -> float:
        """[s] since the first clock reading (see _t0_ns)."""
        return (self.get_clock().now().nanoseconds - self._t0_ns) * 1e-9

    def _clock_started(self) -> bool:
        """False while ROS time reads zero: on use_sim_time before the first /clock. The core hears nothing
        until then: a joint state or an arming at time zero, then a chunk stamped on the running clock,
        made plans whose first point lay decades ahead."""
        if not self._t0_ns:
            self._t0_ns = self.get_clock().now().nanoseconds
            if not self._t0_ns:
                self.get_logger().info("waiting for /clock (use_sim_time)", once=True)
                return False
        return True

    # --- callbacks ----------------------------------------------------------------------------
    def _on_joint_state(self, msg, names: list[str], positions: list[float]) -> None:
        if not self._clock_started():
            return
        self.bridge.update_joint_state(names, positions, self._now())
        for out in self.outputs.values():
            if isinstance(out.gripper, JointSingle) and out.arm.gripper.joint in names:
                out.gripper.observe(positions[names.index(out.arm.gripper.joint)])
        if self._want_enabled and not self.bridge.enabled and not self._not_ready():
            ok, _, _ = self.bridge.set_enabled(True, self._now())
            self._want_enabled = not ok

    def _on_chunk(self, msg: ActionChunk) -> None:
        if not self._clock_started():
            return
        stamp_ns = msg.header.stamp.sec * 1_000_000_000 + msg.header.stamp.nanosec
        chunk = replace(chunk_from_message(msg), stamp=(stamp_ns - self._t0_ns) * 1e-9)
        now = self._now()
        state = self.bridge.on_chunk(chunk, now)
        # The new plan goes out now, not one period later, timed from the instant it was planned for:
        # a later clock reading would shorten its first segment by the planning time, past the limits.
        self._send(self.bridge.tick(now), now)
        self._publish_state(state)
        if state.code != state.code.OK:
            self.get_logger().warning(state.message, throttle_duration_sec=1.0)

    def _on_enable(self, request: SetBool.Request, response: SetBool.Response) -> SetBool.Response:
        if not self._clock_started():
            response.success, response.message = False, "cannot enable: no /clock yet (use_sim_time)"
            return response
        problem = self._not_ready() if request.data else ""
        if problem:
            response.success, response.message = False, f"cannot enable: {problem}"
            self.get_logger().warning(response.message)
            return response
        if request.data:  # re-arming clears an output's failure: it is ready again
            self._fault = ""
            for out in self.outputs.values():
                for o in out.outputs():
                    o.clear()
        now = self._now()
        ok, message, commands = self.bridge.set_enabled(bool(request.data), now)
        self._want_enabled = False
        self._send(commands, now)
        response.success, response.message = ok, message
        self.get_logger().info(message)
        self._publish_status()
        return response

    def _on_tick(self) -> None:
        if not self._clock_started():
            return
        now = self._now()
        if self._tick_last is not None:  # how late this tick came: its gap beyond one control period
            self._tick_delay_max = max(self._tick_delay_max, now - self._tick_last - self._tick_period)
        self._tick_last = now
        self._send(self.bridge.tick(now), now)
        for note in self.bridge.clock_jumps:  # said at once: the state moves on as soon as joint states come
            self.get_logger().warning(note)
            self._publish_state(replace(self.bridge.state(now), code=BridgeCode.STALE_INPUT, message=note))
        self.bridge.clock_jumps.clear()
        self._stream(now)
        self._check_outputs(now)

    # --- outputs ------------------------------------------------------------------------------
    def _not_ready(self) -> str:
        """Why an output cannot take commands (an action server absent), or ""."""
        return "; ".join(r for out in self.outputs.values() for o in out.outputs() if (r := o.ready()))

    def _send(self, commands: list[TrajectoryCommand], now: float) -> None:
        """Each command to its arm's outputs: the arm part (with the gripper where it travels along)
        and, where the driver takes the gripper apart, the gripper part. `now`: the time the commands
        were made for (their times count from it)."""
        for c in commands:
            stamp = None if c.start is None else (self._t0_ns + round(c.start * 1e9)) * 1e-9  # a ROS time
            for out in self.outputs.values():
                arm, gripper = out.arm, out.arm.gripper
                if c.topic == arm.trajectory_topic:
                    n = len(arm.chain.joint_names)
                    split = gripper is not None and len(c.joint_names) > n and not out.gripper_in_command
                    cols = slice(0, n) if split else slice(None)
                    qd = None if c.velocities is None else c.velocities[:, cols]
                    t, q = c.times_from_start, c.positions
                    out.command.send(Segment(c.joint_names[cols], t, q[:, cols], qd, stamp), now)
                    if split and out.gripper is not None:
                        out.gripper.send(Segment(c.joint_names[n:], t, q[:, n:], None, stamp), now)
                elif gripper is not None and gripper.mode == "separate" and c.topic == gripper.topic:
                    if out.gripper is not None:
                        out.gripper.send(
                            Segment(c.joint_names, c.times_from_start, c.positions, c.velocities, stamp), now
                        )

    def _stream(self, now: float) -> None:
        """The plan's setpoint to the streamed outputs (forward position, Interbotix commands)."""
        for name, out in self.outputs.items():
            setpoint = self.bridge.setpoint(name, now)
            if setpoint is None:
                continue
            q, g = setpoint
            if out.streamed:
                out.command.stream(q if g is None or not out.gripper_in_command else [*q, g], now)
            if isinstance(out.gripper, JointSingle) and g is not None:
                out.gripper.stream(g, now)

    def _check_outputs(self, now: float) -> None:
        """An output that failed disarms the bridge (the arm holds) and says why, once."""
        for out in self.outputs.values():
            for o in out.outputs():
                o.poll(now)
        for out in self.outputs.values():
            if getattr(out.gripper, "note", ""):  # a grasp that stopped on an object, or found nothing
                self.get_logger().info(out.gripper.note)
                out.gripper.note = ""
        fault = "; ".join(o.fault for out in self.outputs.values() for o in out.outputs() if o.fault)
        if fault and not self._fault:
            self._fault = fault
            self._want_enabled = False
            if self.bridge.enabled:
                _, _, commands = self.bridge.set_enabled(False, now)
                self._send(commands, now)
            self.get_logger().error(f"controller error: {fault}: holding; /vla/enable re-arms")
            self._publish_status()

    def _publish_status(self) -> None:
        if not self._clock_started():
            return
        now = self._now()
        self._publish_state(self.bridge.state(now))
        arm = self.robot.arms[0]
        path = Path()
        path.header.stamp = self.get_clock().now().to_msg()
        path.header.frame_id = arm.chain.base_link
        for xyz in self.bridge.predicted_path(arm.name, now):
            pose = PoseStamped()
            pose.header = path.header
            pose.pose.position.x, pose.pose.position.y, pose.pose.position.z = (float(v) for v in xyz)
            pose.pose.orientation.w = 1.0
            path.poses.append(pose)
        self.path_pub.publish(path)

    def _publish_state(self, s: BridgeState) -> None:
        if self._fault or (not s.enabled and self._want_enabled):
            problem = self._fault or self._not_ready()
            if problem:
                s = replace(
                    s,
                    code=BridgeCode.CONTROLLER_ERROR,
                    message=(
                        f"controller error: {problem}: holding; /vla/enable re-arms"
                        if self._fault
                        else f"waiting to arm: {problem}"
                    ),
                )
        stamp = self.get_clock().now().to_msg()
        self.status_pub.publish(bridge_status_msg(s, self.robot.name, stamp, max(0.0, self._tick_delay_max)))
        self._tick_delay_max = 0.0


def main(args: list[str] | None = None) -> int:
    return run_node(BridgeNode, args)


if __name__ == "__main__":
    sys.exit(main())
