"""recorder_node over real DDS: services start, stop and discard episodes; bags read back with rosbags and
with an independent reader (mcap + mcap-ros2-support, bag_checks.py), metadata.yaml as rosbag2 reads it;
SIGTERM in mid-episode leaves a readable, unlabelled bag.

The node runs as its own process (the launcher's command line), fed by a test-side rclpy node.
"""

from __future__ import annotations

import json
import signal
import subprocess
import time
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pytest
from bag_checks import check_with_independent_reader
from helpers import wait_for

pytest.importorskip("rclpy")
from rclpy.qos import qos_profile_sensor_data  # noqa: E402
from sensor_msgs.msg import Image, JointState  # noqa: E402
from std_msgs.msg import String  # noqa: E402
from std_srvs.srv import SetBool, Trigger  # noqa: E402

from ros2_vla.bringup import NAMES, NodeSpec  # noqa: E402
from ros2_vla.config import load_robot_config  # noqa: E402
from ros2_vla.data.episode import read_episode_meta  # noqa: E402
from ros2_vla.data.typestore import typestore  # noqa: E402
from ros2_vla.launcher import node_command, write_params_file  # noqa: E402
from ros2_vla.msg import ActionChunk  # noqa: E402
from ros2_vla.ros.qos import COMMAND, LATCHED  # noqa: E402

ROBOT = load_robot_config("franka")
CAMERA = ROBOT.cameras[0]


@contextmanager
def recorder(tmp_path: Path, **params):
    spec = NodeSpec(
        "recorder", "recorder_node", {"robot": "franka", "output_dir": str(tmp_path / "episodes"), **params}
    )
    proc = subprocess.Popen(node_command(spec, write_params_file([spec], tmp_path)), cwd="/")
    try:
        yield proc
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGINT)
            proc.wait(timeout=10)


class Feeder:
    """Publishes on the recorder's topics and calls its services from the test node."""

    def __init__(self, node) -> None:
        self.node = node
        self.js = node.create_publisher(JointState, ROBOT.joint_states_topic, qos_profile_sensor_data)
        self.image = node.create_publisher(Image, CAMERA.topic, qos_profile_sensor_data)
        self.instruction = node.create_publisher(String, NAMES.instruction, COMMAND)
        self.chunk = node.create_publisher(ActionChunk, NAMES.action_chunk, COMMAND)
        self.task = node.create_publisher(String, NAMES.sim_task, LATCHED)
        self.status: list[dict] = []
        node.create_subscription(String, "/recorder/status", lambda m: self.status.append(json.loads(m.data)), 10)

    def wait_matched(self) -> None:
        pubs = (self.js, self.image, self.instruction, self.chunk)
        wait_for(lambda: all(p.get_subscription_count() for p in pubs), 20, "the recorder's subscriptions")

    def call(self, srv_type, name: str, request):
        client = self.node.create_client(srv_type, name)
        assert client.wait_for_service(timeout_sec=20), f"{name} not available"
        future = client.call_async(request)
        wait_for(future.done, 20, f"an answer from {name}")
        self.node.destroy_client(client)
        return future.result()

    def publish(self, joint_states: int = 20, images: int = 5) -> None:
        names = list(ROBOT.joint_names)
        for i in range(joint_states):
            self.js.publish(JointState(name=names, position=[0.01 * i] * len(names)))
            if i < images:
                self.image.publish(
                    Image(
                        height=CAMERA.height,
                        width=CAMERA.width,
                        encoding="rgb8",
                        step=3 * CAMERA.width,
                        data=np.full(3 * CAMERA.width * CAMERA.height, i, np.uint8).tobytes(),
                    )
                )
            time.sleep(0.01)


def read_topic(bag: str, topic: str) -> list:
    from rosbags.rosbag2 import Reader

    store = typestore()
    with Reader(bag) as reader:
        conns = [c for c in reader.connections if c.topic == topic]
        return [store.deserialize_cdr(raw, c.msgtype) for c, _, raw in reader.messages(connections=conns)]


def test_start_stop_writes_an_episode_with_its_metadata(ros_node, tmp_path):
    feed = Feeder(ros_node)
    with recorder(tmp_path, notes="first try", task="pick"):
        feed.wait_matched()
        feed.instruction.publish(String(data="pick up the red cube"))  # before the episode: carried into it
        time.sleep(0.3)
        feed.publish()  # before start: not recorded
        start = feed.call(Trigger, "/recorder/start", Trigger.Request())
        assert start.success and start.message.endswith("episode_0000")
        feed.publish(joint_states=30, images=6)
        feed.chunk.publish(ActionChunk(embodiment="franka", sequence=7))
        wait_for(lambda: any(s.get("messages", 0) >= 37 for s in feed.status), 10, "status counting the messages")
        stop = feed.call(SetBool, "/recorder/stop", SetBool.Request(data=True))
        assert stop.success, stop.message
        summary = json.loads(stop.message)
        again = feed.call(SetBool, "/recorder/stop", SetBool.Request(data=True))
        assert not again.success and "nothing to stop" in again.message

    bag = start.message
    meta = read_episode_meta(bag)
    assert (meta.robot, meta.success, meta.notes, meta.task, meta.sim_success) == (
        "franka",
        True,
        "first try",
        "pick",
        None,
    )
    assert meta.instruction == "pick up the red cube" == summary["instruction"]
    assert meta.message_counts[ROBOT.joint_states_topic] == 30 and meta.message_counts[CAMERA.topic] == 6
    assert meta.message_counts[NAMES.action_chunk] == 1 and sum(meta.dropped.values()) == 0
    assert meta.start_ns < meta.stop_ns
    images = read_topic(bag, CAMERA.topic)
    assert [int(m.data[0]) for m in images] == list(range(6)) and images[0].width == CAMERA.width
    assert [m.sequence for m in read_topic(bag, NAMES.action_chunk)] == [7]
    assert [m.data for m in read_topic(bag, NAMES.instruction)] == ["pick up the red cube"]
    counts = check_with_independent_reader(bag)
    assert counts[CAMERA.topic] == 6 and counts[NAMES.action_chunk] == 1


def test_discard_removes_the_episode_and_metadata_parameters_apply(ros_node, tmp_path):
    from rclpy.node import Node

    from ros2_vla.ros.recorder_client import RecorderClient

    feed = Feeder(ros_node)
    client_node = Node("test_recorder_client")  # RecorderClient spins its own node
    try:
        with recorder(tmp_path):
            client = RecorderClient(client_node)
            client.wait(20)
            feed.wait_matched()
            discarded = Path(client.start())
            feed.publish(joint_states=5, images=0)
            assert "discarded" in client.discard()
            assert not discarded.exists()
            kept = client.start()
            client.set_metadata(seed=42, notes="set during the episode", demonstrator="teleop")
            feed.publish(joint_states=5, images=0)
            summary = client.stop(success=False)
    finally:
        client_node.destroy_node()
    meta = read_episode_meta(kept)
    assert Path(kept).name == "episode_0000" and summary["success"] is False and meta.success is False
    assert (meta.seed, meta.notes, meta.demonstrator) == (42, "set during the episode", "teleop")
    assert check_with_independent_reader(kept)[ROBOT.joint_states_topic] == 5


def test_sigterm_mid_episode_leaves_a_readable_unlabelled_bag(ros_node, tmp_path):
    feed = Feeder(ros_node)
    with recorder(tmp_path, sim=True) as proc:
        feed.wait_matched()
        feed.task.publish(String(data="put the red cube in the bowl"))
        bag = feed.call(Trigger, "/recorder/start", Trigger.Request()).message
        feed.publish(joint_states=20, images=3)
        time.sleep(0.3)
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=15) == 0
    meta = read_episode_meta(bag)
    assert meta.success is None and "interrupted" in meta.notes
    assert meta.instruction == "put the red cube in the bowl" and meta.sim_success is False
    assert len(read_topic(bag, ROBOT.joint_states_topic)) == meta.message_counts[ROBOT.joint_states_topic] == 20
    assert check_with_independent_reader(bag)[ROBOT.joint_states_topic] == 20
