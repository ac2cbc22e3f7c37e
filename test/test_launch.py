"""`ros2-vla launch` runs the bringup graph as real processes over real DDS, and stops them all."""

from __future__ import annotations

import os
import signal
import subprocess
import sys

import pytest
from helpers import ROOT, child_pids, cli, launched, pid_alive, wait_for

pytest.importorskip("rclpy")
from rclpy.qos import qos_profile_sensor_data  # noqa: E402
from sensor_msgs.msg import JointState  # noqa: E402
from trajectory_msgs.msg import JointTrajectory  # noqa: E402

from ros2_vla.config import load_robot_config  # noqa: E402
from ros2_vla.msg import BridgeStatus  # noqa: E402


def _send_chunk_script(sequence: int) -> str:
    """A plain rclpy program (no ros2_vla code but the message) publishing joint states and one chunk."""
    robot = load_robot_config("franka")
    names = list(robot.joint_names)
    home = list(robot.arms[0].chain.home)
    return f"""
import time, rclpy
from rclpy.qos import qos_profile_sensor_data
from sensor_msgs.msg import JointState
from ros2_vla.msg import ActionChunk
rclpy.init()
node = rclpy.create_node("plain_publisher")
js = node.create_publisher(JointState, "/joint_states", qos_profile_sensor_data)
ch = node.create_publisher(ActionChunk, "/vla/action_chunk", 10)
def joint_state():
    m = JointState(name={names!r}, position={home!r})
    m.header.stamp = node.get_clock().now().to_msg()
    js.publish(m)
deadline = time.monotonic() + 20
while ch.get_subscription_count() == 0 and time.monotonic() < deadline:
    joint_state(); time.sleep(0.01)
for _ in range(50):
    joint_state(); time.sleep(0.01)
c = ActionChunk(embodiment="franka", action_space="ee_delta",
                dimension_names=["x", "y", "z", "roll", "pitch", "yaw", "gripper"], dt=0.1, horizon=2,
                values=[0.01, 0.0, 0.0, 0.0, 0.0, 0.0, 1.0] * 2, sequence={sequence})
c.header.stamp = node.get_clock().now().to_msg()
ch.publish(c)
end = time.monotonic() + 3
while time.monotonic() < end:
    joint_state(); time.sleep(0.01)
"""


def test_chunk_from_plain_rclpy_process_reaches_bridge(ros_node):
    statuses, trajectories = [], []
    ros_node.create_subscription(BridgeStatus, "/vla/bridge/status", statuses.append, 10)
    ros_node.create_subscription(JointTrajectory, "/fr3_arm_controller/joint_trajectory", trajectories.append, 10)
    with launched("franka", "--enable") as proc:
        wait_for(lambda: statuses, 20, "bridge status from the launched bridge_node")
        sender = subprocess.run(
            [sys.executable, "-c", _send_chunk_script(sequence=41)], cwd="/", timeout=60, capture_output=True, text=True
        )
        assert sender.returncode == 0, sender.stderr
        ours = wait_for(lambda: [s for s in statuses if s.chunk_sequence == 41], 10, "status naming chunk 41")
        assert ours[-1].code in (BridgeStatus.OK, BridgeStatus.IDLE), ours[-1].message
        assert trajectories, "the bridge sent no trajectory for the chunk"
        assert trajectories[-1].joint_names == list(load_robot_config("franka").joint_names)
        assert proc.poll() is None, "the launcher died"


def test_sigint_stops_every_process_it_started(ros_node):
    statuses = []
    ros_node.create_subscription(BridgeStatus, "/vla/bridge/status", statuses.append, 10)
    with launched("franka") as proc:
        wait_for(lambda: statuses, 20, "the graph to come up")
        children = child_pids(proc.pid)
        assert children, "the launcher started no process"
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=15) == 0
        output = proc.stdout.read()
    wait_for(lambda: not any(pid_alive(p) for p in children), 5, f"children {children} to exit")
    assert "all nodes stopped" in output
    assert "Traceback" not in output, output


def test_a_dying_node_stops_the_graph(ros_node):
    statuses = []
    ros_node.create_subscription(BridgeStatus, "/vla/bridge/status", statuses.append, 10)
    with launched("franka") as proc:
        wait_for(lambda: statuses, 20, "the graph to come up")
        (child,) = child_pids(proc.pid)
        os.kill(child, signal.SIGKILL)
        assert proc.wait(timeout=15) != 0
        assert "bridge exited with code -9" in proc.stdout.read()


@pytest.mark.parametrize(
    "args, needle",
    [
        (["launch", "frank"], "Did you mean 'franka'"),
        (["launch", "/nonexistent/robot.yaml"], "does not exist"),
        (["graph", "franka", "--variant", "ur5"], "variant"),
    ],
)
def test_user_errors_are_one_line(args, needle):
    proc = subprocess.run(cli(*args), cwd="/", capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and needle in lines[0], proc.stderr
    assert "Traceback" not in proc.stderr


def test_missing_requirement_is_one_line(tmp_path):
    # An interpreter without rclpy: the system Python with only our sources on its path.
    env = {"PATH": "/usr/bin:/bin", "PYTHONPATH": str(ROOT)}
    base = "/usr/bin/python3" if os.path.exists("/usr/bin/python3") else sys.base_prefix + "/bin/python3"
    probe = subprocess.run([base, "-c", "import rclpy"], env=env, capture_output=True)
    if probe.returncode == 0:
        pytest.skip("the base interpreter has rclpy")
    proc = subprocess.run(
        [base, "-m", "ros2_vla.cli", "instruct", "hi"],
        cwd=str(tmp_path),
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 2
    assert "missing requirement" in proc.stderr and "Traceback" not in proc.stderr, proc.stderr


def test_instruct_status_enable_against_a_running_graph(ros_node):
    from std_msgs.msg import String

    got = []
    ros_node.create_subscription(String, "/vla/instruction", got.append, 10)
    js = ros_node.create_publisher(JointState, "/joint_states", qos_profile_sensor_data)
    robot = load_robot_config("franka")
    # The bridge only arms with fresh joint states: publish them as a driver would.
    ros_node.create_timer(
        0.01, lambda: js.publish(JointState(name=list(robot.joint_names), position=list(robot.arms[0].chain.home)))
    )

    def run(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run(cli(*args), cwd="/", capture_output=True, text=True, timeout=60)

    with launched("franka"):
        out = run("status", "--once", "--timeout", "20")
        assert out.returncode == 0 and "[bridge] DISARMED" in out.stdout, out.stdout + out.stderr
        out = run("enable", "--timeout", "20")
        assert out.returncode == 0 and out.stdout.startswith("enabled"), out.stdout + out.stderr
        out = run("status", "--once", "--timeout", "20")
        assert "enabled=True" in out.stdout, out.stdout
        out = run("instruct", "pick up the red cube", "--timeout", "20")
        assert out.returncode == 0, out.stderr
        wait_for(lambda: any(m.data == "pick up the red cube" for m in got), 10, "the instruction on /vla/instruction")
        out = run("disable", "--timeout", "20")
        assert out.returncode == 0 and out.stdout.startswith("disabled"), out.stdout + out.stderr


def test_instruct_without_listener_fails_clearly():
    out = subprocess.run(
        cli("instruct", "hello", "--timeout", "1"), cwd="/", capture_output=True, text=True, timeout=60
    )
    assert out.returncode == 2
    assert "nobody subscribes to /vla/instruction" in out.stderr
