"""What a user would otherwise do with `ros2 topic` / `ros2 service`: instruct, status, enable.

Each call makes a short-lived node, does one thing, and shuts rclpy down again.
"""

from __future__ import annotations

import time

import rclpy
from rclpy.node import Node
from std_msgs.msg import String
from std_srvs.srv import SetBool

from ros2_vla.bringup import NAMES
from ros2_vla.errors import Ros2VlaError
from ros2_vla.msg import BridgeStatus, PolicyStatus
from ros2_vla.ros.qos import COMMAND, STATUS
from ros2_vla.ros.services import call_service


def code_name(msg) -> str:
    """The constant name of `msg.code` (e.g. 'HALT_FOR_SINGULARITY')."""
    for name in dir(type(msg)):
        if name.isupper() and not name.startswith("_") and getattr(type(msg), name) == msg.code:
            return name
    return str(msg.code)


def format_status(msg) -> str:
    if isinstance(msg, PolicyStatus):
        return (
            f"[policy] {code_name(msg)} seq={msg.sequence} {msg.rate_hz:.1f} Hz "
            f"infer={msg.inference_time * 1e3:.0f} ms instruction={msg.instruction!r} {msg.message}"
        )
    return (
        f"[bridge] {code_name(msg)} enabled={msg.enabled} seq={msg.chunk_sequence} "
        f"ik_res={msg.ik_position_residual * 1e3:.2f} mm/{msg.ik_rotation_residual:.3f} rad "
        f"cond={msg.condition_number:.0f} scale={msg.speed_scale:.2f} {msg.message}"
    )


def _with_node(name: str, body) -> int:
    rclpy.init()
    node = Node(name)
    try:
        return body(node)
    finally:
        node.destroy_node()
        rclpy.try_shutdown()


def instruct(text: str, timeout: float = 5.0) -> int:
    def body(node: Node) -> int:
        pub = node.create_publisher(String, NAMES.instruction, COMMAND)
        deadline = time.monotonic() + timeout

        def matched_all() -> bool:
            # Matched with every subscriber discovery has reported, not just the first: a message
            # published before the others match is lost to them (VOLATILE).
            known = len(node.get_subscriptions_info_by_topic(NAMES.instruction))
            return pub.get_subscription_count() >= max(1, known)

        while not matched_all():
            if time.monotonic() > deadline:
                if pub.get_subscription_count():
                    break  # a subscriber that discovery reported but never matched: send to the ones that did
                raise Ros2VlaError(
                    f"nobody subscribes to {NAMES.instruction} after {timeout:.0f} s: is vla_node running?"
                )
            rclpy.spin_once(node, timeout_sec=0.05)
        pub.publish(String(data=text))
        # Give reliable delivery a moment before the process (and its writer) goes away.
        end = time.monotonic() + 0.3
        while time.monotonic() < end:
            rclpy.spin_once(node, timeout_sec=0.05)
        print(f"sent {text!r} on {NAMES.instruction}")
        return 0

    return _with_node("ros2_vla_instruct", body)


def status(once: bool = False, timeout: float = 10.0) -> int:
    def body(node: Node) -> int:
        seen: set[str] = set()

        def show(kind: str):
            def cb(msg) -> None:
                if once and kind in seen:
                    return
                seen.add(kind)
                print(format_status(msg), flush=True)

            return cb

        node.create_subscription(PolicyStatus, NAMES.policy_status, show("policy"), STATUS)
        node.create_subscription(BridgeStatus, NAMES.bridge_status, show("bridge"), STATUS)
        deadline = time.monotonic() + timeout
        while rclpy.ok():
            rclpy.spin_once(node, timeout_sec=0.1)
            if once and (len(seen) == 2 or time.monotonic() > deadline):
                break
        if once and not seen:
            raise Ros2VlaError(f"no status on {NAMES.policy_status} or {NAMES.bridge_status} within {timeout:.0f} s")
        return 0

    return _with_node("ros2_vla_status", body)


def set_enabled(enabled: bool, timeout: float = 5.0) -> int:
    def body(node: Node) -> int:
        client = node.create_client(SetBool, NAMES.enable)
        res = call_service(node, client, SetBool.Request(data=enabled), timeout, ": is bridge_node running?")
        print(f"{'enabled' if enabled else 'disabled'}: {res.message}" if res.success else f"refused: {res.message}")
        return 0 if res.success else 1

    return _with_node("ros2_vla_enable", body)
