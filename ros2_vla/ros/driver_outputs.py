"""bridge_node's output adapters: the bridge's trajectories as each driver takes them.

The core (ros2_vla.bridge) decides what every joint should do; these only change the wire format:
- trajectory kinds get each plan once, when it changes (`send`): a JointTrajectory topic (the default
  profile), or a FollowJointTrajectory goal per new plan (preempting the previous);
- streamed kinds (`stream`, every control period) send the plan's setpoint at that instant: a forward
  position controller's Float64MultiArray, an Interbotix JointGroupCommand or JointSingleCommand;
- action grippers (GripperCommand, franka_gripper's grasp/move) get one goal each time the plan turns the
  gripper from opening to closing or back: a hold or a re-plan that keeps the direction sends nothing, so
  a grasp is never released by a hold.

A server that is absent, rejects a goal, aborts, reports an error or does not answer in time sets `fault`;
bridge_node then disarms (the arm holds) and reports CONTROLLER_ERROR with that reason.
"""

from __future__ import annotations

import importlib
import math
from dataclasses import dataclass

import numpy as np
from rclpy.action import ActionClient
from rclpy.node import Node
from std_msgs.msg import Float64MultiArray
from trajectory_msgs.msg import JointTrajectory

from ros2_vla.config import ArmSpec, GripperSpec
from ros2_vla.driver_profile import (
    FRANKA_GRIPPER_ACTIONS,
    STREAMED,
    ArmOutput,
    DriverProfile,
    GripperDirection,
    GripperOutput,
)
from ros2_vla.errors import RequirementError
from ros2_vla.ros.convert import joint_trajectory_msg, sec_to_duration
from ros2_vla.ros.qos import COMMAND

_SAME = 1e-6  # [s] or [rad]: two plans ending at the same time and place are the same plan

FJT_ERRORS = {
    0: "SUCCESSFUL",
    -1: "INVALID_GOAL",
    -2: "INVALID_JOINTS",
    -3: "OLD_HEADER_TIMESTAMP",
    -4: "PATH_TOLERANCE_VIOLATED",
    -5: "GOAL_TOLERANCE_VIOLATED",
}
_STATUS_SUCCEEDED, _STATUS_ABORTED = 4, 6  # action_msgs/GoalStatus


def interface_type(module: str, name: str):
    """`module.name` (e.g. control_msgs.action, FollowJointTrajectory), or RequirementError saying how to get it."""
    try:
        return getattr(importlib.import_module(module), name)
    except ImportError as exc:
        package = module.split(".")[0]
        raise RequirementError(
            f"{package} is not installed, so {module}.{name} cannot be used: with a ROS distro, "
            f"`rosdep install` or build the driver's workspace; without one, scripts/setup builds it "
            f"from ros2_vla's interfaces/{package} ({exc})"
        ) from None


@dataclass
class Segment:
    """One part of a bridge command: joints, times from its start [s], positions, velocities (None: positions
    only), and its start as a ROS time [s] in the header stamp (None: stamp zero, start on receipt)."""

    joint_names: tuple[str, ...]
    times: np.ndarray
    positions: np.ndarray
    velocities: np.ndarray | None
    stamp: float | None = None


class _Fault:
    """The first failure of an output, kept until the bridge is re-armed.

    A topic output of a driver profile (`listener_required`) also needs the driver on the other end: not
    ready while nobody subscribes to its topic, and a fault when the subscriber it had goes away (the driver
    stopped). Publishing has no answer, so this is the only sign a topic gives of a driver that is gone."""

    pub = None  # the publisher of a topic output
    listener_required = False

    def __init__(self) -> None:
        self.fault = ""
        self._heard = False  # a subscriber was seen on the topic

    def fail(self, reason: str) -> None:
        if not self.fault:
            self.fault = reason

    def ready(self) -> str:
        """Why the output cannot take commands now ("" when it can)."""
        if self.listener_required and self.pub is not None and self.pub.get_subscription_count() == 0:
            return f"nobody subscribes to {self.pub.topic_name}"
        return ""

    def clear(self) -> None:
        self.fault = ""
        self._heard = False

    def send(self, segment: Segment, now: float) -> None:
        """A plan update or a hold."""

    def stream(self, setpoint: np.ndarray | float, now: float) -> None:
        """The plan's setpoint at this control period."""

    def poll(self, now: float) -> None:
        """Check deadlines (goals not answered or not finished in time), and a topic's subscriber."""
        if not self.listener_required or self.pub is None:
            return
        if self.pub.get_subscription_count() > 0:
            self._heard = True
        elif self._heard:
            self.fail(f"{self.pub.topic_name} lost its subscriber (the driver stopped?)")


# --- arm outputs ------------------------------------------------------------------------------------
class TrajectoryTopic(_Fault):
    """A JointTrajectoryController's topic: every command as a JointTrajectory (start on receipt, a stop at
    its stamp)."""

    def __init__(self, node: Node, topic: str) -> None:
        super().__init__()
        self.pub = node.create_publisher(JointTrajectory, topic, COMMAND)

    def send(self, segment: Segment, now: float) -> None:
        self.pub.publish(
            joint_trajectory_msg(
                segment.joint_names, segment.times, segment.positions, segment.velocities, segment.stamp
            )
        )


class ForwardPosition(_Fault):
    """A forward_command_controller: the setpoint of every joint, in the controller's order, each period."""

    def __init__(self, node: Node, topic: str) -> None:
        super().__init__()
        self.pub = node.create_publisher(Float64MultiArray, topic, COMMAND)

    def stream(self, setpoint, now: float) -> None:
        self.pub.publish(Float64MultiArray(data=[float(v) for v in np.atleast_1d(setpoint)]))


class JointGroup(_Fault):
    """Interbotix xs_sdk's `commands/joint_group`: the group's positions each period (position mode)."""

    def __init__(self, node: Node, topic: str, group: str) -> None:
        super().__init__()
        msg_type = interface_type("interbotix_xs_msgs.msg", "JointGroupCommand")
        self.msg_type, self.group = msg_type, group
        self.pub = node.create_publisher(msg_type, topic, COMMAND)

    def stream(self, setpoint, now: float) -> None:
        self.pub.publish(self.msg_type(name=self.group, cmd=[float(v) for v in np.atleast_1d(setpoint)]))


class FollowJointTrajectory(_Fault):
    """A FollowJointTrajectory action server: one goal per new plan, the newest preempting the older ones.

    Only the newest goal's answer counts (a preempted goal ends canceled or aborted, which is not a fault).
    Its rejection, an error code, an abort, no answer within `goal_timeout` or no result within
    `goal_time_tolerance + goal_timeout` after its trajectory's end: fault."""

    def __init__(self, node: Node, spec: ArmOutput) -> None:
        super().__init__()
        self.action = interface_type("control_msgs.action", "FollowJointTrajectory")
        self.spec = spec
        self.client = ActionClient(node, self.action, spec.name)
        self._clock = node.get_clock()
        self._goal = 0  # number of the newest goal sent
        self._sent_at = 0.0  # [s] when it was sent
        self._ends_at = math.inf  # [s] when its trajectory ends
        self._answered = True  # the newest goal was accepted or refused
        self._finished = True  # the newest goal has its result
        self._last_end: tuple[float, np.ndarray] | None = None  # end time and positions of the newest goal
        self.feedback_error = 0.0  # [rad] largest |desired - actual| in the newest goal's feedback

    def ready(self) -> str:
        if not self.client.server_is_ready():
            return f"no FollowJointTrajectory server on {self.spec.name}"
        return ""

    def send(self, segment: Segment, now: float) -> None:
        end = (now + float(segment.times[-1]), segment.positions[-1])
        if self._last_end is not None and self._same(end, self._last_end, len(segment.times)):
            return  # the plan goes on (or rests at its end): the controller already has it
        if not self.client.server_is_ready():
            self.fail(f"no FollowJointTrajectory server on {self.spec.name}")
            return
        self._last_end = end
        goal = self.action.Goal()
        goal.trajectory = joint_trajectory_msg(
            segment.joint_names, segment.times, segment.positions, segment.velocities, segment.stamp
        )
        goal.goal_time_tolerance = sec_to_duration(self.spec.goal_time_tolerance)
        self._goal += 1
        number = self._goal
        self._sent_at, self._ends_at = now, end[0]
        self._answered, self._finished = False, False
        self.feedback_error = 0.0
        future = self.client.send_goal_async(goal, feedback_callback=lambda f: self._on_feedback(number, f))
        future.add_done_callback(lambda f: self._on_answer(number, f))

    @staticmethod
    def _same(new: tuple[float, np.ndarray], sent: tuple[float, np.ndarray], points: int) -> bool:
        """The new command ends where the goal sent last ends: at the same time, or (one point after that
        time) resting there, as the bridge repeats a plan's end while the gripper still moves."""
        if new[1].shape != sent[1].shape or not np.all(np.abs(new[1] - sent[1]) < _SAME):
            return False
        return abs(new[0] - sent[0]) < _SAME or (points == 1 and new[0] >= sent[0])

    def _on_feedback(self, number: int, feedback) -> None:
        if number == self._goal:
            error = feedback.feedback.error.positions
            self.feedback_error = float(np.max(np.abs(error))) if len(error) else 0.0

    def _on_answer(self, number: int, future) -> None:
        handle = future.result()
        if number != self._goal:
            return
        self._answered = True
        if handle is None or not handle.accepted:
            self.fail(f"{self.spec.name} rejected the trajectory goal")
            return
        handle.get_result_async().add_done_callback(lambda f: self._on_result(number, f))

    def _on_result(self, number: int, future) -> None:
        if number != self._goal:
            return  # preempted by a newer plan
        self._finished = True
        answer = future.result()
        code = int(answer.result.error_code)
        # The controller's own account of how far off the arm was, from the goal's last feedback.
        tracking = f"; last feedback error {self.feedback_error:.3f} rad" if self.feedback_error else ""
        if code != 0:
            text = answer.result.error_string or "no error_string"
            self.fail(f"{self.spec.name} failed the trajectory: {FJT_ERRORS.get(code, code)} ({text}){tracking}")
        elif answer.status == _STATUS_ABORTED:
            self.fail(f"{self.spec.name} aborted the trajectory{tracking}")

    def poll(self, now: float) -> None:
        if not self._answered and now - self._sent_at > self.spec.goal_timeout:
            self.fail(f"{self.spec.name} did not answer the trajectory goal within {self.spec.goal_timeout:g} s")
        late = now - self._ends_at - self.spec.goal_time_tolerance
        if self._answered and not self._finished and late > self.spec.goal_timeout:
            self.fail(
                f"{self.spec.name} accepted the trajectory but gave no result "
                f"{late + self.spec.goal_time_tolerance:.1f} s after its end"
            )

    def clear(self) -> None:
        super().clear()
        self._last_end = None
        self._answered = self._finished = True


# --- gripper outputs --------------------------------------------------------------------------------
class _GripperAction(_Fault):
    """An action gripper: one goal per change of direction. Rejection, no answer in time, or an aborted
    opening: fault. An aborted closing is a note, not a fault: franka_gripper aborts a grasp whose width
    ends outside its epsilon, which is what closing on an object (or on nothing) looks like; the
    policy sees the outcome in the images and may try again."""

    def __init__(self, node: Node, spec: GripperSpec, out: GripperOutput) -> None:
        super().__init__()
        self.spec, self.out = spec, out
        self.direction = GripperDirection(spec)
        self._pending: tuple[str, float] | None = None  # (what, sent at) of the goal not yet finished
        self.note = ""  # the last result that is not a fault (a grasp that found nothing)

    def _driver(self, value: float) -> float:
        return self.out.to_driver(self.spec, value)

    def send(self, segment: Segment, now: float) -> None:
        opening = self.direction.change(float(segment.positions[-1, 0]))
        if opening is None:
            return
        target = self.spec.open_position if opening else self.spec.closed_position
        self._send_goal(opening, target, now)

    def _send_goal(self, opening: bool, target: float, now: float) -> None:
        raise NotImplementedError

    def _dispatch(self, client: ActionClient, goal, what: str, opening: bool, now: float) -> None:
        if not client.server_is_ready():
            self.fail(f"no server for {what}")
            return
        self._pending = (what, now)
        client.send_goal_async(goal).add_done_callback(lambda f: self._on_answer(what, opening, f))

    def _on_answer(self, what: str, opening: bool, future) -> None:
        handle = future.result()
        if handle is None or not handle.accepted:
            self.fail(f"{what} was rejected")
            return
        handle.get_result_async().add_done_callback(lambda f: self._on_result(what, opening, f))

    def _on_result(self, what: str, opening: bool, future) -> None:
        if self._pending and self._pending[0] == what:
            self._pending = None
        answer = future.result()
        if answer.status == _STATUS_ABORTED and opening:
            self.fail(f"{what} was aborted")
        elif answer.status in (_STATUS_ABORTED, _STATUS_SUCCEEDED):
            self.note = self._describe(what, answer.result)

    def _describe(self, what: str, result) -> str:
        return ""

    def poll(self, now: float) -> None:
        if self._pending and now - self._pending[1] > self.out.goal_timeout:
            what, _ = self._pending
            self._pending = None
            self.fail(f"{what} did not finish within {self.out.goal_timeout:g} s")

    def clear(self) -> None:
        super().clear()
        self.direction.last = None
        self._pending = None


class GripperCommandAction(_GripperAction):
    """control_msgs/GripperCommand (franka_gripper's gripper_action, ros2_controllers' gripper_action_controller)."""

    def __init__(self, node: Node, spec: GripperSpec, out: GripperOutput) -> None:
        super().__init__(node, spec, out)
        self.action = interface_type("control_msgs.action", "GripperCommand")
        self.client = ActionClient(node, self.action, out.name)

    def ready(self) -> str:
        return "" if self.client.server_is_ready() else f"no GripperCommand server on {self.out.name}"

    def _describe(self, what: str, result) -> str:
        return f"{what}: stopped at {result.position:.4f}" if result.stalled and not result.reached_goal else ""

    def _send_goal(self, opening: bool, target: float, now: float) -> None:
        goal = self.action.Goal()
        goal.command.position = float(self._driver(target))
        goal.command.max_effort = float(self.out.max_effort)
        self._dispatch(self.client, goal, f"{self.out.name} {'open' if opening else 'close'}", opening, now)


class FrankaGripper(_GripperAction):
    """franka_gripper's own actions: `move` to open (width, speed), `grasp` to close (width, epsilon, speed, force).

    A grasp that closes on nothing (width outside its epsilon) ends with success false: a note on the status,
    not a fault (the policy may try again)."""

    def __init__(self, node: Node, spec: GripperSpec, out: GripperOutput) -> None:
        super().__init__(node, spec, out)
        self.move = interface_type("franka_msgs.action", "Move")
        self.grasp = interface_type("franka_msgs.action", "Grasp")
        ns = out.name.rstrip("/")
        move, grasp, _ = FRANKA_GRIPPER_ACTIONS
        self.move_name, self.grasp_name = f"{ns}/{move}", f"{ns}/{grasp}"
        self.move_client = ActionClient(node, self.move, self.move_name)
        self.grasp_client = ActionClient(node, self.grasp, self.grasp_name)

    def ready(self) -> str:
        clients = ((self.move_name, self.move_client), (self.grasp_name, self.grasp_client))
        missing = [name for name, client in clients if not client.server_is_ready()]
        return f"no franka_gripper action server on {', '.join(missing)}" if missing else ""

    def _send_goal(self, opening: bool, target: float, now: float) -> None:
        if opening:
            goal = self.move.Goal(width=float(self._driver(target)), speed=float(self.out.speed))
            self._dispatch(self.move_client, goal, self.move_name, opening, now)
            return
        goal = self.grasp.Goal(width=float(self._driver(target)), speed=float(self.out.speed), force=self.out.force)
        goal.epsilon.inner, goal.epsilon.outer = float(self.out.epsilon_inner), float(self.out.epsilon_outer)
        self._dispatch(self.grasp_client, goal, self.grasp_name, opening, now)

    def _describe(self, what: str, result) -> str:
        return "" if result.success else f"{what}: {result.error or 'not successful'}"


class JointSingle(_Fault):
    """Interbotix xs_sdk's `commands/joint_single` for the gripper.

    Position mode (`units`: the driver's value at open and closed, ALOHA's radians): the setpoint every
    period. PWM mode (`pwm`, Interbotix's default for the WidowX gripper): +pwm to open and -pwm to close
    on each change of direction, and 0 once the measured finger reaches the end it was sent to, as
    Interbotix's gripper module does, so the motor does not push against its stop."""

    def __init__(self, node: Node, spec: GripperSpec, out: GripperOutput) -> None:
        super().__init__()
        self.msg_type = interface_type("interbotix_xs_msgs.msg", "JointSingleCommand")
        self.spec, self.out = spec, out
        self.pub = node.create_publisher(self.msg_type, out.name, COMMAND)
        self.direction = GripperDirection(spec)
        self._pushing = False
        self._target: float | None = None  # the plan's last gripper target (PWM mode)
        self._measured: float | None = None  # the last measured gripper position [bridge units]

    def stream(self, setpoint, now: float) -> None:
        value = float(setpoint)
        if not self.out.pwm:
            driver = self.out.to_driver(self.spec, value)
            self.pub.publish(self.msg_type(name=self.out.joint, cmd=driver))
            return
        # PWM: the plan's target direction, not its ramp: the setpoint heads to where the plan goes.
        opening = self.direction.change(value if self._target is None else self._target)
        if opening is not None and not self._at_end(opening):  # Interbotix pushes only when not there yet
            self.pub.publish(self.msg_type(name=self.out.joint, cmd=self.out.pwm if opening else -self.out.pwm))
            self._pushing = True

    def send(self, segment: Segment, now: float) -> None:
        self._target = float(segment.positions[-1, 0])

    def _at_end(self, opening: bool) -> bool:
        """The measured gripper is at the end `opening` says (within 2 % of its range)."""
        if self._measured is None:
            return False
        end = self.spec.open_position if opening else self.spec.closed_position
        return abs(self._measured - end) <= 0.02 * abs(self.spec.open_position - self.spec.closed_position)

    def observe(self, measured: float) -> None:
        """The measured gripper position [bridge units]: stop pushing at the end it was sent to."""
        self._measured = measured
        if self.out.pwm and self._pushing and self.direction.last is not None and self._at_end(self.direction.last):
            self.pub.publish(self.msg_type(name=self.out.joint, cmd=0.0))
            self._pushing = False

    def clear(self) -> None:
        super().clear()
        self.direction.last = None


# --- per arm ----------------------------------------------------------------------------------------
@dataclass
class ArmOutputs:
    """One arm's outputs as its driver profile names them."""

    arm: ArmSpec
    command: _Fault
    gripper: _Fault | None
    gripper_in_command: bool  # the gripper joint travels in the arm's command (in_trajectory)
    streamed: bool  # the arm's command is streamed (forward position, joint group)

    def outputs(self) -> list[_Fault]:
        return [o for o in (self.command, self.gripper) if o is not None]


def make_outputs(node: Node, arms: tuple[ArmSpec, ...], profile: DriverProfile) -> dict[str, ArmOutputs]:
    """Every arm's outputs for `profile` (RequirementError when a message package is missing)."""
    made = {}
    for arm in arms:
        driver = profile.arm(arm.name)
        c = driver.command
        if c.interface == "joint_trajectory":
            command: _Fault = TrajectoryTopic(node, c.name)
        elif c.interface == "follow_joint_trajectory":
            command = FollowJointTrajectory(node, c)
        elif c.interface == "forward_position":
            command = ForwardPosition(node, c.name)
        else:
            command = JointGroup(node, c.name, c.group)
        g, gripper = driver.gripper, None
        if g is not None and arm.gripper is not None:
            gripper = {
                "joint_trajectory": lambda: TrajectoryTopic(node, g.name),
                "in_trajectory": lambda: None,
                "gripper_command": lambda: GripperCommandAction(node, arm.gripper, g),
                "franka_gripper": lambda: FrankaGripper(node, arm.gripper, g),
                "joint_single": lambda: JointSingle(node, arm.gripper, g),
            }[g.interface]()
        for out in (command, gripper):
            if out is not None and out.pub is not None:
                # The default profile's JointTrajectory topics keep their old behaviour: sent whoever listens.
                out.listener_required = bool(profile.name)
        made[arm.name] = ArmOutputs(
            arm,
            command,
            gripper,
            g is not None and g.interface == "in_trajectory",
            c.interface in STREAMED,
        )
    return made
