"""Faults injected while the sim's FR3 moves under the scripted expert (sim_node -> /vla/action_chunk ->
bridge_node -> the sim's controllers, over real DDS): each must hold the arm or leave it on its good plan,
say why on /vla/bridge/status, and recover, with no joint beyond its position or speed limit (MuJoCo's
measured joint velocities) and no NaN at any joint state the sim published. Each test adds a row to the
fault table printed at the end of the run, with the peak measured joint speed (as a fraction of its
limit) before the fault and from it on."""

from __future__ import annotations

import signal
import threading
import time
from contextlib import contextmanager
from dataclasses import replace

import numpy as np
import pytest
from driver_players import Topic
from fault_graph import FAST, Joints, Processes, record
from helpers import wait_for

rclpy = pytest.importorskip("rclpy")
from std_msgs.msg import String  # noqa: E402
from std_srvs.srv import SetBool, Trigger  # noqa: E402

from ros2_vla.actions.chunk import Chunk  # noqa: E402
from ros2_vla.bridge.status import BridgeCode  # noqa: E402
from ros2_vla.bringup import (  # noqa: E402
    LaunchOptions,
    NodeSpec,  # noqa: E402
    describe_graph,
    parse_reset_answer,
)
from ros2_vla.config import load_robot_config  # noqa: E402
from ros2_vla.msg import ActionChunk, BridgeStatus  # noqa: E402
from ros2_vla.policies.defaults import default_model  # noqa: E402
from ros2_vla.ros.convert import chunk_to_msg  # noqa: E402

pytestmark = pytest.mark.slow
ROBOT = "franka"
FLOOD_RATE = 1000.0  # [Hz]
FLOOD_TIME = 1.0  # [s]
SIM_STATES = "/faults/sim/joint_states"  # where a relayed sim publishes its joint states
CLOCK_RATE = 500.0  # [Hz] of the test's /clock
CLOCK_JUMP = 2.0  # [s] back


@contextmanager
def _expert_graph(ros_node, sim_states: str = "", sim_time: bool = False):
    """sim_node with the expert and an armed bridge_node, the arm already moving; yields (processes, probes).
    sim_states: the sim publishes its joint states there instead (a relay brings them to the bridge).
    sim_time: every node on ROS's use_sim_time, following a /clock someone else publishes."""
    robot = load_robot_config(ROBOT)
    processes = Processes()
    joints = Joints(ros_node, robot, sim_states)
    status = Topic(ros_node, BridgeStatus, "/vla/bridge/status")
    specs = {s.name: s for s in describe_graph(LaunchOptions(ROBOT, sim=True, expert=True, enable=True, seed=100000))}
    if sim_states:
        specs["sim"] = replace(specs["sim"], remappings=((robot.joint_states_topic, sim_states),))
    if sim_time:
        specs = {n: replace(s, parameters={**s.parameters, "use_sim_time": True}) for n, s in specs.items()}
    for spec in specs.values():
        processes.start(spec)
    try:
        joints.wait_moving(60.0, "the expert moving the arm")
        # Statuses already arriving here: one published before this subscription matched would be lost.
        wait_for(lambda: status.items, 30.0, "bridge statuses")
        wait_for(lambda: joints.fast(FAST), 30.0, f"a joint at {FAST:.0%} of its speed limit")
        yield processes, joints, status, robot
    finally:
        processes.stop_all()


@pytest.fixture
def graph(ros_node):
    with _expert_graph(ros_node) as probes:
        yield probes


class Relay:
    """Passes the sim's joint states on to the bridge's topic, or drops them (a link that loses them)."""

    def __init__(self, node, source: str, target: str) -> None:
        from sensor_msgs.msg import JointState

        self.dropping = False
        self.pub = node.create_publisher(JointState, target, 10)
        node.create_subscription(JointState, source, self._on, 10)

    def _on(self, msg) -> None:
        if not self.dropping:
            self.pub.publish(msg)


@pytest.fixture
def relayed_graph(ros_node):
    """The expert's graph with the sim's joint states reaching the bridge through a Relay."""
    robot = load_robot_config(ROBOT)
    relay = Relay(ros_node, SIM_STATES, robot.joint_states_topic)
    with _expert_graph(ros_node, SIM_STATES) as probes:
        yield (*probes, relay)


class ClockSource:
    """Publishes /clock at CLOCK_RATE from the wall clock plus an offset that `jump` moves back, as a
    stepped system clock or a looping `ros2 bag play --clock` would make every node's time go back."""

    def __init__(self, node) -> None:
        from rosgraph_msgs.msg import Clock

        self.offset = 0.0  # [s]
        self._msg = Clock
        self._pub = node.create_publisher(Clock, "/clock", 10)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(1.0 / CLOCK_RATE):
            t = time.time() + self.offset
            msg = self._msg()
            msg.clock.sec = int(t)
            msg.clock.nanosec = int((t - int(t)) * 1e9)
            self._pub.publish(msg)

    def jump(self, back: float) -> None:
        self.offset -= back

    def close(self) -> None:
        self._stop.set()
        self._thread.join()


@pytest.fixture
def clocked_graph(ros_node):
    """The expert's graph with every node on use_sim_time, following the test's ClockSource."""
    clock = ClockSource(ros_node)
    try:
        with _expert_graph(ros_node, sim_time=True) as probes:
            yield (*probes, clock)
    finally:
        clock.close()


def _bridge(**parameters) -> NodeSpec:
    """bridge_node as the sim graph starts it, with `parameters` changed."""
    spec = next(s for s in describe_graph(LaunchOptions(ROBOT, sim=True, enable=True)) if s.name == "bridge")
    return replace(spec, parameters={**spec.parameters, **parameters})


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


def _call(node, srv_type, name: str, request, wait: float = 10.0):
    """The service's answer; None when `name` is not offered within `wait` s."""
    client = node.create_client(srv_type, name)
    if not client.wait_for_service(timeout_sec=wait):
        return None
    future = client.call_async(request)
    wait_for(future.done, 10.0, f"{name} to answer")
    return future.result()


def _enabled(node) -> bool:
    """/vla/enable asked once more: False while the service is not up yet or refuses."""
    answer = _call(node, SetBool, "/vla/enable", SetBool.Request(data=True), wait=1.0)
    return answer is not None and answer.success


def _recovered(
    joints: Joints,
    status: Topic,
    start: float,
    resumed: float,
    fault: str,
    hold: float | None,
    said: str = "STALE_INPUT",
) -> None:
    """After the fault ended at `resumed`: OK again and the arm moving; the row of `fault` (struck at `start`),
    with no limit broken."""
    wait_for(lambda: _ok_again(status, resumed), 15.0, "OK again", detail=lambda: _recent(status, start))
    joints.wait_moving(10.0, "the arm moving again")
    recover = time.monotonic() - resumed
    beyond = joints.beyond_limits()
    speeds = joints.peak_speed(until=start), joints.peak_speed(since=start)
    record(fault, beyond, hold, recover, said, speeds)
    assert beyond == []


def _expert_has_work(node) -> None:
    """The scripted expert sends chunks only until its task succeeds: when the task ended during the fault,
    start the next one (/sim/reset), so that recovery is judged on chunks the expert still sends."""
    from std_msgs.msg import Bool

    done: list[bool] = []
    node.create_subscription(Bool, "/sim/success", lambda m: done.append(m.data), 10)
    wait_for(lambda: done, 5.0, "/sim/success")  # published at 10 Hz
    if done[-1]:
        answer = _call(node, Trigger, "/sim/reset", Trigger.Request())
        assert answer is not None and answer.success, answer


def _recent(status: Topic, start: float) -> str:
    """The last statuses, timed from `start`, for a failure's message."""
    return str([(round(t - start, 2), BridgeCode(m.code).name, m.message[:70]) for t, m in status.items[-14:]])


def _kill_and_see_it_stop(processes: Processes, joints: Joints, node: str, timeout: float) -> tuple[float, float]:
    """SIGKILL `node`; returns (when, seconds until the arm came to rest), once it stayed at rest for 1 s."""
    start = time.monotonic()
    processes.kill(node)
    hold = joints.wait_still(timeout, f"the arm at rest once {node} is gone")
    time.sleep(1.0)
    assert not joints.moving(0.9), f"the arm moved again without {node}"
    return start, hold


def test_bridge_killed_the_arm_holds_and_a_restarted_bridge_waits_to_be_armed(graph, ros_node):
    processes, joints, status, robot = graph
    # The controllers end the last trajectory; nothing moves the arm after it, though the expert keeps sending.
    start, hold = _kill_and_see_it_stop(processes, joints, "bridge", 5.0)
    restart = time.monotonic()
    processes.start(_bridge(enabled=False))
    wait_for(lambda: any(t > restart and s.code == BridgeCode.DISARMED for t, s in status.items), 30.0, "DISARMED")
    time.sleep(1.0)
    assert not joints.moving(0.9), "a restarted bridge plays no chunk before /vla/enable"
    # Refused ("no complete joint state yet") until the new bridge has joint states: ask again, as an operator would.
    # The restarted bridge takes a few seconds to offer the service on a busy CPU.
    wait_for(lambda: _enabled(ros_node), 30.0, "/vla/enable accepted by the restarted bridge")
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
    stale = next(s for s in _codes_since(status, start) if s.code == BridgeCode.STALE_INPUT)
    assert "joint states" in stale.message
    _recovered(joints, status, start, time.monotonic(), "SIGSTOP sim_node 1 s (no /joint_states)", hold)


def test_joint_states_lost_for_a_second_stop_the_arm_smoothly_until_they_are_fresh(relayed_graph, ros_node):
    processes, joints, status, robot, relay = relayed_graph
    # The sim and its controllers run on; only the bridge hears nothing. The bridge stops the motion it
    # commands: a hold at the last measured position would pull the arm back to where it was.
    start = time.monotonic()
    relay.dropping = True
    wait_for(
        lambda: any(s.code == BridgeCode.STALE_INPUT for s in _codes_since(status, start)),
        3.0,
        "STALE_INPUT while no joint state arrives",
    )
    joints.wait_still(5.0, "the arm at rest while the bridge hears no joint state")
    hold = time.monotonic() - start - 0.2  # at rest since 0.2 s before wait_still returned
    time.sleep(max(0.0, start + 1.0 - time.monotonic()))
    relay.dropping = False
    _recovered(joints, status, start, time.monotonic(), "/joint_states lost for 1 s (the sim runs on)", hold)


def test_the_clock_jumping_back_stops_the_arm_and_the_expert_moves_it_again_within_limits(clocked_graph, ros_node):
    processes, joints, status, robot, clock = clocked_graph
    start = time.monotonic()
    clock.jump(CLOCK_JUMP)
    wait_for(
        lambda: any("jumped back" in s.message for s in _codes_since(status, start)),
        5.0,
        "a status that says the clock jumped back",
        detail=lambda: _recent(status, start),
    )
    jumped = next(s for s in _codes_since(status, start) if "jumped back" in s.message)
    assert jumped.code == BridgeCode.STALE_INPUT, jumped
    said = f"STALE_INPUT ({jumped.message.split(':')[0]}), then OK"
    _recovered(
        joints, status, start, start, f"the graph's clock (use_sim_time) steps back {CLOCK_JUMP:g} s", None, said
    )


def test_a_bridge_on_sim_time_waits_for_the_first_clock(ros_node):
    # Not a row of the table: nothing moves. Before the first /clock, ROS time reads zero; the bridge then
    # takes no joint state, chunk or arming (timed at zero, they made plans timed decades ahead).
    processes = Processes()
    bridge = _bridge(enabled=False)
    processes.start(replace(bridge, parameters={**bridge.parameters, "use_sim_time": True}))
    try:
        answer = wait_for(
            lambda: _call(ros_node, SetBool, "/vla/enable", SetBool.Request(data=True), wait=1.0),
            30.0,
            "/vla/enable offered",
        )
        assert not answer.success and "no /clock yet" in answer.message, answer.message
        clock = ClockSource(ros_node)
        try:
            wait_for(
                lambda: (
                    "no complete joint state"
                    in _call(ros_node, SetBool, "/vla/enable", SetBool.Request(data=True)).message
                ),
                10.0,
                "the bridge on the clock, refusing for want of joint states",
            )
        finally:
            clock.close()
    finally:
        processes.stop_all()


def test_a_flood_of_valid_chunks_is_answered_and_the_policy_takes_over_after_it(graph, ros_node):
    processes, joints, status, robot = graph
    still = [[0, 0, 0, 0, 0, 0, 1]] * 5
    start = time.monotonic()
    end = _flood(ros_node, robot, lambda k: _chunk_msg(robot, ros_node, still, 10_000_000 + k))
    hold = None
    flood_states = [s for s in _codes_since(status, start) if s.chunk_sequence >= 10_000_000]
    assert flood_states, "the bridge answered the flood"
    _expert_has_work(ros_node)
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
    _expert_has_work(ros_node)
    wait_for(
        lambda: _ok_again(status, end), 15.0, "OK again from the expert's chunks", detail=lambda: _recent(status, end)
    )
    recover = time.monotonic() - end
    refused = [s for s in _codes_since(status, start) if s.chunk_sequence >= 20_000_000]
    assert refused and all(s.code == BridgeCode.CHUNK_REJECTED for s in refused), {s.code for s in refused}
    assert reason in refused[0].message, refused[0].message
    beyond = joints.beyond_limits()
    speeds = joints.peak_speed(until=start), joints.peak_speed(since=start)
    record(label, beyond, None, recover, "CHUNK_REJECTED", speeds)
    assert beyond == []


def test_after_a_sim_reset_mid_motion_the_policy_moves_the_arm_again_within_limits(graph, ros_node):
    processes, joints, status, robot = graph
    start = time.monotonic()
    answer = _call(ros_node, Trigger, "/sim/reset", Trigger.Request())
    assert answer is not None and answer.success, answer
    teleport = (start, time.monotonic() + 0.2)  # the sim puts the arm back at home: not a motion of the arm
    wait_for(lambda: _ok_again(status, teleport[1]), 20.0, "OK again after the reset")
    joints.wait_moving(10.0, "the arm moving toward the new task")
    recover = time.monotonic() - teleport[1]
    beyond = joints.beyond_limits(skip=teleport)
    codes = {BridgeCode(s.code).name for s in _codes_since(status, start)}
    speeds = joints.peak_speed(until=start), joints.peak_speed(since=start, skip=teleport)
    record("/sim/reset mid-motion (the arm jumps home)", beyond, None, recover, ", ".join(sorted(codes)), speeds)
    assert beyond == []


@pytest.fixture
def policy_graph(ros_node):
    """sim_node, an armed bridge_node and vla_node running the shipped FR3 flow policy on the scene's
    instruction, the arm already moving; yields (processes, probes, the vla spec, the instruction)."""
    robot = load_robot_config(ROBOT)
    processes = Processes()
    joints = Joints(ros_node, robot)
    status = Topic(ros_node, BridgeStatus, "/vla/bridge/status")
    opts = LaunchOptions(ROBOT, sim=True, enable=True, policy="flow", model=str(default_model(ROBOT)), seed=100000)
    specs = {s.name: s for s in describe_graph(opts)}
    for spec in specs.values():
        processes.start(spec)
    instructions = ros_node.create_publisher(String, "/vla/instruction", 10)
    try:
        answer = _call(ros_node, Trigger, "/sim/reset", Trigger.Request())
        assert answer is not None, "/sim/reset not offered"
        _, instruction = parse_reset_answer(answer.message)
        _instruct(instructions, instruction)
        joints.wait_moving(90.0, "the policy moving the arm")
        wait_for(lambda: status.items, 30.0, "bridge statuses")
        wait_for(lambda: joints.fast(FAST), 60.0, f"a joint at {FAST:.0%} of its speed limit")
        # A restarted vla_node gets the instruction as its start parameter: the killed node's subscription can
        # linger in DDS for seconds, so a publish may go to it alone.
        vla = specs["vla"]
        yield processes, joints, status, replace(vla, parameters={**vla.parameters, "instruction": instruction})
    finally:
        processes.stop_all()


def _instruct(publisher, instruction: str) -> None:
    wait_for(lambda: publisher.get_subscription_count() > 0, 60.0, "vla_node on /vla/instruction")
    publisher.publish(String(data=instruction))


def test_policy_killed_the_arm_stops_after_its_last_chunk_and_a_restart_resumes(policy_graph, ros_node):
    processes, joints, status, vla = policy_graph
    start, hold = _kill_and_see_it_stop(processes, joints, "vla", 10.0)  # no chunk after the last one
    restart = time.monotonic()
    processes.start(vla)
    joints.wait_moving(90.0, "the restarted policy moving the arm")
    recover = time.monotonic() - restart
    beyond = joints.beyond_limits()
    speeds = joints.peak_speed(until=start), joints.peak_speed(since=start)
    codes = {BridgeCode(s.code).name for s in _codes_since(status, start)}
    record("SIGKILL vla_node (flow policy); restart it", beyond, hold, recover, ", ".join(sorted(codes)), speeds)
    assert beyond == []


def test_a_policy_stopped_for_two_seconds_stops_the_arm_and_resumes_within_limits(policy_graph, ros_node):
    processes, joints, status, vla = policy_graph
    start = time.monotonic()
    processes.signal("vla", signal.SIGSTOP)
    before = max((s.chunk_sequence for _, s in status.items), default=0)
    hold = joints.wait_still(5.0, "the arm at rest after the last chunk")
    time.sleep(max(0.0, start + 2.0 - time.monotonic()))
    processes.signal("vla", signal.SIGCONT)
    resumed = time.monotonic()

    def new_chunks() -> list:
        return [s for s in _codes_since(status, resumed) if s.chunk_sequence > before]

    wait_for(lambda: any(s.code == BridgeCode.OK for s in new_chunks()), 30.0, "a new chunk played after the stop")
    joints.wait_moving(30.0, "the policy moving the arm again")
    recover = time.monotonic() - resumed
    # A chunk predicted from an observation before the stop is played from the pose commanded at that
    # observation (never as a delta from now), with its lateness on the status; the limits below show it
    # caused no jump. vla_node drops observations older than its max_observation_age, so there may be none.
    after = new_chunks()
    stale = [s for s in after if s.chunk_lateness > 1.0]
    beyond = joints.beyond_limits()
    speeds = joints.peak_speed(until=start), joints.peak_speed(since=start)
    late = max((s.chunk_lateness for s in after), default=0.0)
    record(
        "SIGSTOP vla_node (flow policy) 2 s",
        beyond,
        hold,
        recover,
        f"{len(stale)} chunk(s) late, up to {late:.1f} s (reported as chunk_lateness)",
        speeds,
    )
    assert beyond == []


def test_a_stalled_bridge_reports_its_late_tick_and_goes_on(graph, ros_node):
    processes, joints, status, robot = graph
    start = time.monotonic()
    processes.signal("bridge", signal.SIGSTOP)  # the control loop misses 30 ticks
    time.sleep(0.3)
    processes.signal("bridge", signal.SIGCONT)
    resumed = time.monotonic()
    wait_for(
        lambda: any(s.tick_delay_max >= 0.25 for s in _codes_since(status, start)),
        5.0,
        "the late tick reported",
        detail=lambda: str(
            [(round(t - start, 2), round(s.tick_delay_max, 3)) for t, s in status.items if t > start - 0.5]
        ),
    )
    wait_for(lambda: _ok_again(status, resumed), 15.0, "OK again")
    joints.wait_moving(10.0, "the arm moving")
    recover = time.monotonic() - resumed
    late = max(s.tick_delay_max for s in _codes_since(status, start))
    assert late < 1.0, late
    before = [s.tick_delay_max for t, s in status.items if t < start]
    beyond = joints.beyond_limits()
    speeds = joints.peak_speed(until=start), joints.peak_speed(since=start)
    record(
        "SIGSTOP bridge_node 0.3 s",
        beyond,
        None,
        recover,
        f"tick_delay_max {late:.2f} s (before: up to {max(before, default=0.0) * 1e3:.0f} ms)",
        speeds,
    )
    assert beyond == []
