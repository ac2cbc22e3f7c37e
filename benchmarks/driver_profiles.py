"""The closed-loop demo through each driver profile: success per robot and profile, against the default profile.

For each robot, `ros2-vla demo` runs --episodes held-out episodes (seeds from 100000, the same scenes for
every profile) with the robot's demo policy (the shipped flow policy where there is one, the scripted
expert elsewhere), once with the config's own JointTrajectory topics and once through each profile under
`drivers:` (the sim playing that driver). Prints a Markdown table and writes JSON: successes, trials,
Wilson 95 % interval and median episode time per robot and profile.

    python benchmarks/driver_profiles.py [--robots franka widowx aloha] [--episodes 10] [--out out/driver_profiles]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import time
from pathlib import Path

from ros2_vla.config import load_robot_config
from ros2_vla.dds_env import set_localhost_only
from ros2_vla.driver_profile import available_drivers
from ros2_vla.evaluation.stats import wilson_interval
from ros2_vla.ros.demo import demo_policy, run_demo


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--robots", nargs="+", default=["franka", "widowx", "aloha"])
    ap.add_argument("--episodes", type=int, default=10)
    ap.add_argument("--seed", type=int, default=100000)
    ap.add_argument("--out", default="out/driver_profiles")
    args = ap.parse_args()
    os.environ.setdefault("ROS_DOMAIN_ID", str(random.randint(10, 99)))
    set_localhost_only(os.environ)
    out = Path(args.out)
    rows = []
    for robot in args.robots:
        for driver in ["", *available_drivers(load_robot_config(robot))]:
            t0 = time.monotonic()
            episodes = run_demo(robot, args.episodes, args.seed, out / f"{robot}_{driver or 'default'}", driver=driver)
            ok = sum(e.success for e in episodes)
            lo, hi = wilson_interval(ok, len(episodes))
            rows.append(
                {
                    "robot": robot,
                    "driver": driver or "(default)",
                    "policy": demo_policy(robot),
                    "successes": ok,
                    "trials": len(episodes),
                    "wilson95": [round(lo, 3), round(hi, 3)],
                    "median_episode_s": round(statistics.median(e.seconds for e in episodes if e.success), 1)
                    if ok
                    else None,
                    "wall_s": round(time.monotonic() - t0, 1),
                }
            )
            print(json.dumps(rows[-1]), flush=True)
    out.mkdir(parents=True, exist_ok=True)
    (out / "driver_profiles.json").write_text(json.dumps(rows, indent=1) + "\n")
    print("\n| robot | driver profile | policy | success | 95 % interval | median episode [s] |")
    print("|---|---|---|---|---|---|")
    for r in rows:
        lo, hi = r["wilson95"]
        print(
            f"| {r['robot']} | {r['driver']} | {r['policy']} | {r['successes']}/{r['trials']} | "
            f"{100 * lo:.0f}-{100 * hi:.0f} % | {r['median_episode_s']} |"
        )


if __name__ == "__main__":
    main()
