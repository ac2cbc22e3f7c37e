"""How long the bridge takes per chunk and per control tick, per robot and horizon (in process, no DDS).

    python benchmarks/bridge_bench.py [--repeats 50] [--json]

A chunk's planning (validate, decode, IK per step, timing, blending) runs in bridge_node's chunk
callback; a tick (sampling the plan into a JointTrajectory) runs at the control rate. Both must
stay well inside a control period for the bridge never to make the arm wait.
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np

from ros2_vla.actions.chunk import Chunk
from ros2_vla.bridge.bridge import Bridge
from ros2_vla.config import load_robot_config

HORIZONS = (1, 10, 50)


def _joint_state(robot) -> tuple[list[str], list[float]]:
    names, positions = [], []
    for arm in robot.arms:
        names += list(arm.chain.joint_names)
        positions += list(arm.chain.home)
        if arm.gripper is not None:
            names.append(arm.gripper.joint)
            positions.append(arm.gripper.open_position)
    return names, positions


def _chunk(robot, horizon: int, rng: np.random.Generator, stamp: float) -> Chunk:
    names = robot.action.dimension_names
    if robot.action.space == "joint_position":
        home = np.concatenate([np.r_[a.chain.home, 1.0] for a in robot.arms])
        values = home + np.cumsum(rng.normal(0.0, 0.01, (horizon, len(names))), axis=0)
    else:  # small ee deltas: a few mm and mrad per step, gripper open
        values = np.column_stack([rng.normal(0.0, 0.003, (horizon, 6)), np.ones(horizon)])
    return Chunk(stamp=stamp, embodiment=robot.name, action_space=robot.action.space, dimension_names=names,
                 dt=robot.action.dt, horizon=horizon, values=values.astype(np.float32))


def bench(robot_name: str, horizon: int, repeats: int) -> dict:
    robot = load_robot_config(robot_name)
    rng = np.random.default_rng(0)
    bridge = Bridge(robot)
    names, positions = _joint_state(robot)
    bridge.update_joint_state(names, positions, 0.0)
    bridge.set_enabled(True, 0.0)
    plan_ms, tick_ms, now = [], [], 0.0
    for _ in range(repeats):
        bridge.update_joint_state(names, positions, now)
        chunk = _chunk(robot, horizon, rng, now)
        t0 = time.perf_counter()
        bridge.on_chunk(chunk, now)
        plan_ms.append(1e3 * (time.perf_counter() - t0))
        t0 = time.perf_counter()
        bridge.tick(now + 0.001)
        tick_ms.append(1e3 * (time.perf_counter() - t0))
        bridge.set_enabled(False, now)  # start each chunk from home, so every repeat plans the same kind of path
        now += 1.0
        bridge.update_joint_state(names, positions, now)
        bridge.set_enabled(True, now)
    return {"robot": robot_name, "horizon": horizon,
            "plan_p50_ms": float(np.percentile(plan_ms, 50)), "plan_p99_ms": float(np.percentile(plan_ms, 99)),
            "tick_p50_ms": float(np.percentile(tick_ms, 50)), "tick_p99_ms": float(np.percentile(tick_ms, 99)),
            "control_period_ms": 1e3 / robot.control_rate_hz}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=50)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    rows = [bench(r, h, args.repeats) for r in ("franka", "widowx", "aloha") for h in HORIZONS]
    if args.json:
        print(json.dumps(rows, indent=2))
        return
    print(f"{'robot':8} {'H':>3} {'plan p50':>9} {'plan p99':>9} {'tick p50':>9} {'tick p99':>9} {'period':>7}  [ms]")
    for r in rows:
        print(f"{r['robot']:8} {r['horizon']:>3} {r['plan_p50_ms']:9.2f} {r['plan_p99_ms']:9.2f} "
              f"{r['tick_p50_ms']:9.3f} {r['tick_p99_ms']:9.3f} {r['control_period_ms']:7.1f}")


if __name__ == "__main__":
    main()
