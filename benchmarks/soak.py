"""Soak: two robots' graphs and a third-party publisher storm on one machine, for --duration seconds.

The Franka's and the WidowX's sim graphs (sim_node with the scripted expert, bridge_node) run in two DDS
domains; in each, a storm process publishes --storm-topics topics of --storm-bytes at --storm-rate Hz that
nobody in the graph reads. A monitor per robot (its own process, in its domain) resets the scene after each
success and measures:
- bridge ticks: each /vla/bridge/status carries `tick_delay_max`, the most a control tick of bridge_node
  came after its period since the previous status (measured inside the node, DDS not included): a tick
  later than one control period is a missed tick;
- chunks: every chunk the expert published (its sequence) must appear in a bridge status (the first
  episode, which starts while discovery still runs, is reported apart);
- episodes and their success.
Every 10 s the script samples the resident memory of each node process. Prints JSON per robot and one
summary line: status intervals with a tick later than one control period, the worst tick delay, chunks
lost, episodes, and the first and last memory samples of each node.

    python benchmarks/soak.py [--duration 600] [--storm-topics 20] [--storm-rate 100] [--storm-bytes 1024]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

ROBOTS = ("franka", "widowx")

MONITOR = """
import json, sys, time, rclpy
from rclpy.node import Node
from std_msgs.msg import Bool
from std_srvs.srv import SetBool, Trigger
from ros2_vla.config import load_robot_config
from ros2_vla.msg import ActionChunk, BridgeStatus
robot, duration = sys.argv[1], float(sys.argv[2])
cfg = load_robot_config(robot)
rclpy.init()
node = Node("ros2_vla_soak")
delays, published, answered = [], set(), set()
success = [False]
def on_status(m):
    answered.add(m.chunk_sequence)
    delays.append(m.tick_delay_max)
node.create_subscription(ActionChunk, "/vla/action_chunk", lambda m: published.add(m.sequence), 100)
node.create_subscription(BridgeStatus, "/vla/bridge/status", on_status, 100)
node.create_subscription(Bool, "/sim/success", lambda m: success.__setitem__(0, success[0] or m.data), 10)
enable, reset = node.create_client(SetBool, "/vla/enable"), node.create_client(Trigger, "/sim/reset")
def call(client, request):
    future = client.call_async(request)
    end = time.monotonic() + 10
    while not future.done() and time.monotonic() < end:
        rclpy.spin_once(node, timeout_sec=0.05)
def spin(seconds):
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        rclpy.spin_once(node, timeout_sec=0.05)
assert reset.wait_for_service(timeout_sec=60)
episodes, successes, lost, lost_by_episode = 0, 0, 0, []
start = time.monotonic()
episode_start = start
while time.monotonic() - start < duration:
    rclpy.spin_once(node, timeout_sec=0.05)
    if success[0] or time.monotonic() - episode_start > 45:
        successes += success[0]
        episodes += 1
        spin(0.5)  # the last chunks' statuses
        missing = sorted(published - answered)
        lost_by_episode.append(len(missing))
        if episodes > 1:  # the first episode starts while discovery still runs: a warm-up, reported apart
            lost += len(missing)
        call(enable, SetBool.Request(data=False))
        spin(0.3)
        call(reset, Trigger.Request())
        spin(0.3)
        call(enable, SetBool.Request(data=True))
        published.clear(); answered.clear(); success[0] = False
        episode_start = time.monotonic()
period = 1.0 / cfg.control_rate_hz
print(json.dumps({
    "robot": robot, "episodes": episodes, "successes": successes, "chunks_lost": lost,
    "chunks_without_status_by_episode": lost_by_episode,
    "statuses": len(delays), "control_period_s": period,
    "statuses_with_a_tick_late_by_a_period": sum(d > period for d in delays),
    "max_tick_delay_s": round(max(delays, default=0.0), 4),
    "p99_tick_delay_s": round(sorted(delays)[int(0.99 * (len(delays) - 1))] if delays else 0.0, 4),
}))
"""

STORM = """
import sys, rclpy
from rclpy.node import Node
from std_msgs.msg import String
topics, rate, size = int(sys.argv[1]), float(sys.argv[2]), int(sys.argv[3])
rclpy.init()
node = Node("storm")
pubs = [node.create_publisher(String, f"/storm/topic_{i}", 10) for i in range(topics)]
msg = String(data="x" * size)
node.create_timer(1.0 / rate, lambda: [p.publish(msg) for p in pubs])
try:
    rclpy.spin(node)
except BaseException:  # SIGINT at the end: rclpy raises from its wait set once the context is shut down
    pass
"""


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def node_pids(launcher: int) -> dict[str, int]:
    """The node processes a `ros2-vla launch` started (its children), by executable."""
    out = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
            if int(fields[1]) == launcher:
                cmd = Path(stat.parent / "cmdline").read_bytes().split(b"\0")
                name = next((Path(c.decode()).name for c in cmd if c.endswith(b"_node")), "")
                if name:
                    out[name] = int(stat.parent.name)
        except (OSError, ValueError):
            continue
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--duration", type=float, default=600.0)
    ap.add_argument("--storm-topics", type=int, default=20)
    ap.add_argument("--storm-rate", type=float, default=100.0)
    ap.add_argument("--storm-bytes", type=int, default=1024)
    args = ap.parse_args()
    base = random.randint(20, 80)
    procs, launchers, monitors = [], {}, {}
    try:
        for i, robot in enumerate(ROBOTS):
            env = {**os.environ, "ROS_DOMAIN_ID": str(base + i), "ROS_AUTOMATIC_DISCOVERY_RANGE": "LOCALHOST"}
            launch = subprocess.Popen(
                [sys.executable, "-m", "ros2_vla.cli", "launch", robot, "--sim", "--expert"],
                env=env,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            launchers[robot] = launch
            storm = [sys.executable, "-c", STORM, str(args.storm_topics), str(args.storm_rate), str(args.storm_bytes)]
            procs += [launch, subprocess.Popen(storm, env=env)]
            monitor = [sys.executable, "-c", MONITOR, robot, str(args.duration)]
            monitors[robot] = subprocess.Popen(monitor, env=env, stdout=subprocess.PIPE, text=True)
        memory: dict[str, list[float]] = {}
        start = time.monotonic()
        while time.monotonic() - start < args.duration + 5 and any(m.poll() is None for m in monitors.values()):
            time.sleep(10.0)
            for robot, launch in launchers.items():
                for name, pid in node_pids(launch.pid).items():
                    memory.setdefault(f"{robot}/{name}", []).append(round(rss_mb(pid), 1))
            print(f"[soak] {time.monotonic() - start:.0f} s", file=sys.stderr, flush=True)
        results = []
        for robot, monitor in monitors.items():
            out, _ = monitor.communicate(timeout=120)
            results.append(json.loads(out.strip().splitlines()[-1]))
            print(json.dumps(results[-1]))
        mem = {k: {"first_mb": v[0], "last_mb": v[-1], "max_mb": max(v)} for k, v in memory.items() if v}
        print(json.dumps({"memory": mem}))
        print(
            "summary: "
            + "; ".join(
                f"{r['robot']}: {r['successes']}/{r['episodes']} episodes, chunks lost {r['chunks_lost']}, "
                f"status intervals with a tick late by a period {r['statuses_with_a_tick_late_by_a_period']} of "
                f"{r['statuses']}, worst tick delay {r['max_tick_delay_s']} s (period {r['control_period_s']:.3f} s)"
                for r in results
            )
        )
    finally:
        for p in [*procs, *monitors.values()]:
            if p.poll() is None:
                p.send_signal(signal.SIGINT)
        for p in [*procs, *monitors.values()]:
            try:
                p.wait(timeout=15)
            except subprocess.TimeoutExpired:
                p.kill()


if __name__ == "__main__":
    main()
