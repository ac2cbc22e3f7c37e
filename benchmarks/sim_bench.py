"""Benchmark the MuJoCo stand-in: how fast it runs, and how often the scripted expert succeeds.

    source scripts/env.sh
    python benchmarks/sim_bench.py                 # all three parts, a table at the end
    python benchmarks/sim_bench.py --json          # the same numbers as JSON
    python benchmarks/sim_bench.py --parts rtf dds --dds-seconds 10

Parts:
- rtf: real-time factor of sim_node's own work, in process: physics stepped at the joint-state rate
  and every configured camera rendered at its rate (two 224x224 at 10 Hz for franka). RTF = sim
  seconds per wall second of that work; 1/RTF is the share of one core the node needs at real time.
- dds: `ros2-vla launch ROBOT --sim` as real processes; a subscriber counts each camera topic and
  /joint_states for --dds-seconds and reports achieved rates, worst gaps, image latency
  (stamp to receipt) and sim_node's CPU use.
- success: the scripted expert's success rate over --episodes seeds per task kind, in process
  through the real bridge core (`ros2_vla.evaluation.episode.run_episode`), as fast as the CPU allows.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from ros2_vla.config import load_robot_config
from ros2_vla.dds_env import set_localhost_only
from ros2_vla.evaluation.episode import ExpertPolicy, run_episode
from ros2_vla.sim.world import Simulation

KINDS = (("franka", "pick"), ("franka", "place"), ("widowx", "pick"), ("widowx", "place"), ("aloha", "bimanual_pick"))


# --- rtf ---------------------------------------------------------------------------------------
def bench_rtf(robot_name: str, sim_seconds: float) -> dict:
    """sim_node's work per wall second, in process: physics at the joint-state rate, cameras at theirs."""
    robot = load_robot_config(robot_name)
    sim = Simulation(robot, seed=0)
    for cam in robot.cameras:
        sim.render(cam.name)  # make the renderers (GL contexts) before timing
    state_period = 1.0 / robot.joint_state_rate_hz
    physics = render = 0.0
    frames = 0
    next_frame = {cam.name: 0.0 for cam in robot.cameras}
    periods = {cam.name: 1.0 / cam.rate_hz for cam in robot.cameras}
    for k in range(1, int(round(sim_seconds / state_period)) + 1):
        t = k * state_period
        t0 = time.perf_counter()
        sim.step_until(t)
        sim.joint_state()
        t1 = time.perf_counter()
        physics += t1 - t0
        for name, due in next_frame.items():
            if t >= due - 1e-9:
                sim.render(name)
                frames += 1
                next_frame[name] = due + periods[name]
        render += time.perf_counter() - t1
    sim.close()
    return {
        "robot": robot.name,
        "sim_seconds": sim_seconds,
        "cameras": [f"{c.name} {c.width}x{c.height}@{c.rate_hz:g}Hz" for c in robot.cameras],
        "physics_ms_per_sim_s": 1e3 * physics / sim_seconds,
        "render_ms_per_frame": 1e3 * render / max(frames, 1),
        "rtf_physics_only": sim_seconds / physics,
        "rtf": sim_seconds / (physics + render),
    }


# --- dds ---------------------------------------------------------------------------------------
def _children(pid: int) -> list[int]:
    out = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            out.append(int(stat.parent.name))
    return out


def _cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime + stime


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return ""


def bench_dds(robot_name: str, seconds: float, warmup: float = 3.0) -> dict:
    """Achieved topic rates at a subscriber while `ros2-vla launch ROBOT --sim` runs."""
    import rclpy
    from rclpy.executors import SingleThreadedExecutor
    from rclpy.qos import qos_profile_sensor_data
    from sensor_msgs.msg import Image, JointState

    set_localhost_only(os.environ)
    robot = load_robot_config(robot_name)
    topics = {cam.topic: (Image, cam.rate_hz) for cam in robot.cameras}
    topics[robot.joint_states_topic] = (JointState, robot.joint_state_rate_hz)
    arrivals: dict[str, list[tuple[float, float]]] = {t: [] for t in topics}  # (receipt, stamp) [s]

    rclpy.init()
    node = rclpy.create_node("sim_bench")
    clock = node.get_clock()

    def record(topic: str, msg) -> None:
        now = clock.now().nanoseconds * 1e-9
        arrivals[topic].append((now, msg.header.stamp.sec + msg.header.stamp.nanosec * 1e-9))

    for topic, (kind, _) in topics.items():
        node.create_subscription(kind, topic, lambda m, t=topic: record(t, m), qos_profile_sensor_data)
    executor = SingleThreadedExecutor()
    executor.add_node(node)
    proc = subprocess.Popen(
        [sys.executable, "-m", "ros2_vla.cli", "launch", robot_name, "--sim"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        cwd="/",
    )
    try:
        deadline = time.monotonic() + 60
        while not all(arrivals.values()):
            executor.spin_once(timeout_sec=0.05)
            if time.monotonic() > deadline or proc.poll() is not None:
                raise RuntimeError(f"no messages on {[t for t, a in arrivals.items() if not a]} within 60 s")
        end_warmup = time.monotonic() + warmup
        while time.monotonic() < end_warmup:
            executor.spin_once(timeout_sec=0.05)
        sim_pid = next((p for p in _children(proc.pid) if "sim_node" in _cmdline(p)), None)
        cpu0 = _cpu_seconds(sim_pid) if sim_pid else 0.0
        t_start = clock.now().nanoseconds * 1e-9
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            executor.spin_once(timeout_sec=0.05)
        t_end = clock.now().nanoseconds * 1e-9
        cpu = (_cpu_seconds(sim_pid) - cpu0) / seconds if sim_pid else float("nan")
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
        node.destroy_node()
        rclpy.try_shutdown()
    rows = []
    for topic, (_, nominal) in topics.items():
        window = np.array([a for a in arrivals[topic] if t_start <= a[0] <= t_end])
        gaps = np.diff(window[:, 0]) if len(window) > 1 else np.array([np.nan])
        latency = window[:, 0] - window[:, 1] if len(window) else np.array([np.nan])
        rows.append(
            {
                "topic": topic,
                "nominal_hz": nominal,
                "achieved_hz": len(window) / (t_end - t_start),
                "max_gap_ms": 1e3 * float(np.max(gaps)),
                "latency_p50_ms": 1e3 * float(np.median(latency)),
                "latency_p99_ms": 1e3 * float(np.percentile(latency, 99)),
            }
        )
    return {"robot": robot.name, "seconds": seconds, "sim_node_cpu_percent": 100 * cpu, "topics": rows}


# --- success -----------------------------------------------------------------------------------
def bench_success(episodes: int, first_seed: int, time_limit: float, progress: bool) -> list[dict]:
    """The scripted expert through the real bridge core, `episodes` seeds per (robot, kind)."""
    try:
        from tqdm import tqdm
    except ImportError:  # a line per task kind instead
        tqdm = None
    rows = []
    total = episodes * len(KINDS)
    bar = tqdm(total=total, unit="ep", file=sys.stderr, disable=not progress) if tqdm else None
    for robot_name, kind in KINDS:
        robot = load_robot_config(robot_name)
        sim = Simulation(robot, seed=first_seed)
        policy = ExpertPolicy(robot, sim)
        results = []
        for seed in range(first_seed, first_seed + episodes):
            results.append(run_episode(robot, seed, kind, policy, sim=sim, time_limit=time_limit))
            if bar is not None:
                bar.set_description(f"{robot_name} {kind}")
                bar.update()
        sim.close()
        ok = [r for r in results if r.success]
        row = {
            "robot": robot_name,
            "kind": kind,
            "episodes": len(results),
            "successes": len(ok),
            "success_rate": len(ok) / len(results),
            "sim_time_median_s": float(np.median([r.sim_time for r in ok])) if ok else float("nan"),
            "sim_time_max_s": float(np.max([r.sim_time for r in ok])) if ok else float("nan"),
            "chunks_mean": float(np.mean([r.chunks for r in results])),
            "bad_chunks_per_episode": float(np.mean([r.bad_chunks for r in results])),
            "rejected_trajectories": int(sum(r.rejected_trajectories for r in results)),
            "wall_s_per_episode": float(np.mean([r.wall_time for r in results])),
            "bridge_codes": {
                name: sum(r.bridge_codes.get(name, 0) for r in results)
                for name in sorted({n for r in results for n in r.bridge_codes})
            },
            "failed_seeds": [r.seed for r in results if not r.success],
        }
        rows.append(row)
        if bar is None and progress:
            print(f"{robot_name} {kind}: {row['successes']}/{row['episodes']}", file=sys.stderr, flush=True)
    if bar is not None:
        bar.close()
    return rows


# --- report ------------------------------------------------------------------------------------
def table(report: dict) -> str:
    lines = [f"sim_bench on {report['machine']}"]
    if "rtf" in report:
        r = report["rtf"]
        lines += [
            "",
            f"(a) sim_node work in process, {r['robot']}, cameras {', '.join(r['cameras'])}, "
            f"{r['sim_seconds']:g} sim s",
            f"    physics {r['physics_ms_per_sim_s']:.0f} ms per sim s (RTF {r['rtf_physics_only']:.1f} alone); "
            f"render {r['render_ms_per_frame']:.1f} ms per frame",
            f"    real-time factor {r['rtf']:.2f}  (one core {100 / r['rtf']:.0f}% busy at real time)",
        ]
    if "dds" in report:
        d = report["dds"]
        lines += [
            "",
            f"(a) over DDS: ros2-vla launch {d['robot']} --sim, {d['seconds']:g} s at a subscriber; "
            f"sim_node CPU {d['sim_node_cpu_percent']:.0f}% of a core",
            f"    {'topic':<28} {'nominal':>8} {'achieved':>9} {'max gap':>9} {'lat p50':>8} {'lat p99':>8}",
        ]
        for t in d["topics"]:
            lines.append(
                f"    {t['topic']:<28} {t['nominal_hz']:>6.0f}Hz {t['achieved_hz']:>7.1f}Hz {t['max_gap_ms']:>7.0f}ms "
                f"{t['latency_p50_ms']:>6.1f}ms {t['latency_p99_ms']:>6.1f}ms"
            )
    if "success" in report:
        lines += [
            "",
            f"(b) scripted expert through the bridge core, in process (chunks every 0.25 s, "
            f"time limit {report['time_limit_s']:g} s)",
            f"    {'robot':<7} {'kind':<14} {'success':>9} {'rate':>6} {'t50 [s]':>8} {'tmax [s]':>9} "
            f"{'chunks':>7} {'bad/ep':>7} {'wall/ep':>8}  failed seeds",
        ]
        for s in report["success"]:
            lines.append(
                f"    {s['robot']:<7} {s['kind']:<14} {s['successes']:>4}/{s['episodes']:<4} "
                f"{100 * s['success_rate']:>5.0f}% "
                f"{s['sim_time_median_s']:>8.1f} {s['sim_time_max_s']:>9.1f} {s['chunks_mean']:>7.1f} "
                f"{s['bad_chunks_per_episode']:>7.2f} {s['wall_s_per_episode']:>7.2f}s  {s['failed_seeds'] or '-'}"
            )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--parts", nargs="+", choices=("rtf", "dds", "success"), default=["rtf", "dds", "success"])
    p.add_argument("--robot", default="franka", help="robot of the rtf and dds parts")
    p.add_argument("--rtf-seconds", type=float, default=10.0, help="sim seconds of the in-process rtf run")
    p.add_argument("--dds-seconds", type=float, default=20.0, help="seconds of counting messages")
    p.add_argument("--episodes", type=int, default=50, help="seeds per task kind")
    p.add_argument("--first-seed", type=int, default=0)
    p.add_argument("--time-limit", type=float, default=60.0, help="[s] sim time before an episode fails")
    p.add_argument("--json", action="store_true", help="print JSON instead of the table")
    args = p.parse_args(argv)

    report: dict = {"machine": f"{platform.machine()}, {os.cpu_count()} CPUs, Python {platform.python_version()}"}
    if "rtf" in args.parts:
        report["rtf"] = bench_rtf(args.robot, args.rtf_seconds)
    if "dds" in args.parts:
        report["dds"] = bench_dds(args.robot, args.dds_seconds)
    if "success" in args.parts:
        report["time_limit_s"] = args.time_limit
        report["success"] = bench_success(args.episodes, args.first_seed, args.time_limit, progress=True)
    print(json.dumps(report, indent=2) if args.json else table(report))
    return 0


if __name__ == "__main__":
    sys.exit(main())
