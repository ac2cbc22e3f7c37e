"""The bridge's collision check: what it costs per chunk, and what it does to the scripted expert's success.

Cost: the chunks the expert sends in a few episodes of each robot are planned again by a `ChunkPlanner`
with the check and without it, from the start poses they had (interleaved, best of --repeats), so the
ratio is taken on the same machine in the same run. Success: --episodes held-out episodes (seeds from
100000) of each robot with the expert, through the in-process closed loop (`run_episode`: the MuJoCo sim,
the bridge core at its control rate), with the check and without it. Prints Markdown tables and writes JSON.

    python benchmarks/collision_bench.py [--robots franka widowx aloha] [--episodes 50] [--out out/collision]
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

import numpy as np

from ros2_vla.actions.chunk import Chunk
from ros2_vla.bridge.bridge import Bridge
from ros2_vla.bridge.planner import ChunkPlanner
from ros2_vla.bridge.status import BridgeState
from ros2_vla.config import RobotConfig, load_robot_config
from ros2_vla.evaluation.episode import ExpertPolicy, run_episode
from ros2_vla.evaluation.stats import wilson_interval
from ros2_vla.sim.world import Simulation

SEED = 100000


def recorded_chunks(robot: RobotConfig, sim: Simulation, episodes: int) -> list[tuple[Chunk, dict[str, np.ndarray]]]:
    """The expert's chunks from a few episodes, each with the start poses the bridge planned it from."""
    out: list[tuple[Chunk, dict[str, np.ndarray]]] = []
    original = Bridge.on_chunk

    def spy(bridge: Bridge, chunk: Chunk, now: float) -> BridgeState:
        if bridge.enabled and all(b.plan is not None for b in bridge.blenders.values()):
            out.append((chunk, {n: b.chunk_start(now, chunk.stamp) for n, b in bridge.blenders.items()}))
        return original(bridge, chunk, now)

    Bridge.on_chunk = spy
    try:
        for seed in range(SEED, SEED + episodes):
            run_episode(robot, seed, "", ExpertPolicy(robot, sim), sim=sim)
    finally:
        Bridge.on_chunk = original
    return out


def plan_cost(robot: RobotConfig, chunks, repeats: int) -> dict:
    """Median time [ms] to plan each recorded chunk with and without the check (best of `repeats` each)."""
    checked = ChunkPlanner(robot, collision=robot.collision)
    unchecked = ChunkPlanner(robot, collision=None)
    times = {"with": [], "without": []}
    steps = []
    for chunk, q in chunks:
        best = {"with": np.inf, "without": np.inf}
        for _ in range(repeats):
            for key, planner in (("with", checked), ("without", unchecked)):
                t0 = time.perf_counter()
                planner.plan(chunk, q)
                best[key] = min(best[key], time.perf_counter() - t0)
        for key in times:
            times[key].append(best[key] * 1e3)
        steps.append(chunk.horizon)
    w, wo = statistics.median(times["with"]), statistics.median(times["without"])
    return {
        "chunks": len(chunks),
        "steps_per_chunk": statistics.median(steps),
        "plan_ms_without": round(wo, 3),
        "plan_ms_with": round(w, 3),
        "check_ms_per_chunk": round(w - wo, 3),
        "check_us_per_step": round((w - wo) * 1e3 / statistics.median(steps) / len(robot.arms), 1),
        "ratio": round(w / wo, 2),
        "control_period_ms": round(1e3 / robot.control_rate_hz, 1),
    }


def success(robot: RobotConfig, sim: Simulation, episodes: int, check: bool) -> dict:
    results = [
        run_episode(robot, seed, "", ExpertPolicy(robot, sim), sim=sim, check_collisions=check)
        for seed in range(SEED, SEED + episodes)
    ]
    ok = sum(r.success for r in results)
    lo, hi = wilson_interval(ok, episodes)
    halts = sum(r.bridge_codes.get("HALT_FOR_COLLISION", 0) for r in results)
    slows = sum(r.bridge_codes.get("DECELERATE_FOR_COLLISION", 0) for r in results)
    return {
        "check": check,
        "successes": ok,
        "episodes": episodes,
        "wilson95": [round(lo, 3), round(hi, 3)],
        "median_sim_time_s": round(statistics.median(r.sim_time for r in results), 2),
        "halt_chunks": halts,
        "decelerate_chunks": slows,
        "failed_seeds": [r.seed for r in results if not r.success],
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--robots", nargs="+", default=["franka", "widowx", "aloha"])
    ap.add_argument("--episodes", type=int, default=50)
    ap.add_argument("--cost-episodes", type=int, default=3)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--out", default="out/collision")
    args = ap.parse_args()
    report = {}
    for name in args.robots:
        robot = load_robot_config(name)
        sim = Simulation(robot, seed=SEED)
        cost = plan_cost(robot, recorded_chunks(robot, sim, args.cost_episodes), args.repeats)
        print(f"{name}: cost {cost}", flush=True)
        runs = [success(robot, sim, args.episodes, check) for check in (True, False)]
        for r in runs:
            print(f"{name}: {r}", flush=True)
        report[name] = {"cost": cost, "success": runs}
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "collision.json").write_text(json.dumps(report, indent=2))
    print("\n| robot | steps/chunk | plan without (ms) | with (ms) | check per chunk (ms) | per step (us) | ratio |")
    print("|---|---|---|---|---|---|---|")
    for name, r in report.items():
        c = r["cost"]
        print(
            f"| {name} | {c['steps_per_chunk']} | {c['plan_ms_without']} | {c['plan_ms_with']} | "
            f"{c['check_ms_per_chunk']} | {c['check_us_per_step']} | {c['ratio']} |"
        )
    print("\n| robot | check | success | Wilson 95 % | median sim time (s) | halt / decelerate chunks | failed seeds |")
    print("|---|---|---|---|---|---|---|")
    for name, r in report.items():
        for s in r["success"]:
            print(
                f"| {name} | {'on' if s['check'] else 'off'} | {s['successes']}/{s['episodes']} | "
                f"{s['wilson95'][0]:.2f}-{s['wilson95'][1]:.2f} | {s['median_sim_time_s']} | "
                f"{s['halt_chunks']} / {s['decelerate_chunks']} | {s['failed_seeds']} |"
            )
    print(f"\nwrote {out / 'collision.json'}")


if __name__ == "__main__":
    main()
