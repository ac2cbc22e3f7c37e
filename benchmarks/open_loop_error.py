"""How closely does a flow policy replay its demos' chunks? Open-loop error on dataset frames.

    python benchmarks/open_loop_error.py MODEL DATASET [--episodes 8] [--every 5] [--json]

On every `--every`-th frame of `--episodes` episodes spread over the dataset (a LeRobot folder from
`ros2-vla convert`, ee_delta actions), the policy predicts a chunk from the recorded observation, as
vla_node would; the chunk's x-y-z displacement (its steps summed) is compared with the labels of the
same frames. On the model's own training data this says how well it fits the demos, apart from
anything closed-loop (compounding drift, timing): a policy that misses its training chunks by a
quarter of their length will not reproduce the demos in closed loop either.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from ros2_vla.actions.chunk import chunk_to_array
from ros2_vla.actions.spaces import EE_DELTA, EE_TRANSLATION
from ros2_vla.data.lerobot_reader import load_lerobot_dataset, read_frame_columns
from ros2_vla.policies.base import Observation
from ros2_vla.policies.flow.backend import FlowPolicy
from ros2_vla.policies.runner import output_chunk


def chunk_errors(policy: FlowPolicy, dataset: str, episodes: list[int], every: int) -> dict:
    ds = load_lerobot_dataset(dataset, episodes=episodes)
    if ds.action_space != EE_DELTA:
        raise SystemExit(f"{dataset}: {ds.action_space} actions; this measures {EE_DELTA} translations")
    xyz = [ds.action_names.index(n) for n in EE_TRANSLATION]
    first_mm, chunk_cm, label_cm = [], [], []
    for ep in episodes:
        frames = np.flatnonzero(ds.episode_index == ep)
        for i in frames[::every]:
            obs = Observation(0.0, {c: ds.images[c][i] for c in ds.cameras}, ds.state[i], ds.tasks[ds.task_index[i]])
            # the physical actions the bridge would play: the chunk vla_node publishes, decoded
            pred = chunk_to_array(output_chunk(ds.robot, policy.spec, policy.infer(obs), 0.0, obs.instruction, 0, 0.0))
            label = ds.action[i : min(i + len(pred), frames[-1] + 1)].astype(np.float64)
            pred = pred[: len(label)]  # near the episode's end fewer labels remain
            first_mm.append(np.linalg.norm(pred[0, xyz] - label[0, xyz]) * 1e3)
            chunk_cm.append(np.linalg.norm(pred[:, xyz].sum(0) - label[:, xyz].sum(0)) * 1e2)
            label_cm.append(np.linalg.norm(label[:, xyz].sum(0)) * 1e2)
    return {
        "frames": len(chunk_cm),
        "first_step_error_mm_median": float(np.median(first_mm)),
        "chunk_displacement_cm_median": float(np.median(label_cm)),
        "chunk_error_cm_median": float(np.median(chunk_cm)),
        "chunk_error_cm_p90": float(np.percentile(chunk_cm, 90)),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("model", help="flow checkpoint folder")
    parser.add_argument("dataset", help="LeRobot dataset folder (ee_delta actions)")
    parser.add_argument("--episodes", type=int, default=8, help="episodes, spread evenly over the dataset")
    parser.add_argument("--every", type=int, default=5, help="use every N-th frame")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    all_episodes = np.unique(read_frame_columns(Path(args.dataset))["episode_index"])
    picked = [int(e) for e in all_episodes[np.linspace(0, len(all_episodes) - 1, args.episodes).round().astype(int)]]
    result = {
        "model": args.model,
        "dataset": args.dataset,
        "episodes": picked,
        **chunk_errors(FlowPolicy(args.model, num_threads=args.threads), args.dataset, picked, args.every),
    }
    if args.json:
        print(json.dumps(result, indent=1))
        return
    print(
        f"{'model':<24} {'frames':>6} {'first step err [mm]':>20} {'chunk [cm]':>11} {'chunk err [cm] p50 / p90':>25}"
    )
    print(
        f"{args.model:<24} {result['frames']:>6} {result['first_step_error_mm_median']:>20.1f} "
        f"{result['chunk_displacement_cm_median']:>11.1f} "
        f"{result['chunk_error_cm_median']:>13.1f} / {result['chunk_error_cm_p90']:.1f}"
    )


if __name__ == "__main__":
    main()
