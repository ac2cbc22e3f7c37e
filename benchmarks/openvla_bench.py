"""How fast the native openvla backend loads and infers, per quantization: load time, latency p50/p99, rate,
and GPU memory.

    python benchmarks/openvla_bench.py [--repeats 10] [--threads N] [--json]
    python benchmarks/openvla_bench.py --device cuda [--quantizations 4bit 8bit bf16] [--workdir DIR] [--json]

CPU (default): the test checkpoint (ros2_vla.policies.openvla.random_checkpoint: OpenVLA's published
layout, the full-size DINOv2 + SigLIP backbone, a tiny Llama; random weights) in fp32 and 4-bit NF4. Almost
all of its time is the 0.7 B-parameter vision backbone, which a 7B model runs too.
CUDA: an OpenVLA-7B-shaped checkpoint (Llama 2 7B behind the same backbone, random bf16 weights) is built
on the GPU and saved once to --workdir (~15 GB; reused when it is already there), then loaded through the
real path in each quantization. Random weights run the same kernels as trained ones; greedy decoding of 7
constrained tokens makes the work per call the same too.

One call = `policy.infer(obs)`: image preprocessing, prompt, one prefill with the image, 6 cached steps,
detokenization. Hz = 1 / mean latency; p99 over --repeats calls.
"""

from __future__ import annotations

import argparse
import gc
import json
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from ros2_vla.policies.base import Observation
from ros2_vla.policies.openvla import OpenVlaConfig, OpenVlaPolicy
from ros2_vla.policies.openvla.random_checkpoint import build_7b_shaped_checkpoint, build_test_checkpoint

WARMUP = 1


def _observation(size: int) -> Observation:
    rng = np.random.default_rng(0)
    image = rng.integers(0, 256, (size, size, 3), dtype=np.uint8)
    return Observation(
        stamp=0.0, images={"scene": image}, state=np.zeros(7, np.float32), instruction="put the carrot on the plate"
    )


def _sync(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def bench(checkpoint: Path, model: str, quantization: str, device: str, repeats: int, image_size: int) -> dict:
    if device.startswith("cuda"):
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats()
    t0 = time.perf_counter()
    policy = OpenVlaPolicy(
        OpenVlaConfig(checkpoint=str(checkpoint), dt=0.2, cameras=("scene",), quantization=quantization, device=device)
    )
    load_s = time.perf_counter() - t0
    obs = _observation(image_size)
    for _ in range(WARMUP):
        policy.infer(obs)
    times = []
    for _ in range(repeats):
        _sync(device)
        t0 = time.perf_counter()
        policy.infer(obs)
        _sync(device)
        times.append(time.perf_counter() - t0)
    ms = 1e3 * np.asarray(times)
    row = {
        "model": model,
        "device": device,
        "quantization": quantization,
        "load_s": load_s,
        "p50_ms": float(np.percentile(ms, 50)),
        "p99_ms": float(np.percentile(ms, 99)),
        "hz": float(1e3 / ms.mean()),
        "repeats": repeats,
        "threads": torch.get_num_threads(),
        "params_m": sum(p.numel() for p in policy.model.parameters()) / 1e6,  # packed 4-bit counts half
        "weights_gb": sum(t.numel() * t.element_size() for t in policy.model.state_dict().values()) / 2**30,
    }
    if device.startswith("cuda"):
        row["peak_gpu_gb"] = torch.cuda.max_memory_allocated() / 2**30
        row["gpu"] = torch.cuda.get_device_name()
    del policy
    gc.collect()
    return row


def _print_table(rows: list[dict]) -> None:
    header = (
        f"{'model':<15} {'device':<7} {'quant':<6} {'load s':>7} {'p50 ms':>8} {'p99 ms':>8} {'Hz':>7} "
        f"{'weights GB':>10} {'peak GPU GB':>11}"
    )
    print(header)
    print("-" * len(header))
    for r in rows:
        peak = f"{r['peak_gpu_gb']:.2f}" if "peak_gpu_gb" in r else "-"
        print(
            f"{r['model']:<15} {r['device']:<7} {r['quantization']:<6} {r['load_s']:>7.2f} {r['p50_ms']:>8.2f} "
            f"{r['p99_ms']:>8.2f} {r['hz']:>7.2f} {r['weights_gb']:>10.3f} {peak:>11}"
        )
    if rows and "gpu" in rows[0]:
        print(f"GPU: {rows[0]['gpu']}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", choices=("cpu", "cuda"), default="cpu")
    parser.add_argument("--quantizations", nargs="+", help="default: fp32 4bit on cpu, 4bit 8bit bf16 on cuda")
    parser.add_argument("--repeats", type=int, help="timed calls per quantization (default 10 cpu, 30 cuda)")
    parser.add_argument("--workdir", type=Path, help="where the checkpoint is built, or found from an earlier run")
    parser.add_argument("--threads", type=int, help="torch CPU threads (default: torch's choice)")
    parser.add_argument("--json", action="store_true", help="print the rows as JSON instead of a table")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    on_cuda = args.device == "cuda"
    quantizations = args.quantizations or (["4bit", "8bit", "bf16"] if on_cuda else ["fp32", "4bit"])
    repeats = args.repeats or (30 if on_cuda else 10)
    with tempfile.TemporaryDirectory(prefix="openvla_bench_") as tmp:
        if on_cuda:
            checkpoint = args.workdir or Path(tmp) / "openvla_7b_shaped"
            if not (checkpoint / "config.json").is_file():
                build_7b_shaped_checkpoint(checkpoint, device="cuda")
                gc.collect()
                torch.cuda.empty_cache()
            model = "7b-shaped"
        else:
            checkpoint = args.workdir or Path(tmp) / "openvla_test"
            if not (checkpoint / "config.json").is_file():
                build_test_checkpoint(checkpoint)
            model = "test (tiny LLM)"
        rows = [bench(checkpoint, model, q, args.device, repeats, 256) for q in quantizations]
    if args.json:
        print(json.dumps(rows, indent=2))
    else:
        _print_table(rows)


if __name__ == "__main__":
    main()
