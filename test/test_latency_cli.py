"""`ros2-vla latency` over real DDS: it listens to a running sim graph with the shipped flow policy and
reports the stages of real chunks, the sim's synchronized cameras showing no wait for each other."""

from __future__ import annotations

import json
import subprocess
import time

import pytest
from helpers import cli, launched, wait_for

pytest.importorskip("rclpy")
from std_msgs.msg import String  # noqa: E402

from ros2_vla.bringup import NAMES  # noqa: E402
from ros2_vla.msg import ActionChunk  # noqa: E402
from ros2_vla.ros.qos import COMMAND  # noqa: E402


@pytest.mark.slow
def test_latency_reports_the_stages_of_a_running_graph(ros_node, tmp_path):
    chunks = []
    ros_node.create_subscription(ActionChunk, NAMES.action_chunk, chunks.append, COMMAND)
    instruct = ros_node.create_publisher(String, NAMES.instruction, COMMAND)
    with launched("franka", "--sim", "--policy", "flow", "--enable"):
        wait_for(lambda: instruct.get_subscription_count() > 0, 30, "vla_node to subscribe to the instruction")

        def instructed() -> bool:
            instruct.publish(String(data="pick up the red cube"))
            time.sleep(0.5)
            return len(chunks) > 0

        wait_for(instructed, 90, "the first chunk (model loading)")
        proc = subprocess.run(
            cli("latency", "franka", "--duration", "5", "--json", "--plot", str(tmp_path / "l.png")),
            capture_output=True,
            text=True,
            timeout=120,
        )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    summary = json.loads(proc.stdout[proc.stdout.index("{") : proc.stdout.rindex("}") + 1])
    assert summary["chunks"] >= 5
    stages = summary["stages"]
    assert 0 < stages["inference"]["p50_ms"] < summary["chunk_delay"]["p50_ms"]
    assert set(summary["cameras"]) == {"scene", "wrist"}
    # one capture instant per set: the wrist frame is published right after the scene frame
    assert stages["waiting for the other cameras"]["p50_ms"] < 10.0
    assert summary["first_point_out"]["p50_ms"] >= summary["chunk_delay"]["p50_ms"]
    assert (tmp_path / "l.png").stat().st_size > 1000
