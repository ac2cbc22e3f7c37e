"""Demo recording speed: the live graph against `--in-process` (1 and N jobs), same robot and seeds, same run.

Each row is one whole `ros2-vla record ROBOT OUT --sim --expert --episodes E --seed S [...]` process, timed
from start to exit (startup included, as a user waits for it); its demos per minute and the ratio to the
live row. The render row is what bounds the in-process recorder on a CPU: one camera set drawn by MuJoCo
(Mesa's software GL here), times the sets an episode of that length needs.

    python benchmarks/record_bench.py [--robot franka] [--episodes 10] [--jobs 2] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def record(robot: str, out: Path, episodes: int, seed: int, extra: tuple[str, ...]) -> tuple[float, str]:
    """Wall time [s] of one `ros2-vla record` process and its last line."""
    start = time.perf_counter()
    args = ["record", robot, str(out), "--sim", "--expert", "--episodes", str(episodes), "--seed", str(seed)]
    result = subprocess.run(
        [sys.executable, "-m", "ros2_vla.cli", *args, *extra], cwd="/", capture_output=True, text=True
    )
    seconds = time.perf_counter() - start
    if result.returncode != 0:
        raise SystemExit(f"record {' '.join(extra)} failed:\n{result.stdout[-2000:]}\n{result.stderr[-2000:]}")
    return seconds, result.stdout.strip().splitlines()[-1]


def render_seconds(robot_name: str, repeats: int = 30) -> float:
    """[s] to draw one set of the robot's cameras (all of them, 224x224 each), the median of `repeats`."""
    import numpy as np

    from ros2_vla.config import load_robot_config
    from ros2_vla.sim.world import Simulation

    robot = load_robot_config(robot_name)
    sim = Simulation(robot, seed=0)
    names = tuple(c.name for c in robot.cameras)
    sim.render_set(names)
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        sim.render_set(names)
        times.append(time.perf_counter() - t)
    sim.close()
    return float(np.median(times))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--robot", default="franka")
    parser.add_argument("--episodes", type=int, default=10)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--jobs", type=int, default=2, help="the parallel in-process row")
    parser.add_argument("--json", default="", help="also write the rows here")
    args = parser.parse_args()
    from ros2_vla.config import load_robot_config

    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for label, extra in (
            ("live graph (DDS)", ()),
            ("in-process, 1 job", ("--in-process",)),
            (f"in-process, {args.jobs} jobs", ("--in-process", "--jobs", str(args.jobs))),
        ):
            print(f"recording {args.episodes} {args.robot} demos: {label} ...", file=sys.stderr, flush=True)
            out = Path(tmp) / re.sub(r"\W+", "_", label)
            seconds, last = record(args.robot, out, args.episodes, args.seed, extra)
            rows.append({"setting": label, "seconds": round(seconds, 1), "summary": last})
        demo_seconds = []
        from ros2_vla.data.episode import read_episode_meta

        for bag in sorted((Path(tmp) / "in_process_1_job").glob("episode_*")):
            meta = read_episode_meta(bag)
            demo_seconds.append((meta.stop_ns - meta.start_ns) * 1e-9)
    live = rows[0]["seconds"]
    for row in rows:
        row["demos_per_minute"] = round(args.episodes / row["seconds"] * 60, 1)
        row["speedup"] = round(live / row["seconds"], 2)
    set_s = render_seconds(args.robot)
    robot = load_robot_config(args.robot)
    rate = max(c.rate_hz for c in robot.cameras)
    sim_s = sum(demo_seconds)
    floor = {
        "camera_set_ms": round(set_s * 1e3, 1),
        "episode_sim_seconds": round(sim_s / len(demo_seconds), 2),
        "render_seconds_per_demo": round(set_s * rate * sim_s / len(demo_seconds), 2),
    }
    print(f"{args.robot}, {args.episodes} demos from seed {args.seed} (whole processes, startup included)")
    print(f"{'setting':<22} {'seconds':>8} {'demos/min':>10} {'x live':>7}")
    for row in rows:
        print(f"{row['setting']:<22} {row['seconds']:>8.1f} {row['demos_per_minute']:>10.1f} {row['speedup']:>7.2f}")
    print(
        f"render floor: one set of {len(robot.cameras)} cameras {floor['camera_set_ms']} ms; a demo is "
        f"{floor['episode_sim_seconds']} s at {rate:g} Hz: {floor['render_seconds_per_demo']} s of drawing per demo"
    )
    if args.json:
        Path(args.json).write_text(json.dumps({"robot": args.robot, "rows": rows, "render": floor}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
