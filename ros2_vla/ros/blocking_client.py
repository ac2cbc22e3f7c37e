"""A service call that waits for its answer from inside another node's callback, without deadlock.

A node spun by a single-threaded executor cannot wait in a callback for a reply that the same executor
would have to deliver. Here the client lives on a node of its own with an executor of its own, spun in
the calling thread only while a request is out; the caller's executor is never re-entered.
"""

from __future__ import annotations

from rclpy.executors import SingleThreadedExecutor
from rclpy.node import Node


class BlockingClient:
    """One service client on its own node: `call` blocks the calling thread until the reply or `timeout`."""

    def __init__(self, srv_type, service: str, node_name: str) -> None:
        self.service = service
        self.node = Node(node_name)
        self._executor = SingleThreadedExecutor()
        self._executor.add_node(self.node)
        self._client = self.node.create_client(srv_type, service)

    def wait_for_service(self, timeout: float) -> bool:
        return self._client.wait_for_service(timeout_sec=timeout)

    def call(self, request, timeout: float):
        """The response, or None when none came within `timeout` [s]; None at once when no server is up."""
        if not self._client.service_is_ready():
            return None
        future = self._client.call_async(request)
        self._executor.spin_until_future_complete(future, timeout_sec=timeout)
        if not future.done():
            future.cancel()
            return None
        return future.result()

    def destroy(self) -> None:
        self._executor.remove_node(self.node)
        self.node.destroy_node()
