"""Data-parallel flow training: steps/s of `ros2-vla train` in one process and under torchrun, same run.

    python benchmarks/ddp_bench.py [--preset compact] [--batch-size 32] [--steps 40] [--processes 2]

The dataset is train_bench's synthetic one (the Franka's layout, 224x224 frames), written as a LeRobot
folder with the package's writer. One process uses every core; N processes (gloo on the CPU, NCCL with
--device cuda) share them, one thread each on a CPU. The global batch is the same in both. steps/s is
the training log's, averaged over its records after the first (model build and warm-up left out).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
from train_bench import synthetic_dataset

from ros2_vla.cpu import cpu_cores
from ros2_vla.data.lerobot_writer import write_frames


def steps_per_s(args: argparse.Namespace, dataset: Path, out: Path, processes: int) -> float:
    threads = str(cpu_cores()) if processes == 1 or args.device != "cpu" else "1"
    launcher = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={processes}"]
    command = [*(launcher if processes > 1 else [sys.executable]), "-m", "ros2_vla.cli", "train", str(dataset)]
    command += [str(out), "--preset", args.preset, "--steps", str(args.steps), "--batch-size", str(args.batch_size)]
    command += ["--log-every", "5", "--save-every", str(args.steps), "--threads", threads, "--device", args.device]
    result = subprocess.run([*command, "--no-progress"], cwd="/", capture_output=True, text=True)
    if result.returncode != 0:
        raise SystemExit(result.stderr[-3000:])
    records = [json.loads(line) for line in (out / "train_log.jsonl").read_text().splitlines()]
    rates = [r["steps_per_s"] for r in records if "steps_per_s" in r][1:]
    return float(np.mean(rates))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--preset", default="compact")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--steps", type=int, default=40)
    parser.add_argument("--processes", type=int, default=2)
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        dataset = Path(tmp) / "dataset"
        write_frames(synthetic_dataset(), dataset)
        for processes in (1, args.processes):
            rate = steps_per_s(args, dataset, Path(tmp) / f"run{processes}", processes)
            rows.append({"processes": processes, "steps_per_s": round(rate, 3)})
    for row in rows:
        row["x_one"] = round(row["steps_per_s"] / rows[0]["steps_per_s"], 2)
    print(json.dumps({"preset": args.preset, "global_batch": args.batch_size, "device": args.device, "rows": rows}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
