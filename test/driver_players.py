"""Plain rclpy stand-ins for the drivers' interfaces, for the adapter tests: action servers that accept,
reject, abort or never finish, and subscribers that keep what they get with its receipt time.

They run on the test's own node (a real rclpy node on real DDS) against a real bridge_node process; the
types are the real packages' (control_msgs, franka_msgs, interbotix_xs_msgs as built or installed)."""

from __future__ import annotations

import time

from rclpy.action import ActionServer, CancelResponse, GoalResponse
from rclpy.task import Future
from sensor_msgs.msg import JointState

MODES = ("accept", "reject", "abort", "silent")  # silent: accepts and never finishes


class ActionPlayer:
    """An action server of `action_type` on `name` that answers every goal as `mode` says; keeps the goals."""

    def __init__(self, node, action_type, name: str, mode: str = "accept", result=None) -> None:
        assert mode in MODES
        self.action_type, self.mode = action_type, mode
        self.goals: list[tuple[float, object]] = []  # (receipt time, goal request)
        self._result = result  # (goal) -> Result for accepted goals; default: the type's empty Result
        self._never = Future()
        self.server = ActionServer(
            node,
            action_type,
            name,
            self._execute,
            goal_callback=self._on_goal,
            cancel_callback=lambda _: CancelResponse.ACCEPT,
        )

    def _on_goal(self, request) -> GoalResponse:
        self.goals.append((time.monotonic(), request))
        return GoalResponse.REJECT if self.mode == "reject" else GoalResponse.ACCEPT

    async def _execute(self, handle):
        result = self._result(handle.request) if self._result else self.action_type.Result()
        if self.mode == "silent":
            await self._never  # never done: the goal stays executing
        if self.mode == "abort":
            handle.abort()
        else:
            handle.succeed()
        return result

    def destroy(self) -> None:
        self.server.destroy()


class Topic:
    """Messages of one topic with their monotonic receipt times."""

    def __init__(self, node, msg_type, topic: str) -> None:
        self.items: list[tuple[float, object]] = []
        self.sub = node.create_subscription(msg_type, topic, lambda m: self.items.append((time.monotonic(), m)), 100)

    def after(self, t: float) -> list:
        return [m for ts, m in self.items if ts > t]


class JointStatePlayer:
    """Publishes a robot's joint states on the profile's topics at 100 Hz, as the driver names them."""

    def __init__(self, node, robot, profile, positions: dict[str, float]) -> None:
        from ros2_vla.driver_profile import driver_joint_state

        self.positions = dict(positions)  # bridge names -> value (bridge units); change it to move the robot
        self._map = driver_joint_state
        self.robot, self.profile, self.node = robot, profile, node
        self.pubs = [(s, node.create_publisher(JointState, s.topic, 10)) for s in profile.joint_states]
        self.timer = node.create_timer(0.01, self._publish)

    def _publish(self) -> None:
        names = list(self.positions)
        values = [self.positions[n] for n in names]
        for source, pub in self.pubs:
            n, p, v = self._map(self.robot, self.profile, source, names, values, [0.0] * len(names))
            msg = JointState(name=n, position=p, velocity=v)
            msg.header.stamp = self.node.get_clock().now().to_msg()
            pub.publish(msg)

    def destroy(self) -> None:
        self.node.destroy_timer(self.timer)
        for _, pub in self.pubs:
            self.node.destroy_publisher(pub)
