"""Faults injected while the sim's FR3 moves under the scripted expert (sim_node -> /vla/action_chunk ->
bridge_node -> the sim's controllers, over real DDS): each must hold the arm or leave it on its good plan,
say why on /vla/bridge/status, and recover, with no joint beyond its position or speed limit at any
published joint state. Each test adds a row to the fault table printed at the end of the run, with the
peak measured joint speed (as a fraction of its limit) before the fault and from it on: reported, not
asserted, since the sim's measured speeds pass the limits already without any fault (see the README)."""

from __future__ import annotations

import signal
import time

import numpy as np
import pytest
from driver_players import Topic
from fault_graph import Joints, Processes, record
from helpers import wait_for

rclpy = pytest.importorskip("rclpy")
from std_srvs.srv import SetBool, Trigger  # noqa: E402

from ros2_vla.actions.chunk import Chunk  # noqa: E402
from ros2_vla.bridge.status import BridgeCode  # noqa: E402
from ros2_vla.config import load_robot_config  # noqa: E402
from ros2_vla.msg import ActionChunk, BridgeStatus  # noqa: E402
from ros2_vla.ros.convert import chunk_to_msg  # noqa: E402

pytestmark = pytest.mark.slow
ROBOT = "franka"
FLOOD_RATE = 1000.0  # [Hz]
FLOOD_TIME = 1.0  # [s]


@pytest.fixture
def graph(ros_node):
    """sim_node with the expert and an armed bridge_node, the arm already moving; yields (processes, probes)."""
    robot = load_robot_config(ROBOT)
    processes = Processes()
    joints = Joints(ros_node, robot)
    status = Topic(ros_node, BridgeStatus, "/vla/bridge/status")
    processes.start("sim", "sim_node", robot=ROBOT, expert=True, seed=100000)
    processes.start("bridge", "bridge_node", robot=ROBOT, enabled=True)
    try:
        joints.wait_moving(60.0, "the expert moving the arm")
        yield processes, joints, status, robot
    finally:
        processes.stop_all()


def _codes_since(status: Topic, since: float) -> list:
    return [s for t, s in status.items if t >= since]


def _ok_again(status: Topic, since: float) -> bool:
    return any(s.code == BridgeCode.OK and s.enabled for s in _codes_since(status, since))


def _chunk_msg(robot, node, values, sequence: int, embodiment: str | None = None) -> ActionChunk:
    values = np.asarray(values, dtype=np.float32)
    chunk = Chunk(
        stamp=node.get_clock().now().nanoseconds * 1e-9,
        embodiment=embodiment or robot.name,
        action_space=robot.action.space,
        dimension_names=robot.action.dimension_names,
        dt=robot.action.dt,
        horizon=values.shape[0],
        values=values.reshape(-1),
        sequence=sequence,
    )
    return chunk_to_msg(chunk)


def _flood(node, robot, make) -> float:
    """Publish `make(k)` at FLOOD_RATE for FLOOD_TIME; returns when it ended (monotonic)."""
    pub = node.create_publisher(ActionChunk, "/vla/action_chunk", 10)
    wait_for(lambda: pub.get_subscription_count() > 0, 10.0, "bridge_node subscribed")
    start = time.monotonic()
    k = 0
    while time.monotonic() - start < FLOOD_TIME:
        pub.publish(make(k))
        k += 1
        time.sleep(max(0.0, start + k / FLOOD_RATE - time.monotonic()))
    return time.monotonic()


def _call(node, srv_type, name: str, request):
    client = node.create_client(srv_type, name)
    assert client.wait_for_service(timeout_sec=10.0), f"{name} not offered"
    future = client.call_async(request)
    wait_for(future.done, 10.0, f"{name} to answer")
    return future.result()


def test_bridge_killed_the_arm_holds_and_a_restarted_bridge_waits_to_be_armed(graph, ros_node):
    processes, joints, status, robot = graph
    start = time.monotonic()
    processes.kill("bridge")
    hold = joints.wait_still(5.0, "the arm at rest once the bridge is gone (the controllers end the last trajectory)")
    time.sleep(1.0)
    assert not joints.moving(0.9), "nothing moves the arm without the bridge, though the expert keeps sending"
    restart = time.monotonic()
    processes.start("bridge", "bridge_node", robot=ROBOT, enabled=False)
    wait_for(lambda: any(t > restart and s.code == BridgeCode.DISARMED for t, s in status.items), 30.0, "DISARMED")
    time.sleep(1.0)
    assert not joints.moving(0.9), "a restarted bridge plays no chunk before /vla/enable"
    assert _call(ros_node, SetBool, "/vla/enable", SetBool.Request(data=True)).success
    joints.wait_moving(10.0, "the arm moving again once armed")
    wait_for(lambda: _ok_again(status, restart), 10.0, "an OK status from the new bridge")
    recover = time.monotonic() - restart
    beyond = joints.beyond_limits()
    speeds = joints.peak_speed(until=start), joints.peak_speed(since=start)
    record(
        "SIGKILL bridge_node; restart it (waits for /vla/enable)", beyond, hold, recover, "DISARMED until armed", speeds
    )
    assert beyond == []


def test_joint_states_stopped_for_a_second_hold_the_arm_until_they_are_fresh(graph, ros_node):
    processes, joints, status, robot = graph
    start = time.monotonic()
    processes.signal("sim", signal.SIGSTOP)  # no joint states (and no physics) for 1 s
    wait_for(
        lambda: any(s.code == BridgeCode.STALE_INPUT for s in _codes_since(status, start)),
        3.0,
        "STALE_INPUT while no joint state arrives",
    )
    hold = next(t for t, s in status.items if t >= start and s.code == BridgeCode.STALE_INPUT) - start
    time.sleep(max(0.0, start + 1.0 - time.monotonic()))
    processes.signal("sim", signal.SIGCONT)
    resumed = time.monotonic()
    wait_for(lambda: _ok_again(status, resumed), 15.0, "OK again with fresh joint states")
    joints.wait_moving(10.0, "the arm moving again")
    recover = time.monotonic() - resumed
    stale = next(s for s in _codes_since(status, start) if s.code == BridgeCode.STALE_INPUT)
    assert "joint states" in stale.message
    beyond = joints.beyond_limits()
    speeds = joints.peak_speed(until=start), joints.peak_speed(since=start)
    record("SIGSTOP sim_node 1 s (no /joint_states)", beyond, hold, recover, "STALE_INPUT", speeds)
    assert beyond == []


def test_a_flood_of_valid_chunks_holds_the_arm_where_they_say_then_the_policy_takes_over(graph, ros_node):
    processes, joints, status, robot = graph
    still = [[0, 0, 0, 0, 0, 0, 1]] * 5
    start = time.monotonic()
    end = _flood(ros_node, robot, lambda k: _chunk_msg(robot, ros_node, still, 10_000_000 + k))
    hold = None
    flood_states = [s for s in _codes_since(status, start) if s.chunk_sequence >= 10_000_000]
    assert flood_states, "the bridge answered the flood"
    wait_for(lambda: _ok_again(status, end) and joints.moving(), 15.0, "the expert's chunks moving the arm again")
    recover = time.monotonic() - end
    beyond = joints.beyond_limits()
    speeds = joints.peak_speed(until=start), joints.peak_speed(since=start)
    record("1 kHz flood of valid chunks (stay still) for 1 s", beyond, hold, recover, "OK (the chunks played)", speeds)
    assert beyond == []


@pytest.mark.parametrize("kind", ["nan", "wrong_embodiment"])
def test_bad_chunks_are_refused_and_the_arm_stays_on_its_plan(graph, ros_node, kind):
    processes, joints, status, robot = graph
    move = [[0, 0, 0.3, 0, 0, 0, 1]] * 5  # would lift 1.5 m: must never play
    if kind == "nan":
        values = np.array(move, dtype=np.float32)
        values[2, 1] = np.nan

        def make(k):
            return _chunk_msg(robot, ros_node, values, 20_000_000 + k)

        label, reason = "1 kHz flood of chunks with NaN actions for 1 s", "NaN"
    else:

        def make(k):
            return _chunk_msg(robot, ros_node, move, 30_000_000 + k, embodiment="widowx")

        label, reason = "1 kHz flood of chunks for another embodiment (widowx) for 1 s", "widowx"
    start = time.monotonic()
    end = _flood(ros_node, robot, make)
    wait_for(lambda: _ok_again(status, end), 15.0, "OK again from the expert's chunks")
    recover = time.monotonic() - end
    refused = [s for s in _codes_since(status, start) if s.chunk_sequence >= 20_000_000]
    assert refused and all(s.code == BridgeCode.CHUNK_REJECTED for s in refused), {s.code for s in refused}
    assert reason in refused[0].message, refused[0].message
    beyond = joints.beyond_limits()
    speeds = joints.peak_speed(until=start), joints.peak_speed(since=start)
    record(label, beyond, None, recover, "CHUNK_REJECTED", speeds)
    assert beyond == []


def test_a_sim_reset_mid_motion_holds_then_follows_the_policy_again(graph, ros_node):
    processes, joints, status, robot = graph
    start = time.monotonic()
    answer = _call(ros_node, Trigger, "/sim/reset", Trigger.Request())
    assert answer.success, answer.message
    teleport = (start, time.monotonic() + 0.2)  # the sim puts the arm back at home: not a motion of the arm
    wait_for(lambda: _ok_again(status, teleport[1]), 20.0, "OK again after the reset")
    joints.wait_moving(10.0, "the arm moving toward the new task")
    recover = time.monotonic() - teleport[1]
    beyond = joints.beyond_limits()
    codes = {BridgeCode(s.code).name for s in _codes_since(status, start)}
    speeds = joints.peak_speed(until=start), joints.peak_speed(since=start, skip=teleport)
    record("/sim/reset mid-motion (the arm jumps home)", beyond, None, recover, ", ".join(sorted(codes)), speeds)
    assert beyond == []
