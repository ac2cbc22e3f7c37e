"""Recorder throughput: two 640x480 rgb8 cameras at 30 Hz and joint states at 100 Hz, for --duration s.

A publisher process sends the streams (Franka's topic names) while recorder_node, in its own
process, records one episode; the script then reads the episode's metadata and prints JSON: per
topic published / written / lost (published - written) / dropped (what the recorder noticed: full
queue and publisher sequence gaps), recorder CPU [% of one core] from /proc/<pid>/stat
(publisher CPU from its rusage), bag size and write rate. Goal: 0 lost.

    python benchmarks/recorder_bench.py [--duration 60] [--profile none|config/fastdds_large_shm.xml] [--keep]

`--profile` points FASTDDS_ and FASTRTPS_DEFAULT_PROFILES_FILE (Fast DDS 3.x and 2.x) at a Fast DDS XML
profile for both processes.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from ros2_vla.dds_env import profile_file, set_localhost_only, set_profile

ROOT = Path(__file__).resolve().parent.parent
WIDTH, HEIGHT, CAMERA_HZ, JOINT_HZ = 640, 480, 30.0, 100.0


def cpu_seconds(pid: int) -> float:
    """User + system CPU time [s] of a process so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def publish(duration: float) -> None:
    """The publisher process: wait for the recorder to subscribe, publish for `duration` s, print counts as JSON."""
    import numpy as np
    import rclpy
    from sensor_msgs.msg import Image, JointState

    from ros2_vla.config import load_robot_config
    from ros2_vla.ros.qos import SENSOR

    robot = load_robot_config("franka")
    rclpy.init()
    node = rclpy.create_node("recorder_bench_publisher")
    cams = [node.create_publisher(Image, c.topic, SENSOR) for c in robot.cameras[:2]]
    js = node.create_publisher(JointState, robot.joint_states_topic, SENSOR)
    deadline = time.monotonic() + 30
    while not all(p.get_subscription_count() for p in (*cams, js)):
        if time.monotonic() > deadline:
            raise SystemExit("the recorder did not subscribe within 30 s")
        time.sleep(0.05)
    images = [
        Image(
            height=HEIGHT,
            width=WIDTH,
            encoding="rgb8",
            step=3 * WIDTH,
            data=np.random.default_rng(i).integers(0, 255, 3 * WIDTH * HEIGHT, dtype=np.uint8).tobytes(),
        )
        for i in range(len(cams))
    ]
    joint = JointState(name=list(robot.joint_names), position=[0.0] * len(robot.joint_names))
    streams = [(pub, msg, 1.0 / CAMERA_HZ) for pub, msg in zip(cams, images)] + [(js, joint, 1.0 / JOINT_HZ)]
    counts = {pub.topic_name: 0 for pub, _, _ in streams}
    start = time.monotonic()
    due = [start] * len(streams)
    while (now := time.monotonic()) < start + duration:
        i = min(range(len(streams)), key=due.__getitem__)
        if due[i] > now:
            time.sleep(due[i] - now)
        pub, msg, period = streams[i]
        msg.header.stamp = node.get_clock().now().to_msg()
        pub.publish(msg)
        counts[pub.topic_name] += 1
        due[i] += period
    time.sleep(0.5)  # let the last samples leave before the participant goes
    print(json.dumps({"published": counts, "seconds": round(time.monotonic() - start, 2)}), flush=True)
    node.destroy_node()
    rclpy.try_shutdown()


def bench(duration: float, profile: str, keep: bool, queue_size: int) -> dict:
    import rclpy
    from rclpy.node import Node

    from ros2_vla.bringup import NodeSpec
    from ros2_vla.data.episode import read_episode_meta
    from ros2_vla.launcher import node_command, write_params_file
    from ros2_vla.ros.recorder_client import RecorderClient

    env = dict(os.environ)
    env.setdefault("ROS_DOMAIN_ID", str(50 + os.getpid() % 40))
    set_localhost_only(env)
    if profile == "none":  # Fast DDS defaults (scripts/env.sh sets the large-SHM profile otherwise)
        set_profile(env, None)
        set_profile(os.environ, None)
    elif profile:
        set_profile(env, Path(profile).resolve())
    os.environ.update(env)  # this process's client node too
    work = Path(tempfile.mkdtemp(prefix="recorder_bench_"))
    spec = NodeSpec("recorder", "recorder_node", {"robot": "franka", "output_dir": str(work), "queue_size": queue_size})
    rec = subprocess.Popen(
        node_command(spec, write_params_file([spec], work)),
        cwd="/",
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    rclpy.init()
    node = Node("recorder_bench")
    client = RecorderClient(node)
    try:
        client.wait(30)
        bag = client.start()
        cpu0, t0 = cpu_seconds(rec.pid), time.monotonic()
        children0 = resource.getrusage(resource.RUSAGE_CHILDREN)
        pub = subprocess.run(
            [sys.executable, __file__, "--publisher", "--duration", str(duration)],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=duration + 120,
        )
        if pub.returncode != 0:
            raise SystemExit(f"publisher failed: {pub.stderr[-2000:]}")
        published = json.loads(pub.stdout.strip().splitlines()[-1])
        children1 = resource.getrusage(resource.RUSAGE_CHILDREN)  # only the publisher was reaped in between
        pub_cpu = (children1.ru_utime + children1.ru_stime) - (children0.ru_utime + children0.ru_stime)
        time.sleep(1.0)  # samples in flight and the recorder's queue
        summary = client.stop(success=True)
        cpu1, t1 = cpu_seconds(rec.pid), time.monotonic()
    finally:
        node.destroy_node()
        rclpy.try_shutdown()
        rec.send_signal(signal.SIGINT)
        rec.wait(timeout=30)
    meta = read_episode_meta(bag)
    size = sum(f.stat().st_size for f in Path(bag).iterdir())
    topics = {
        t: {
            "published": n,
            "written": meta.message_counts[t],
            "lost": n - meta.message_counts[t],
            "dropped": meta.dropped[t],
        }
        for t, n in published["published"].items()
    }
    result = {
        "duration_s": published["seconds"],
        "fastdds_profile": profile_file(env),
        "queue_size": queue_size,
        "topics": topics,
        "lost_total": sum(v["lost"] for v in topics.values()),
        "recorder_cpu_percent": round(100 * (cpu1 - cpu0) / (t1 - t0), 1),
        "publisher_cpu_percent": round(100 * pub_cpu / published["seconds"], 1),
        "bag_mb": round(size / 1e6, 1),
        "write_mb_per_s": round(size / 1e6 / published["seconds"], 1),
        "episode_seconds": summary["seconds"],
        "bag": bag if keep else None,
    }
    if not keep:
        shutil.rmtree(work, ignore_errors=True)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--duration", type=float, default=60.0, help="[s] of publishing (default 60)")
    parser.add_argument(
        "--profile",
        default="",
        help="Fast DDS XML profile for both processes (FASTDDS_ and FASTRTPS_DEFAULT_PROFILES_FILE); "
        "none: Fast DDS defaults; default: the environment's (scripts/env.sh: config/fastdds_large_shm.xml)",
    )
    parser.add_argument("--queue-size", type=int, default=256, help="recorder_node queue_size")
    parser.add_argument("--keep", action="store_true", help="keep the bag (its path is printed)")
    parser.add_argument("--publisher", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.publisher:
        publish(args.duration)
        return
    print(json.dumps(bench(args.duration, args.profile, args.keep, args.queue_size), indent=2))


if __name__ == "__main__":
    main()
