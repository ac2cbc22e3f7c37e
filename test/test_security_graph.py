"""The keystore's permissions are the running graph's endpoints, exactly: read from a live graph over DDS.

The whole graph (sim_node with the scripted expert, bridge_node, vla_node, recorder_node) runs unsecured
through the franka_ros2 driver profile; ROS's graph API lists each node's publishers, subscribers, service
servers and clients (action endpoints among them), which become DDS topic names as rmw names them. Every
one must be allowed by that node's enclave, and every topic the enclave names must be one the node uses:
a permission set that drifts from the nodes (a renamed topic, a new subscription) fails here, not only on
a secured robot."""

from __future__ import annotations

import time
from fnmatch import fnmatchcase

import pytest
from helpers import launched, wait_for
from security_checks import allowed

rclpy = pytest.importorskip("rclpy")

from ros2_vla.config import load_robot_config  # noqa: E402
from ros2_vla.driver_profile import load_driver_profile  # noqa: E402
from ros2_vla.security.graph_policy import NODE_SERVICES, graph_rules  # noqa: E402
from ros2_vla.security.keystore import create_enclave, create_keystore  # noqa: E402

NODES = ("sim", "bridge", "vla", "recorder")
DOMAIN = 0
# Every node's own plumbing, present or not depending on the distro and rclpy's options.
INFRASTRUCTURE = ("rt/rosout", "rt/parameter_events", "ros_discovery_info")


def _endpoints(node, name: str) -> tuple[set[str], set[str]]:
    """(published, subscribed) DDS topic names of node `name`, services and actions included."""
    pub = {"rt" + t for t, _ in node.get_publisher_names_and_types_by_node(name, "/")}
    sub = {"rt" + t for t, _ in node.get_subscriber_names_and_types_by_node(name, "/")}
    for s, _ in node.get_service_names_and_types_by_node(name, "/"):
        sub.add(f"rq{s}Request")
        pub.add(f"rr{s}Reply")
    for s, _ in node.get_client_names_and_types_by_node(name, "/"):
        pub.add(f"rq{s}Request")
        sub.add(f"rr{s}Reply")
    return pub, sub


def test_each_enclave_allows_exactly_what_its_node_uses(ros_node, tmp_path):
    robot = load_robot_config("franka")
    rules = graph_rules(robot, load_driver_profile(robot, "franka_ros2"))
    keystore = tmp_path / "keystore"
    create_keystore(keystore, DOMAIN)
    for name in NODES:
        create_enclave(keystore, f"/ros2_vla/{name}", rules[f"/ros2_vla/{name}"], DOMAIN)
    args = ("--sim", "--expert", "--policy", "flow", "--driver", "franka_ros2", "--record", str(tmp_path / "bags"))
    with launched("franka", *args):
        wait_for(lambda: set(NODES) <= set(ros_node.get_node_names()), 90.0, "every node of the graph")
        # The graph cache fills as each node announces its endpoints: read it once it stops changing.
        last = None
        for _ in range(60):
            time.sleep(1.0)
            endpoints = {n: _endpoints(ros_node, n) for n in NODES}
            if endpoints == last:
                break
            last = endpoints
    for name in NODES:
        permissions = keystore / "enclaves" / "ros2_vla" / name / "permissions.xml"
        published, subscribed = endpoints[name]
        for action, used in (("publish", published), ("subscribe", subscribed)):
            refused = sorted(t for t in used if not allowed(permissions, action, t, DOMAIN))
            assert not refused, f"{name} {action}es {refused}, which its enclave does not allow"
        r = rules[f"/ros2_vla/{name}"]
        own = {f"r{k}/{name}/{s}{suffix}" for s in NODE_SERVICES for k, suffix in (("q", "Request"), ("r", "Reply"))}
        for action, granted, used in (("publish", r.publish, published), ("subscribe", r.subscribe, subscribed)):
            named = {t for t in granted if "*" not in t} - set(INFRASTRUCTURE) - own
            unused = sorted(t for t in named if not any(fnmatchcase(u, t) for u in used))
            assert not unused, f"{name}'s enclave lets it {action} {unused}, which it does not use"
