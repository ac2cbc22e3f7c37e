"""`ros2-vla teleop` over real DDS: keys through a pipe move the simulated arm's TCP the right way
through bridge_node, and space closes the gripper."""

from __future__ import annotations

import subprocess
import threading
import time

import numpy as np
import pytest
from helpers import cli, launched, wait_for

pytest.importorskip("rclpy")
from rclpy.qos import qos_profile_sensor_data  # noqa: E402
from sensor_msgs.msg import JointState  # noqa: E402

from ros2_vla.bringup import NAMES  # noqa: E402
from ros2_vla.config import load_robot_config  # noqa: E402
from ros2_vla.kinematics.model import ArmModel  # noqa: E402
from ros2_vla.msg import ActionChunk, BridgeStatus  # noqa: E402
from ros2_vla.ros.qos import COMMAND, STATUS  # noqa: E402

ROBOT = load_robot_config("franka")
ARM = ROBOT.arms[0]


class ArmWatch:
    """Latest TCP position [m] (arm base frame, FK of /joint_states) and gripper joint position."""

    def __init__(self, node) -> None:
        self.model = ArmModel.from_arm(ARM)
        self._msg: JointState | None = None
        self._lock = threading.Lock()
        node.create_subscription(JointState, ROBOT.joint_states_topic, self._on, qos_profile_sensor_data)

    def _on(self, msg: JointState) -> None:
        with self._lock:
            self._msg = msg

    def read(self) -> tuple[np.ndarray, float] | None:
        with self._lock:
            msg = self._msg
        if msg is None:
            return None
        index = {n: i for i, n in enumerate(msg.name)}
        q = np.array([msg.position[index[n]] for n in ARM.chain.joint_names])
        return self.model.fk(q)[:3, 3], float(msg.position[index[ARM.gripper.joint]])

    def settled(self, seconds: float = 0.6) -> tuple[np.ndarray, float]:
        time.sleep(seconds)  # the last chunk (0.3 s) plays out
        return self.read()


def _teleop(*args: str) -> subprocess.Popen:
    return subprocess.Popen(
        cli("teleop", "franka", *args),
        cwd="/",
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        bufsize=1,
    )


def _said(proc: subprocess.Popen) -> str:
    """What teleop printed so far (it prints the bridge's answers), for failure messages; communicate
    closes its input, so teleop ends."""
    try:
        return proc.communicate(timeout=5)[0]
    except subprocess.TimeoutExpired:
        return "(teleop still running)"


def _until_heard(proc: subprocess.Popen, chunks: list[ActionChunk], timeout: float = 10.0) -> tuple[int, int]:
    """Send hold keys ("."), one every few ticks, until `chunks` has one; returns (holds sent, received)."""
    deadline, sent = time.monotonic() + timeout, 0
    while not chunks:
        assert time.monotonic() < deadline, f"no teleop chunk reached this node after {sent} holds ({_said(proc)})"
        _send(proc, ["."])
        sent += 1
        time.sleep(0.3)
    time.sleep(0.3)  # a hold still in flight lands before the motion chunks are counted
    return sent, len(chunks)


def _send(proc: subprocess.Popen, lines: list[str]) -> None:
    for line in lines:
        proc.stdin.write(line + "\n")
    proc.stdin.flush()


@pytest.mark.slow
def test_keys_through_a_pipe_move_the_sim_arm_and_close_the_gripper(ros_node):
    arm = ArmWatch(ros_node)
    chunks: list[ActionChunk] = []
    ros_node.create_subscription(ActionChunk, NAMES.action_chunk, chunks.append, COMMAND)
    statuses: list[BridgeStatus] = []
    ros_node.create_subscription(BridgeStatus, NAMES.bridge_status, statuses.append, STATUS)
    with launched("franka", "--sim", "--enable") as graph:
        wait_for(arm.read, 30, "joint states from the sim")
        # The bridge arms when joint states reach it, which may be after they reach this node.
        wait_for(lambda: statuses and statuses[-1].enabled, 15, "the bridge to arm")
        proc = _teleop("--speed", "0.4", "--instruction", "push the cube")
        try:
            said = [proc.stdout.readline()]
            while said[-1] and not said[-1].startswith("teleop franka: reading keys") and len(said) < 10:
                said.append(proc.stdout.readline())  # the bridge's answers may come first
            assert said[-1].startswith("teleop franka: reading keys"), f"teleop did not start: {said!r}"
            # A volatile reader may miss what a writer sends while the two are still matching (DDS gives
            # no delivery guarantee for samples around the match): hold chunks until this node hears one,
            # so the motion chunks below are all sent on an established match.
            holds, heard = _until_heard(proc, chunks)
            start, finger0 = arm.settled(0.2)
            assert finger0 > 0.9 * ARM.gripper.open_position, "the gripper should start open"

            _send(proc, ["w"] * 10)  # 10 ticks forward (+x) at 10 Hz
            wait_for(
                lambda: len(chunks) >= heard + 10,
                15,
                "ten teleop chunks",
                detail=lambda: f"got sequences {[c.sequence for c in chunks]}; teleop said: {_said(proc)}",
            )
            after_x, _ = arm.settled()
            dx, dy, dz = after_x - start
            assert dx > 0.05, f"TCP moved {after_x - start} m; expected forward (+x) by several cm ({_said(proc)})"
            assert abs(dy) < 0.2 * dx and abs(dz) < 0.2 * dx, f"TCP moved off the x axis: {after_x - start}"

            _send(proc, ["d"] * 8)  # right (-y)
            wait_for(lambda: len(chunks) >= heard + 18, 15, "eight more chunks")
            after_y, _ = arm.settled()
            d = after_y - after_x
            assert d[1] < -0.04 and abs(d[0]) < 0.2 * abs(d[1]), f"TCP moved {d} m; expected right (-y)"

            _send(proc, [" "])
            wait_for(lambda: arm.read()[1] < 0.1 * ARM.gripper.open_position, 10, "the gripper to close")
            proc.stdin.close()  # end of input: teleop exits
            assert proc.wait(timeout=15) == 0
            output = proc.stdout.read()
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        assert "gripper close" in output and "Traceback" not in output, output
        assert graph.poll() is None, "the launcher died"
    ours = [c for c in chunks if c.policy == "teleop:keyboard"]
    sequences = [c.sequence for c in ours]
    assert 1 <= sequences[0] <= holds, f"the first chunk heard should be a hold (teleop counts from 1): got {sequences}"
    assert sequences == list(range(sequences[0], sequences[0] + len(ours))), f"chunks lost: {sequences}"
    assert all(c.instruction == "push the cube" and c.embodiment == "franka" for c in ours)
    assert list(ours[0].dimension_names) == list(ROBOT.action.dimension_names)
    stamps = [c.header.stamp.sec + c.header.stamp.nanosec * 1e-9 for c in ours]
    assert all(b > a for a, b in zip(stamps, stamps[1:])), "each chunk needs a fresh stamp"


def test_joint_position_robot_is_one_clear_line():
    out = subprocess.run(cli("teleop", "aloha"), cwd="/", input="", capture_output=True, text=True, timeout=60)
    assert out.returncode == 2
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and "ee_delta" in lines[0] and "Traceback" not in out.stderr, out.stderr


def test_without_a_bridge_it_says_so():
    out = subprocess.run(
        cli("teleop", "franka", "--timeout", "1"), cwd="/", input="w\n", capture_output=True, text=True, timeout=60
    )
    assert out.returncode == 2
    assert "nobody subscribes to /vla/action_chunk" in out.stderr and "Traceback" not in out.stderr, out.stderr
