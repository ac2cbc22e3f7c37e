"""Call a service from a script and wait for its answer: the one way the CLI tools and clients do it.

(From inside a node's callback, where the caller's executor cannot be spun again, use `BlockingClient`.)
"""

from __future__ import annotations

import rclpy
from rclpy.client import Client
from rclpy.node import Node

from ros2_vla.errors import Ros2VlaError


def call_service(node: Node, client: Client, request, timeout: float, hint: str = ""):
    """The response to `request`, spinning `node` until it comes; Ros2VlaError naming the service when none
    is up within `timeout` [s] (with `hint`, e.g. ": is bridge_node running?") or none answers in time."""
    if not client.wait_for_service(timeout_sec=timeout):
        raise Ros2VlaError(f"service {client.srv_name} is not available after {timeout:.0f} s{hint}")
    future = client.call_async(request)
    rclpy.spin_until_future_complete(node, future, timeout_sec=timeout)
    if not future.done() or future.result() is None:
        future.cancel()
        raise Ros2VlaError(f"service {client.srv_name} did not answer within {timeout:.0f} s")
    return future.result()
