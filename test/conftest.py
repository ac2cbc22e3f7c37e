"""Fixtures for tests that talk real ROS 2 to real node processes (helpers live in helpers.py)."""

from __future__ import annotations

import random
import threading

import helpers  # noqa: F401  (sets ROS_DOMAIN_ID before rclpy starts)
import pytest


@pytest.fixture(scope="session")
def rclpy_context():
    rclpy = pytest.importorskip("rclpy", reason="rclpy not importable: run through scripts/test")
    rclpy.init()
    yield rclpy
    rclpy.try_shutdown()


@pytest.fixture
def ros_node(rclpy_context):
    """A test-side node spinning in a background thread; make subscriptions on it freely."""
    from rclpy.executors import SingleThreadedExecutor
    from rclpy.node import Node

    node = Node(f"test_{random.randint(0, 1 << 30)}")
    executor = SingleThreadedExecutor()
    executor.add_node(node)
    stop = threading.Event()

    def spin() -> None:
        while not stop.is_set():
            executor.spin_once(timeout_sec=0.02)

    thread = threading.Thread(target=spin, daemon=True)
    thread.start()
    yield node
    stop.set()
    thread.join(timeout=2)
    executor.remove_node(node)
    node.destroy_node()
