"""How steady are a dataset's action labels? Step size and step-to-step change of the translation.

    python benchmarks/label_smoothness.py DATASET [DATASET ...] [--json]

For each LeRobot dataset (`ros2-vla convert`, ee_delta actions) it prints the median and mean length
of the x-y-z action [mm] and of its change from one frame to the next within an episode [mm]. Labels
of measured motion carry the controller's lag and the demonstrator's waits; `--labels commanded`
labels carry only the demonstrator's decisions, which a policy can learn (README, Convert).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from ros2_vla.actions.spaces import EE_DELTA, EE_TRANSLATION
from ros2_vla.data.episode import MEASURED
from ros2_vla.data.lerobot_format import ACTION
from ros2_vla.data.lerobot_reader import read_extras, read_frame_columns


def smoothness(root: Path) -> dict:
    extras = read_extras(root)
    if extras.get("action_space") != EE_DELTA:
        raise SystemExit(f"{root}: {extras.get('action_space')} actions; this measures {EE_DELTA} translations")
    frames = read_frame_columns(root)
    episode = frames["episode_index"]
    xyz = frames[ACTION][:, [extras["action_names"].index(n) for n in EE_TRANSLATION]].astype(np.float64)
    same = episode[1:] == episode[:-1]
    step = np.linalg.norm(xyz, axis=1) * 1e3
    change = np.linalg.norm(np.diff(xyz, axis=0), axis=1)[same] * 1e3
    return {
        "dataset": str(root),
        "labels": extras.get("action_labels", MEASURED),
        "frames": int(len(episode)),
        "episodes": int(len(np.unique(episode))),
        "step_mm_median": float(np.median(step)),
        "step_mm_mean": float(step.mean()),
        "change_mm_median": float(np.median(change)),
        "change_mm_mean": float(change.mean()),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("datasets", nargs="+", type=Path)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    rows = [smoothness(d) for d in args.datasets]
    if args.json:
        print(json.dumps(rows, indent=2))
        return
    print("| dataset | labels | episodes | frames | step median / mean [mm] | change median / mean [mm] |")
    print("|---|---|---|---|---|---|")
    for r in rows:
        print(
            f"| {r['dataset']} | {r['labels']} | {r['episodes']} | {r['frames']} | "
            f"{r['step_mm_median']:.1f} / {r['step_mm_mean']:.1f} | "
            f"{r['change_mm_median']:.2f} / {r['change_mm_mean']:.2f} |"
        )


if __name__ == "__main__":
    main()
