"""How long the bridge takes per chunk and per control tick, against its kinematics floor (in process, no DDS).

    python benchmarks/bridge_bench.py [--repeats 200] [--json]

Per robot and horizon H, all measured in this run:
- plan: `Bridge.on_chunk` (validate, decode, per step target + bounds + IK, timing, blending), as
  bridge_node runs it in its chunk callback; p50 / p99 [ms].
- first point: on_chunk, the `tick` that bridge_node calls right after it and the JointTrajectory
  messages built from what it returns: the chunk's arrival to its first point leaving, but for the
  DDS publish itself [ms].
- python: the same plan with the planner's Python step loop (what every chunk ran before the loop was
  compiled; it still runs with an external IK such as MoveIt's) [ms].
- floor: H calls of pinocchio's FK + Jacobian from Python, the kinematics one IK iteration per step needs
  [ms]; ratio = plan p50 / floor p50 (joint-space robots need no kinematics: no floor).
- tick: one control tick with a plan loaded [ms], against the control period.
The first chunk after a Bridge is built is left out of the figures; `startup` is the time to build it
(it loads, or after an install compiles, the compiled code).
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np

from ros2_vla.actions.chunk import Chunk
from ros2_vla.bridge.bridge import Bridge
from ros2_vla.config import RobotConfig, load_robot_config
from ros2_vla.ik.solve import solve_ik
from ros2_vla.kinematics.model import ArmModel
from ros2_vla.ros.convert import joint_trajectory_msg

HORIZONS = (1, 10, 50)


def _python_ik(model, T, q_seed, params):
    """The package's IK behind another name: the planner then runs its Python step loop."""
    return solve_ik(model, T, q_seed, params)


def _joint_state(robot: RobotConfig) -> tuple[list[str], list[float]]:
    names, positions = [], []
    for arm in robot.arms:
        names += list(arm.chain.joint_names)
        positions += list(arm.chain.home)
        if arm.gripper is not None:
            names.append(arm.gripper.joint)
            positions.append(arm.gripper.open_position)
    return names, positions


def _chunk(robot: RobotConfig, horizon: int, rng: np.random.Generator, stamp: float) -> Chunk:
    names = robot.action.dimension_names
    if robot.action.space == "joint_position":
        home = np.concatenate([np.r_[a.chain.home, 1.0] for a in robot.arms])
        values = home + np.cumsum(rng.normal(0.0, 0.01, (horizon, len(names))), axis=0)
    else:  # small ee deltas: a few mm and mrad per step, gripper open
        values = np.column_stack([rng.normal(0.0, 0.003, (horizon, 6)), np.ones(horizon)])
    return Chunk(
        stamp=stamp,
        embodiment=robot.name,
        action_space=robot.action.space,
        dimension_names=names,
        dt=robot.action.dt,
        horizon=horizon,
        values=values.astype(np.float32),
    )


def _time_chunks(bridge: Bridge, robot: RobotConfig, horizon: int, repeats: int) -> dict[str, np.ndarray]:
    """[ms] per chunk: on_chunk, on_chunk + tick, and a later tick; each chunk starts from home at rest."""
    rng = np.random.default_rng(0)
    names, positions = _joint_state(robot)
    plan, first, tick, now = [], [], [], 0.0
    for _ in range(repeats + 1):  # the first is left out
        bridge.update_joint_state(names, positions, now)
        bridge.set_enabled(True, now)
        chunk = _chunk(robot, horizon, rng, now)
        t0 = time.perf_counter()
        bridge.on_chunk(chunk, now)
        t1 = time.perf_counter()
        for c in bridge.tick(now):
            joint_trajectory_msg(c.joint_names, c.times_from_start, c.positions, c.velocities)
        t2 = time.perf_counter()
        bridge.tick(now + 0.001)
        t3 = time.perf_counter()
        plan.append(t1 - t0), first.append(t2 - t0), tick.append(t3 - t2)
        bridge.set_enabled(False, now)
        now += 1.0
    return {k: 1e3 * np.array(v[1:]) for k, v in (("plan", plan), ("first", first), ("tick", tick))}


def _floor(robot: RobotConfig, horizon: int, repeats: int) -> np.ndarray | None:
    """[ms] H pinocchio FK + Jacobian calls from Python; None for joint-space robots."""
    if robot.action.space not in ("ee_delta", "ee_absolute"):
        return None
    model = ArmModel.from_arm(robot.arms[0])
    q = np.array(robot.arms[0].chain.home)
    out = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        for _ in range(horizon):
            model.fk_and_jacobian(q)
        out.append(time.perf_counter() - t0)
    return 1e3 * np.array(out)


def bench(robot_name: str, horizon: int, repeats: int, python_repeats: int) -> dict:
    robot = load_robot_config(robot_name)
    t0 = time.perf_counter()
    bridge = Bridge(robot)
    startup = time.perf_counter() - t0
    compiled = _time_chunks(bridge, robot, horizon, repeats)
    python = _time_chunks(Bridge(robot, ik_solver=_python_ik), robot, horizon, python_repeats)["plan"]
    floor = _floor(robot, horizon, repeats)
    p = lambda values, q: float(np.percentile(values, q))  # noqa: E731
    row = {
        "robot": robot_name,
        "horizon": horizon,
        "startup_s": startup,
        "plan_p50_ms": p(compiled["plan"], 50),
        "plan_p99_ms": p(compiled["plan"], 99),
        "first_point_p50_ms": p(compiled["first"], 50),
        "first_point_p99_ms": p(compiled["first"], 99),
        "python_plan_p50_ms": p(python, 50),
        "python_plan_p99_ms": p(python, 99),
        "tick_p50_ms": p(compiled["tick"], 50),
        "tick_p99_ms": p(compiled["tick"], 99),
        "control_period_ms": 1e3 / robot.control_rate_hz,
        "floor_p50_ms": None,
        "floor_ratio": None,
    }
    if floor is not None:
        row["floor_p50_ms"] = p(floor, 50)
        row["floor_ratio"] = row["plan_p50_ms"] / row["floor_p50_ms"]
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=200, help="chunks per robot and horizon")
    parser.add_argument("--python-repeats", type=int, default=40, help="chunks for the Python loop")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    rows = [bench(r, h, args.repeats, args.python_repeats) for r in ("franka", "widowx", "aloha") for h in HORIZONS]
    if args.json:
        print(json.dumps(rows, indent=2))
        return
    print(
        f"{'robot':8} {'H':>3} {'plan p50':>9} {'p99':>6} {'1st pt p50':>10} {'p99':>6} {'python p50':>10} "
        f"{'floor':>6} {'ratio':>6} {'tick p99':>8} {'period':>6}  [ms]"
    )
    for r in rows:
        floor = (
            f"{r['floor_p50_ms']:6.2f} {r['floor_ratio']:6.1f}"
            if r["floor_ratio"] is not None
            else f"{'-':>6} {'-':>6}"
        )
        print(
            f"{r['robot']:8} {r['horizon']:>3} {r['plan_p50_ms']:9.2f} {r['plan_p99_ms']:6.2f} "
            f"{r['first_point_p50_ms']:10.2f} {r['first_point_p99_ms']:6.2f} {r['python_plan_p50_ms']:10.2f} "
            f"{floor} {r['tick_p99_ms']:8.3f} {r['control_period_ms']:6.1f}"
        )
    print(f"startup (Bridge built, compiled code loaded): {max(r['startup_s'] for r in rows):.2f} s at most")


if __name__ == "__main__":
    main()
