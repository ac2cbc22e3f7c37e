"""The generated interfaces: ActionChunk exactly as msg/ActionChunk.msg and README's "The ActionChunk
contract" define it, status codes in step with the core."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
from helpers import wait_for

pytest.importorskip("rclpy")
from ros2_vla.actions.chunk import Chunk, chunk_from_message  # noqa: E402
from ros2_vla.bridge.status import BridgeCode  # noqa: E402
from ros2_vla.msg import ActionChunk, BridgeStatus, PolicyStatus  # noqa: E402
from ros2_vla.ros.convert import chunk_to_msg  # noqa: E402

DESIGN_FIELDS = {
    "header": "std_msgs/Header",
    "embodiment": "string",
    "action_space": "string",
    "dimension_names": "sequence<string>",
    "dt": "double",
    "horizon": "uint32",
    "values": "sequence<float>",
    "tokens": "sequence<uint16>",
    "num_bins": "uint16",
    "low": "sequence<float>",
    "high": "sequence<float>",
    "normalized": "sequence<boolean>",
    "instruction": "string",
    "policy": "string",
    "sequence": "uint64",
    "inference_time": "double",
}


def test_action_chunk_has_exactly_the_design_fields_in_order():
    fields = ActionChunk.get_fields_and_field_types()
    assert list(fields) == list(DESIGN_FIELDS)
    assert fields == DESIGN_FIELDS


def test_bridge_codes_match_the_message_constants():
    for code in BridgeCode:
        assert getattr(BridgeStatus, code.name) == code.value
    constants = {
        n
        for n in dir(BridgeStatus)
        if n.isupper() and not n.startswith("_") and isinstance(getattr(BridgeStatus, n), int)
    }
    assert constants == {c.name for c in BridgeCode}


def test_policy_status_codes_are_distinct():
    codes = [
        getattr(PolicyStatus, n) for n in ("IDLE", "LOADING", "WAITING", "RUNNING", "OBSERVATION_REFUSED", "ERROR")
    ]
    assert len(set(codes)) == len(codes)


def test_chunk_round_trips_through_the_message():
    values = np.arange(14, dtype=np.float32)
    chunk = Chunk(
        stamp=12.25,
        frame_id="fr3_link0",
        embodiment="franka",
        action_space="ee_delta",
        dimension_names=("x", "y", "z", "roll", "pitch", "yaw", "gripper"),
        dt=0.1,
        horizon=2,
        values=values,
        low=-np.ones(7, np.float32),
        high=np.ones(7, np.float32),
        normalized=np.array([True] * 6 + [False]),
        instruction="pick",
        policy="flow:test",
        sequence=7,
        inference_time=0.05,
    )
    back = chunk_from_message(chunk_to_msg(chunk))
    for field in (
        "stamp",
        "frame_id",
        "embodiment",
        "action_space",
        "dimension_names",
        "dt",
        "horizon",
        "instruction",
        "policy",
        "sequence",
        "inference_time",
    ):
        assert getattr(back, field) == getattr(chunk, field), field
    for field in ("values", "low", "high", "normalized"):
        np.testing.assert_array_equal(getattr(back, field), getattr(chunk, field))


PLAIN_PUBLISHER = """
import time, rclpy
from ros2_vla.msg import ActionChunk
rclpy.init()
node = rclpy.create_node("plain_chunk_publisher")
pub = node.create_publisher(ActionChunk, "/test/chunk_roundtrip", 10)
deadline = time.monotonic() + 20
while pub.get_subscription_count() == 0 and time.monotonic() < deadline:
    time.sleep(0.02)
msg = ActionChunk(embodiment="widowx", action_space="ee_delta", dimension_names=list("xyz"), dt=0.2, horizon=1,
                  values=[0.5, -0.25, 0.125], tokens=[], num_bins=0, sequence=99, instruction="wave")
pub.publish(msg)
time.sleep(1.0)
"""


def test_plain_rclpy_processes_exchange_action_chunks(ros_node):
    got = []
    ros_node.create_subscription(ActionChunk, "/test/chunk_roundtrip", got.append, 10)
    proc = subprocess.run([sys.executable, "-c", PLAIN_PUBLISHER], cwd="/", capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    (msg,) = wait_for(lambda: got, 5, "the chunk from the other process")
    assert msg.embodiment == "widowx" and msg.sequence == 99 and msg.instruction == "wave"
    np.testing.assert_allclose(np.asarray(msg.values), [0.5, -0.25, 0.125])


def test_policy_codes_match_the_message_constants():
    from ros2_vla.policies.runner import PolicyCode

    constants = {
        n
        for n in dir(PolicyStatus)
        if n.isupper() and not n.startswith("_") and isinstance(getattr(PolicyStatus, n), int)
    }
    assert constants == {c.name for c in PolicyCode}
    assert all(c == c.name for c in PolicyCode)  # a code compares equal to its name, as statuses are read
