"""REP 2003 over real DDS: a subscriber with the default QoS (reliable, volatile, depth 10), as RViz's
image display, image_view or a plain rclpy node use, receives every topic each robot's sim graph
publishes; the graph's own consumers subscribe to sensor data best effort."""

from __future__ import annotations

import importlib

import pytest
from helpers import launched, wait_for

pytest.importorskip("rclpy")
from rclpy.qos import QoSReliabilityPolicy  # noqa: E402
from std_msgs.msg import String  # noqa: E402
from std_srvs.srv import Trigger  # noqa: E402

from ros2_vla.bringup import NAMES  # noqa: E402
from ros2_vla.config import load_robot_config  # noqa: E402
from ros2_vla.parameters import NODE_PARAMETERS  # noqa: E402
from ros2_vla.ros.qos import COMMAND  # noqa: E402

# Every node publishes these two; they are ROS's, not the graph's.
ROS_INTERNAL = {"/rosout", "/parameter_events"}
GRAPH_NODES = set(NODE_PARAMETERS)  # the graph's node names


def _message_class(type_name: str):
    package, kind, name = type_name.split("/")
    return getattr(importlib.import_module(f"{package}.{kind}"), name)


def _graph_topics(node) -> dict[str, str]:
    """Topic -> type of every topic a node of the graph publishes."""
    topics = {}
    for topic, types in node.get_topic_names_and_types():
        if topic in ROS_INTERNAL:
            continue
        if any(info.node_name in GRAPH_NODES for info in node.get_publishers_info_by_topic(topic)):
            topics[topic] = types[0]
    return topics


ROBOTS = {
    # the Franka with its shipped policy (vla_node's topics) and the recorder; the others with the
    # scripted expert, which publishes the chunks in vla_node's place
    "franka": ("--policy", "flow"),
    "widowx": ("--expert",),
    "aloha": ("--expert",),
}


@pytest.mark.parametrize("robot", ROBOTS)
def test_a_default_qos_subscriber_receives_every_topic_the_graph_publishes(ros_node, tmp_path, robot):
    config = load_robot_config(robot)
    sensors = {config.joint_states_topic} | {c.topic for c in config.cameras} | {c.info_topic for c in config.cameras}
    commands = {a.trajectory_topic for a in config.arms}
    instruct = ros_node.create_publisher(String, NAMES.instruction, COMMAND)
    # /sim/task is latched: a volatile subscriber gets the next one, which a reset publishes
    reset = ros_node.create_client(Trigger, NAMES.sim_reset)
    resets = []
    received: dict[str, int] = {}
    subscribed: dict[str, str] = {}

    def subscribe_new() -> None:
        for topic, type_name in _graph_topics(ros_node).items():
            if topic not in subscribed:
                subscribed[topic] = type_name
                received.setdefault(topic, 0)
                # 10: the default QoS profile (reliable, volatile, keep last 10)
                ros_node.create_subscription(
                    _message_class(type_name), topic, lambda _m, t=topic: received.__setitem__(t, received[t] + 1), 10
                )

    def all_received() -> bool:
        subscribe_new()
        if robot == "franka":
            instruct.publish(String(data="pick up the red cube"))  # vla_node publishes chunks once instructed
        if received.get(NAMES.sim_task) == 0 and not resets and reset.service_is_ready():
            resets.append(reset.call_async(Trigger.Request()))
        return bool(subscribed) and (sensors | commands) <= set(subscribed) and all(received.values())

    with launched(robot, "--sim", "--record", str(tmp_path / "bags"), *ROBOTS[robot]):
        wait_for(
            all_received,
            120,
            f"a message on every topic of the {robot} graph with the default QoS",
            poll=0.5,
            detail=lambda: (
                f"nothing on {sorted(t for t, n in received.items() if n == 0)}; "
                f"missing publishers of {sorted((sensors | commands) - set(subscribed))}"
            ),
        )
        # The sensors are published reliable (REP 2003) and the graph consumes them best effort.
        for topic in sensors:
            offered = {i.node_name: i.qos_profile.reliability for i in ros_node.get_publishers_info_by_topic(topic)}
            assert offered["sim"] == QoSReliabilityPolicy.RELIABLE, topic
            for info in ros_node.get_subscriptions_info_by_topic(topic):
                if info.node_name in GRAPH_NODES:
                    assert info.qos_profile.reliability == QoSReliabilityPolicy.BEST_EFFORT, (topic, info.node_name)
    assert {NAMES.action_chunk, NAMES.bridge_status, NAMES.sim_success, "/recorder/status"} <= set(subscribed)
