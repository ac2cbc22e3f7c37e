"""Benchmark `ros2-vla convert`: episodes per minute from rosbag2 bags to a LeRobot v3.0 dataset.

    source scripts/env.sh
    python benchmarks/convert_bench.py                          # 5 franka expert episodes, JSON
    python benchmarks/convert_bench.py --episodes 10 --camera 640x480@30

Episodes are made first, in process: the scripted expert drives the MuJoCo sim through the real
bridge core and everything sim_node and the bridge would publish is written as one MCAP bag per
episode (test/bag_fixtures.py, the same bags the tests convert). Only the conversion is timed
(`convert_to_lerobot`: reading and checking every bag, action labels, H.264 encoding, parquet and
metadata), then loading the dataset back (`load_lerobot_dataset`) is timed on its own.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "test"))  # bag_fixtures: the sim episode -> bag writer the tests use

from bag_fixtures import simulate, write_bag  # noqa: E402

from ros2_vla.config import load_robot_config  # noqa: E402
from ros2_vla.data.convert import ConvertOptions, convert_to_lerobot  # noqa: E402
from ros2_vla.data.episode import EpisodeMeta  # noqa: E402
from ros2_vla.data.lerobot_reader import load_lerobot_dataset  # noqa: E402
from ros2_vla.data.video import VideoSettings  # noqa: E402


def make_bags(folder: Path, robot_name: str, episodes: int, seconds: float, camera: str) -> dict:
    robot = load_robot_config(robot_name)
    if camera:
        size, rate = camera.split("@") if "@" in camera else (camera, None)
        w, h = (int(v) for v in size.split("x"))
        robot = dataclasses.replace(
            robot,
            cameras=tuple(
                dataclasses.replace(c, width=w, height=h, rate_hz=float(rate) if rate else c.rate_hz)
                for c in robot.cameras
            ),
        )
    start = time.perf_counter()
    successes = 0
    for i in range(episodes):
        rec = simulate(robot, seed=i, kind="", time_limit=seconds)
        successes += rec.success
        write_bag(folder / f"episode_{i:04d}", rec, EpisodeMeta(robot=robot_name, success=None, seed=i))
    size = sum(f.stat().st_size for f in folder.rglob("*") if f.is_file())
    return {
        "bags_mb": round(size / 1e6, 1),
        "expert_successes": successes,
        "make_s": round(time.perf_counter() - start, 1),
        "cameras": [f"{c.name} {c.width}x{c.height}@{c.rate_hz:g}" for c in robot.cameras],
    }


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--robot", default="franka")
    p.add_argument("--episodes", type=int, default=5)
    p.add_argument(
        "--seconds", type=float, default=10.0, help="sim time limit per episode [s] (the expert may finish sooner)"
    )
    p.add_argument("--camera", default="", help="override every camera: WxH or WxH@HZ (default: the config's)")
    p.add_argument("--crf", type=int, default=18)
    args = p.parse_args()
    with tempfile.TemporaryDirectory(prefix="convert_bench_") as tmp:
        bags, out = Path(tmp) / "bags", Path(tmp) / "dataset"
        made = make_bags(bags, args.robot, args.episodes, args.seconds, args.camera)
        cpu0 = time.process_time()
        start = time.perf_counter()
        report = convert_to_lerobot([bags], out, ConvertOptions(video=VideoSettings(crf=args.crf)))
        seconds = time.perf_counter() - start
        cpu = time.process_time() - cpu0  # this process only; ffmpeg encoders are child processes
        start = time.perf_counter()
        data = load_lerobot_dataset(out)
        load_s = time.perf_counter() - start
        result = {
            "robot": args.robot,
            "episodes": report.episodes,
            "frames": report.frames,
            **made,
            "convert_s": round(seconds, 2),
            "episodes_per_min": round(60 * report.episodes / seconds, 1),
            "frames_per_s": round(report.frames / seconds, 1),
            "mb_written": round(report.bytes_written / 1e6, 2),
            "input_mb_per_s": round(made["bags_mb"] / seconds, 1),
            "convert_cpu_s_python": round(cpu, 2),
            "load_s": round(load_s, 2),
            "load_frames_per_s": round(len(data) / load_s, 1),
            "crf": args.crf,
            "machine": f"{platform.machine()}, {os.cpu_count()} cores",
        }
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
