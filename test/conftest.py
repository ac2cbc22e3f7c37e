"""Fixtures for tests that talk real ROS 2 to real node processes (helpers live in helpers.py)."""

from __future__ import annotations

import random

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
    from rclpy.node import Node

    from ros2_vla.ros.spin import spinning

    node = Node(f"test_{random.randint(0, 1 << 30)}")
    with spinning(node):
        yield node
    node.destroy_node()


@pytest.fixture(scope="session")
def openvla_checkpoint(tmp_path_factory):
    """An OpenVLA checkpoint dir in the published layout (full-size DINOv2 + SigLIP, tiny Llama, random
    bf16 weights, about 1.5 GB), built once per test run (about 20 s)."""
    from ros2_vla.policies.openvla.random_checkpoint import build_test_checkpoint

    return build_test_checkpoint(tmp_path_factory.mktemp("openvla") / "openvla-test")
