"""Does a policy listen? At the first frame of held-out scenes, ask for each cube by color and see where
the first chunk heads.

    python benchmarks/grounding_probe.py franka --model MODEL_DIR [--scenes 20] [--seed 100000] [--json]

For every scene (a sim reset at a held-out seed, the arm at home) and every cube color, the flow policy
is asked "pick up the {color} cube", fed as `ros2-vla eval` feeds it (the Observation vla_node builds).
The x-y sum of its first chunk's translations (as the bridge decodes them) is compared, by angle from the gripper,
with the direction of each cube. `grounded` counts the (scene, color) pairs whose chunk heads closest
to the named cube: chance is one in the number of cubes, and a policy that ignores the words heads
the same way for every color (`spread`, the mean angle between the colors' headings, near 0; each
color gets the same flow noise, so only the words differ).
The probe reads the sim's true cube positions: a diagnostic, never a policy input. One-arm
ee_delta robots only.
"""

from __future__ import annotations

import argparse
import json

import numpy as np

from ros2_vla.actions.chunk import chunk_to_array
from ros2_vla.config import load_robot_config
from ros2_vla.evaluation.adapter import load_eval_policy
from ros2_vla.evaluation.episode import EpisodeObservation
from ros2_vla.evaluation.seeds import HELD_OUT_SEED
from ros2_vla.evaluation.stats import wilson_interval
from ros2_vla.sim.expert import ExpertObservation
from ros2_vla.sim.scene import base_transform, cube_name
from ros2_vla.sim.tasks import Task
from ros2_vla.sim.world import Simulation


def heading(chunk_xy: np.ndarray, tcp_xy: np.ndarray, targets: dict[str, np.ndarray]) -> dict[str, float]:
    """Angle [rad] between the chunk's x-y motion and the direction from the gripper to each target."""
    out = {}
    for name, xy in targets.items():
        to = xy - tcp_xy
        cos = float(np.dot(chunk_xy, to) / (np.linalg.norm(chunk_xy) * np.linalg.norm(to) + 1e-12))
        out[name] = float(np.arccos(np.clip(cos, -1.0, 1.0)))
    return out


def probe(robot_name: str, model: str, scenes: int, seed: int) -> dict:
    robot = load_robot_config(robot_name)
    arm = robot.arms[0]
    policy = load_eval_policy(robot, "flow", model, device="cpu")
    sim = Simulation(robot, seed=seed)
    T_base_world = np.linalg.inv(base_transform(arm))
    colors = sim.scene.cube_colors
    hits, spreads, rows = 0, [], []
    for k in range(scenes):
        sim.reset(seed + k)
        images = {c: sim.render(c) for c in policy.cameras}
        tcp_xy = sim.tcp_pose(arm.name, frame="base")[:2, 3]
        cubes = {c: (T_base_world @ sim.object_pose(cube_name(c)))[:2, 3] for c in colors}
        headings = []
        for color in colors:
            task = Task("pick", (color,))
            policy.reset()
            policy.backend.generator.manual_seed(seed + k)  # the same flow noise for every color: only the words differ
            chunk = policy(
                EpisodeObservation(
                    0.0, task.instruction, sim.joint_state(), images, task, ExpertObservation.from_sim(sim)
                )
            )
            if chunk is None:
                raise SystemExit(f"the policy declined the observation: {policy.refusals[-1]}")
            xy = chunk_to_array(chunk)[:, :2].sum(0)
            angles = heading(xy, tcp_xy, cubes)
            nearest = min(angles, key=angles.get)
            hits += nearest == color
            headings.append(np.arctan2(xy[1], xy[0]))
            rows.append(
                {
                    "seed": seed + k,
                    "asked": color,
                    "heads_to": nearest,
                    "angles_deg": {c: round(float(np.degrees(a)), 1) for c, a in angles.items()},
                }
            )
        pairs = [abs((a - b + np.pi) % (2 * np.pi) - np.pi) for i, a in enumerate(headings) for b in headings[i + 1 :]]
        spreads.append(float(np.degrees(np.mean(pairs))))
    total = scenes * len(colors)
    low, high = wilson_interval(hits, total)
    return {
        "robot": robot.name,
        "model": model,
        "scenes": scenes,
        "seed": seed,
        "asked": total,
        "grounded": hits,
        "rate": hits / total,
        "ci95": [low, high],
        "chance": 1.0 / len(colors),
        "spread_deg_mean": float(np.mean(spreads)),
        "rows": rows,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("robot", help="robot config name (one-arm ee_delta: franka, widowx)")
    parser.add_argument("--model", required=True, help="flow checkpoint folder")
    parser.add_argument("--scenes", type=int, default=20)
    parser.add_argument(
        "--seed",
        type=int,
        default=HELD_OUT_SEED,
        help=f"first scene seed (default {HELD_OUT_SEED}; demos use seeds below it)",
    )
    parser.add_argument("--json", action="store_true", help="print JSON (with every row) instead of a table")
    args = parser.parse_args()
    result = probe(args.robot, args.model, args.scenes, args.seed)
    if args.json:
        print(json.dumps(result, indent=2))
        return
    print(
        f"| model | scenes | grounded | rate (95% CI) | chance | color spread |\n|---|---|---|---|---|---|\n"
        f"| {result['model']} | {result['scenes']} | {result['grounded']}/{result['asked']} | "
        f"{result['rate']:.0%} ({result['ci95'][0]:.0%}-{result['ci95'][1]:.0%}) | {result['chance']:.0%} | "
        f"{result['spread_deg_mean']:.1f} deg |"
    )


if __name__ == "__main__":
    main()
