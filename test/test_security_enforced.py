"""SROS2 enforced: the secured graph works, and nothing outside it reaches it. Runs only where the Fast DDS in
use has its DDS Security plugins (a ROS distro's); skipped with the detected reason elsewhere (the PyPI
wheels' Fast DDS is built without them). Every probe runs in its own process, with its own security
environment: an rclpy context's security is fixed when it starts."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import pytest
from helpers import launched

from ros2_vla.dds_env import security_support
from ros2_vla.security.cli import init_keystore

pytestmark = pytest.mark.skipif(bool(security_support()), reason=security_support() or "DDS Security available")

# A probe: with the environment it is given, watch the arm (the sim's /joint_states) for `watch` seconds
# while doing `act`, then print JSON: how many bridge statuses it saw, the largest joint motion, and
# what `act` reported.
PROBE = """
import json, sys, time, rclpy
from rclpy.node import Node
from sensor_msgs.msg import JointState
from std_srvs.srv import SetBool
from ros2_vla.msg import ActionChunk, BridgeStatus
rclpy.init()
node = Node("ros2_vla_probe")
seen = {"statuses": 0, "first": None, "last": None, "act": ""}
def on_state(m):
    q = list(m.position[:7])
    seen["first"] = seen["first"] or q
    seen["last"] = q
node.create_subscription(JointState, "/joint_states", on_state, 10)
def on_status(m):
    seen["statuses"] += 1
node.create_subscription(BridgeStatus, "/vla/bridge/status", on_status, 10)
ACT
end = time.monotonic() + WATCH
while time.monotonic() < end:
    rclpy.spin_once(node, timeout_sec=0.05)
moved = max((abs(a - b) for a, b in zip(seen["first"] or [], seen["last"] or [])), default=0.0)
print(json.dumps({"statuses": seen["statuses"], "moved": moved, "act": seen["act"]}))
"""

PUSH = """
try:  # under access control, a writer the permissions do not grant may be refused outright
    pub = node.create_publisher(ActionChunk, "/vla/action_chunk", 10)
except Exception as exc:
    pub, seen["act"] = None, f"publisher refused ({type(exc).__name__}); "
enable = node.create_client(SetBool, "/vla/enable")
seen["act"] += "enable answered" if enable.wait_for_service(timeout_sec=3.0) else "no enable service"
def push():
    m = ActionChunk()
    m.header.stamp = node.get_clock().now().to_msg()
    m.embodiment, m.action_space, m.dt, m.horizon = "franka", "ee_delta", 0.1, 5
    m.dimension_names = ["x", "y", "z", "roll", "pitch", "yaw", "gripper"]
    m.values = [0.04, 0.0, -0.04, 0.0, 0.0, 0.0, 0.0] * 5
    if pub is not None:
        pub.publish(m)
node.create_timer(0.2, push)
if enable.service_is_ready():
    enable.call_async(SetBool.Request(data=True))
"""


def _probes(*probes: tuple[dict[str, str], str], watch: float = 8.0) -> list[dict]:
    """Run probes side by side, each (environment, action); their JSON reports in order."""
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", textwrap.dedent(PROBE).replace("ACT", act or "pass").replace("WATCH", str(watch))],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for env, act in probes
    ]
    reports = []
    for proc in procs:
        out, err = proc.communicate(timeout=90)
        assert proc.returncode == 0, err
        reports.append(json.loads(out.strip().splitlines()[-1]))
    return reports


@pytest.fixture(scope="module")
def keystore(tmp_path_factory):
    root = tmp_path_factory.mktemp("sros2") / "keystore"
    init_keystore(root, "franka", "", int(os.environ.get("ROS_DOMAIN_ID", "0")))
    return root


def _secured(keystore, enclave: str) -> dict[str, str]:
    return {
        **os.environ,
        "ROS_SECURITY_KEYSTORE": str(keystore),
        "ROS_SECURITY_ENABLE": "true",
        "ROS_SECURITY_STRATEGY": "Enforce",
        "ROS_SECURITY_ENCLAVE_OVERRIDE": enclave,
    }


def test_the_secured_graph_does_its_task(keystore):
    with launched("franka", "--sim", "--expert", "--secure", str(keystore)):
        (seen,) = _probes((_secured(keystore, "/ros2_vla/operator"), ""), watch=20.0)
    assert seen["statuses"] > 0 and seen["moved"] > 0.1, seen


def test_an_unsecured_participant_sees_nothing_and_moves_nothing(keystore):
    # The sim's graph arms the bridge and no policy runs: the arm stands still unless someone sends chunks
    # (unsecured, the outsider's chunks move it by more than a radian: checked by hand with this probe).
    with launched("franka", "--sim", "--secure", str(keystore)):
        outsider, operator = _probes((dict(os.environ), PUSH), (_secured(keystore, "/ros2_vla/operator"), ""))
    assert outsider["statuses"] == 0 and outsider["act"].endswith("no enable service"), outsider
    assert operator["statuses"] > 0 and operator["moved"] < 0.01, operator


def test_a_certified_participant_without_the_permission_is_refused(keystore):
    """The recorder's enclave may read chunks but not publish them, nor call /vla/enable."""
    with launched("franka", "--sim", "--enable", "--secure", str(keystore)):
        recorder, operator = _probes(
            (_secured(keystore, "/ros2_vla/recorder"), PUSH), (_secured(keystore, "/ros2_vla/operator"), "")
        )
    assert recorder["act"].endswith("no enable service"), recorder
    assert operator["moved"] < 0.01, operator
