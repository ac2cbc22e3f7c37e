"""Two hosts on one machine: the graph split across two network namespaces joined by a veth pair.

Each namespace has its own network stack, so DDS between them goes as UDP over the veth (no shared
memory, no loopback), as between two machines on one switch; `tc` limits the link's rate (tbf) and,
where the kernel has netem, adds a delay. Root only (network namespaces need CAP_NET_ADMIN).

    sudo python benchmarks/two_hosts.py [--duration 20] [--episodes 2] [--rate 1gbit] [--delay-ms 1] [--json]

Two scenarios, each with Fast DDS's defaults and with the shipped profile (config/fastdds_large_shm.xml):
- stream: two 640x480 rgb8 cameras at 30 Hz published in host A as sim_node publishes them (reliable,
  REP 2003), a best-effort subscriber in host B: frames published, received, lost, link MB/s, latency.
- closed loop: `ros2-vla demo --policy external` in A (sim_node, bridge_node), vla_node with the shipped
  Franka policy in B: the demo's episodes, success and chunk delay, and the camera frames A saw that
  never reached B (lost).
test/test_two_hosts.py runs the closed loop with the shipped profile (slow, root only).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SHIPPED_PROFILE = ROOT / "config" / "fastdds_large_shm.xml"
WIDTH, HEIGHT, CAMERA_HZ = 640, 480, 30.0
# [bytes] net.core.rmem_max at which the profile's 8 MiB socket buffers were measured to lose nothing here
# (the kernel caps them there: 4 MiB); Ubuntu's default 208 KiB loses frames (README: two machines)
SOCKET_BUFFER_NEEDED = 4 * 1024 * 1024
SUBNET = "10.77.{}.{}"


@dataclass(frozen=True)
class TwoHosts:
    """Two network namespaces `a` and `b`, linked by veth `dev_a` <-> `dev_b`."""

    a: str
    b: str
    dev_a: str
    dev_b: str
    netem: bool  # whether the delay could be added (the kernel has sch_netem)

    def command(self, host: str, argv: list[str]) -> list[str]:
        return ["ip", "netns", "exec", host, *argv]

    def tx_bytes(self, host: str) -> int:
        dev = self.dev_a if host == self.a else self.dev_b
        info = json.loads(_ip("-n", host, "-j", "-s", "link", "show", "dev", dev))
        return int(info[0]["stats64"]["tx"]["bytes"])


def camera_topics() -> list[str]:
    """The Franka's camera topics (config/franka.yaml): the stream scenario publishes 640x480 frames on them."""
    from ros2_vla.config import load_robot_config

    return [c.topic for c in load_robot_config("franka").cameras]


def _ip(*args: str) -> str:
    return subprocess.run(["ip", *args], check=True, capture_output=True, text=True).stdout


def available() -> str | None:
    """None when two hosts can be made here, else why not."""
    if os.geteuid() != 0:
        return "network namespaces need root"
    if shutil.which("ip") is None or shutil.which("tc") is None:
        return "iproute2 (ip, tc) is not installed"
    probe = f"ros2vla_probe{os.getpid()}"
    made = subprocess.run(["ip", "netns", "add", probe], capture_output=True, text=True)
    if made.returncode != 0:
        return f"ip netns add failed: {made.stderr.strip()}"
    subprocess.run(["ip", "netns", "del", probe], capture_output=True)
    return None


@contextmanager
def two_hosts(rate: str = "1gbit", delay_ms: float = 1.0) -> Iterator[TwoHosts]:
    """Make the namespaces and the link (rate-limited each way), yield them, remove them."""
    tag = os.getpid() % 10000
    hosts = TwoHosts(f"ros2vla_a{tag}", f"ros2vla_b{tag}", f"r2va{tag}", f"r2vb{tag}", netem=False)
    subnet = tag % 250
    try:
        _ip("netns", "add", hosts.a)
        _ip("netns", "add", hosts.b)
        _ip("link", "add", hosts.dev_a, "type", "veth", "peer", "name", hosts.dev_b)
        netem = True
        for ns, dev, host_id in ((hosts.a, hosts.dev_a, 1), (hosts.b, hosts.dev_b, 2)):
            _ip("link", "set", dev, "netns", ns)
            _ip("-n", ns, "addr", "add", f"{SUBNET.format(subnet, host_id)}/24", "dev", dev)
            _ip("-n", ns, "link", "set", dev, "up")
            _ip("-n", ns, "link", "set", "lo", "up")
            _ip("-n", ns, "route", "add", "224.0.0.0/4", "dev", dev)  # DDS discovery is multicast
            # netem: delay and rate; without it (not every kernel has sch_netem) a token bucket: rate only
            shaped = subprocess.run(
                ["tc", "-n", ns, "qdisc", "add", "dev", dev, "root", "netem", "delay", f"{delay_ms}ms", "rate", rate],
                capture_output=True,
            )
            if shaped.returncode != 0:
                netem = False
                subprocess.run(
                    ["tc", "-n", ns, "qdisc", "add", "dev", dev, "root", "tbf", "rate", rate, "burst", "1mb"]
                    + ["latency", "50ms"],
                    check=True,
                    capture_output=True,
                )
        yield TwoHosts(hosts.a, hosts.b, hosts.dev_a, hosts.dev_b, netem=netem)
    finally:
        for ns in (hosts.a, hosts.b):
            subprocess.run(["ip", "netns", "del", ns], capture_output=True)


def ros_env(profile: Path | None, domain: int) -> dict[str, str]:
    """The environment of every process of the split graph: discovery beyond this host, one domain."""
    from ros2_vla.dds_env import set_profile

    env = dict(os.environ)
    env.pop("ROS_LOCALHOST_ONLY", None)
    env["ROS_AUTOMATIC_DISCOVERY_RANGE"] = "SUBNET"
    env["ROS_DOMAIN_ID"] = str(domain)
    set_profile(env, profile)
    return env


# --- roles, each run as its own process inside a namespace ------------------------------------------
def publish_cameras(duration: float) -> None:
    """Two 640x480 rgb8 cameras at 30 Hz, as sim_node publishes them; prints the count as JSON."""
    import numpy as np
    import rclpy
    from sensor_msgs.msg import Image

    from ros2_vla.ros.qos import SENSOR_DRIVER

    rclpy.init()
    node = rclpy.create_node("two_hosts_cameras")
    pubs = [node.create_publisher(Image, topic, SENSOR_DRIVER) for topic in camera_topics()]
    deadline = time.monotonic() + 30
    while not all(p.get_subscription_count() for p in pubs):
        if time.monotonic() > deadline:
            raise SystemExit("no subscriber within 30 s")
        time.sleep(0.05)
    # This writer has matched the reader; the reader may not have matched this writer yet, and drops what
    # comes before (discovery, not the link): give it a second.
    time.sleep(1.0)
    data = np.random.default_rng(0).integers(0, 256, 3 * WIDTH * HEIGHT, np.uint8).tobytes()
    start, sent = time.monotonic(), 0
    while time.monotonic() < start + duration:
        stamp = node.get_clock().now().to_msg()
        for pub in pubs:
            msg = Image(height=HEIGHT, width=WIDTH, encoding="rgb8", step=3 * WIDTH, data=data)
            msg.header.stamp = stamp
            pub.publish(msg)
        sent += 1
        time.sleep(max(0.0, start + sent / CAMERA_HZ - time.monotonic()))
    time.sleep(1.0)  # the last frames leave before the participant goes
    print(json.dumps({"published_per_camera": sent}), flush=True)


def count_frames(topics: list[str], duration: float, out: str) -> None:
    """Subscribe best effort (as vla_node) to `topics` for `duration` s or until SIGTERM; write each
    frame's stamp and receipt time [ns] per topic to `out` (JSON)."""
    import signal

    import rclpy
    from sensor_msgs.msg import Image

    from ros2_vla.ros.qos import SENSOR

    rclpy.init()
    stop = []
    signal.signal(signal.SIGTERM, lambda *_: stop.append(True))  # after rclpy's own handlers: ours wins
    node = rclpy.create_node("two_hosts_counter")
    seen: dict[str, list[tuple[int, int]]] = {t: [] for t in topics}

    def on_frame(topic: str, msg: Image) -> None:
        stamp = msg.header.stamp.sec * 10**9 + msg.header.stamp.nanosec
        seen[topic].append((stamp, time.time_ns()))

    for topic in topics:
        node.create_subscription(Image, topic, lambda m, t=topic: on_frame(t, m), SENSOR)
    end = time.monotonic() + duration
    while time.monotonic() < end and not stop:
        rclpy.spin_once(node, timeout_sec=0.05)
    Path(out).write_text(json.dumps(seen))


# --- scenarios ---------------------------------------------------------------------------------------
def _role(hosts: TwoHosts, host: str, env: dict, *args: str, **popen) -> subprocess.Popen:
    argv = hosts.command(host, [sys.executable, __file__, "--role", *args])
    return subprocess.Popen(argv, cwd=ROOT, env=env, text=True, **popen)


def _p50(values: list[float]) -> float | None:
    return round(sorted(values)[len(values) // 2], 1) if values else None


def stream(hosts: TwoHosts, profile: Path | None, duration: float, domain: int) -> dict:
    env = ros_env(profile, domain)
    topics = camera_topics()
    with tempfile.TemporaryDirectory() as tmp:
        out = f"{tmp}/seen.json"
        counter = _role(hosts, hosts.b, env, "count", *topics, "--duration", str(duration + 12), "--out", out)
        tx0 = hosts.tx_bytes(hosts.a)
        pub = _role(hosts, hosts.a, env, "publish", "--duration", str(duration), stdout=subprocess.PIPE)
        published = json.loads(pub.communicate(timeout=duration + 60)[0].strip().splitlines()[-1])
        tx1 = hosts.tx_bytes(hosts.a)
        counter.wait(timeout=duration + 60)
        seen = json.loads(Path(out).read_text())
    n = published["published_per_camera"]
    latency = [(r - s) / 1e6 for t in topics for s, r in seen[t]]
    return {
        "published": 2 * n,
        "received": sum(len(seen[t]) for t in topics),
        "lost": sum(n - len({s for s, _ in seen[t]}) for t in topics),
        "link_mb_per_s": round((tx1 - tx0) / 1e6 / duration, 1),
        "latency_p50_ms": _p50(latency),
    }


def closed_loop(hosts: TwoHosts, profile: Path | None, episodes: int, domain: int) -> dict:
    """`ros2-vla demo --policy external` (sim_node and bridge_node) in A, vla_node with the shipped
    Franka policy in B: the demo's episodes and chunk delays, and the camera frames A saw that B never got."""
    from ros2_vla.bringup import LaunchOptions, describe_graph
    from ros2_vla.launcher import node_command, write_params_file

    env = ros_env(profile, domain)
    vla = next(s for s in describe_graph(LaunchOptions("franka", policy="flow")) if s.name == "vla")
    topics = camera_topics()
    with tempfile.TemporaryDirectory() as tmp:
        quiet = {"stdout": subprocess.DEVNULL, "stderr": subprocess.DEVNULL}
        node = subprocess.Popen(
            hosts.command(hosts.b, node_command(vla, write_params_file([vla], Path(tmp)))), env=env, **quiet
        )
        counters = [
            _role(hosts, host, env, "count", *topics, "--duration", "3600", "--out", f"{tmp}/{host}.json")
            for host in (hosts.a, hosts.b)
        ]
        tx0, t0 = hosts.tx_bytes(hosts.a), time.monotonic()
        try:
            demo = subprocess.run(
                hosts.command(hosts.a, [sys.executable, "-m", "ros2_vla.cli", "demo", "--policy", "external"])
                + ["--episodes", str(episodes), "--out", f"{tmp}/demo"],
                env=env,
                capture_output=True,
                text=True,
                timeout=180 + 60 * episodes,
            )
        finally:
            tx1, t1 = hosts.tx_bytes(hosts.a), time.monotonic()
            for p in (*counters, node):
                p.terminate()
            for p in (*counters, node):
                p.wait(timeout=30)
        summary_written = Path(f"{tmp}/demo/summary.md").is_file()
        seen = {h: json.loads(Path(f"{tmp}/{h}.json").read_text()) for h in (hosts.a, hosts.b)}
    if demo.returncode != 0:
        raise RuntimeError(f"the demo failed ({demo.returncode}): {demo.stdout[-2000:]}{demo.stderr[-2000:]}")
    lines = [x for x in demo.stdout.splitlines() if x.startswith("episode ")]
    delays = [float(x.rsplit("chunks ", 1)[1].split(" ms")[0]) for x in lines]
    # frames A saw while both counters ran (1 s margins: discovery at the start, shutdown at the end)
    # that B never got
    lost = considered = 0
    for topic in topics:
        a_stamps = sorted(s for s, _ in seen[hosts.a][topic])
        b_stamps = {s for s, _ in seen[hosts.b][topic]}
        if not a_stamps or not b_stamps:
            continue
        lo, hi = max(a_stamps[0], min(b_stamps)) + 10**9, min(a_stamps[-1], max(b_stamps)) - 10**9
        window = [s for s in a_stamps if lo <= s <= hi]
        considered += len(window)
        lost += sum(s not in b_stamps for s in window)
    return {
        "episodes": len(lines),
        "successes": sum(" success " in x for x in lines),
        "summary_written": summary_written,
        "frames_compared": considered,
        "frames_lost": lost,
        "link_mb_per_s": round((tx1 - tx0) / 1e6 / (t1 - t0), 2),
        "chunk_delay_ms": delays,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--duration", type=float, default=20.0, help="[s] of the stream scenario, per profile")
    parser.add_argument("--episodes", type=int, default=2, help="demo episodes of the closed loop, per profile")
    parser.add_argument("--rate", default="1gbit", help="link rate (tc syntax), each way")
    parser.add_argument("--delay-ms", type=float, default=1.0, help="[ms] added each way where netem exists")
    parser.add_argument("--scenarios", nargs="+", default=["stream", "closed_loop"], choices=["stream", "closed_loop"])
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--role", nargs="+", help=argparse.SUPPRESS)  # internal: a process in a namespace
    parser.add_argument("--out", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.role:
        role, *topics = args.role
        if role == "publish":
            publish_cameras(args.duration)
        else:
            count_frames(topics, args.duration, args.out)
        return
    why = available()
    if why:
        raise SystemExit(f"two_hosts: {why}")
    rows = []
    with two_hosts(args.rate, args.delay_ms) as hosts:
        for scenario in args.scenarios:
            for name, profile in (("Fast DDS defaults", None), ("shipped profile", SHIPPED_PROFILE)):
                domain = 60 + len(rows)
                if scenario == "stream":
                    result = stream(hosts, profile, args.duration, domain)
                else:
                    result = closed_loop(hosts, profile, args.episodes, domain)
                rows.append({"scenario": scenario, "profile": name, **result})
                print(f"{scenario:12s} {name:18s} {result}", file=sys.stderr, flush=True)
    report = {"rate": args.rate, "delay_ms": args.delay_ms if hosts.netem else 0.0, "netem": hosts.netem, "rows": rows}
    if args.json:
        print(json.dumps(report, indent=1))
    else:
        print(f"link {args.rate}, delay {report['delay_ms']} ms" + ("" if hosts.netem else " (no sch_netem here)"))
        for row in rows:
            print(" | ".join(f"{k}: {v}" for k, v in row.items()))


if __name__ == "__main__":
    main()
