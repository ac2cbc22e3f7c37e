"""What the openpi protocol costs, and how `ros2-vla serve` shares itself between robots.

    python benchmarks/openpi_bench.py [--requests 200] [--clients 1 2 4] [--json]

1. Round-trip overhead: a server on 127.0.0.1 whose `infer` returns a fixed (50, 7) chunk at once, and the
   package's client sending DROID-sized observations (2 x 224x224x3 uint8 images, a state, a prompt).
   Overhead = round trip - the server's `infer_ms`: packing, WebSocket, unpacking on both ends. Measured
   in the same run for openpi's own WebsocketClientPolicy as the baseline (ratio ours / openpi's).
2. Several clients: the server runs a model that takes `--model-ms` (a sleep, so the figure does not depend
   on this machine's load) and 1, 2, 4 clients send requests back to back. Per client: requests/s and
   latency p50/p99; overall: the server's throughput and the clients' fairness (fewest / most requests
   served to one client). With one model on one worker, N clients share the model's rate.
"""

from __future__ import annotations

import argparse
import json
import threading
import time

import numpy as np

from ros2_vla.serving.client import OpenpiClient
from ros2_vla.serving.server import PolicyServer

CHUNK = np.zeros((50, 7), np.float32)


def _obs(rng: np.random.Generator) -> dict:
    return {
        "observation/exterior_image_1_left": rng.integers(0, 256, (224, 224, 3), dtype=np.uint8),
        "observation/wrist_image_left": rng.integers(0, 256, (224, 224, 3), dtype=np.uint8),
        "observation/joint_position": rng.normal(size=7).astype(np.float32),
        "observation/gripper_position": np.zeros(1, np.float32),
        "prompt": "pick up the red cube",
    }


def _stats(ms: list[float]) -> dict:
    a = np.asarray(ms)
    return {"p50_ms": float(np.percentile(a, 50)), "p99_ms": float(np.percentile(a, 99)), "n": int(a.size)}


def round_trip(requests: int) -> dict:
    from openpi_client.websocket_client_policy import WebsocketClientPolicy

    server = PolicyServer(
        lambda obs: {"actions": CHUNK}, {"policy": "bench"}, host="127.0.0.1", port=0, log=lambda line: None
    ).start()
    rng = np.random.default_rng(0)
    obs = _obs(rng)
    ours, theirs = OpenpiClient("127.0.0.1", server.port, timeout=10), WebsocketClientPolicy("127.0.0.1", server.port)
    rows = {}
    for name, call in (("ros2_vla OpenpiClient", ours.infer), ("openpi WebsocketClientPolicy", theirs.infer)):
        for _ in range(10):  # warm-up
            call(obs)
        overhead = []
        for _ in range(requests):
            t0 = time.perf_counter()
            reply = call(obs)
            overhead.append(1e3 * (time.perf_counter() - t0) - reply["server_timing"]["infer_ms"])
        rows[name] = _stats(overhead)
    server.stop()
    return rows


def shared(clients: int, seconds: float, model_ms: float) -> dict:
    def infer(obs: dict) -> dict:
        time.sleep(model_ms / 1e3)
        return {"actions": CHUNK}

    server = PolicyServer(infer, {"policy": "bench"}, host="127.0.0.1", port=0, log=lambda line: None).start()
    latencies: list[list[float]] = [[] for _ in range(clients)]
    stop = time.monotonic() + seconds

    def run(i: int) -> None:
        client = OpenpiClient("127.0.0.1", server.port, timeout=30)
        obs = _obs(np.random.default_rng(i))
        while time.monotonic() < stop:
            t0 = time.perf_counter()
            client.infer(obs)
            latencies[i].append(1e3 * (time.perf_counter() - t0))

    threads = [threading.Thread(target=run, args=(i,)) for i in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    server.stop()
    counts = [len(x) for x in latencies]
    every = [ms for x in latencies for ms in x]
    return {
        "clients": clients,
        "model_ms": model_ms,
        "server_hz": sum(counts) / seconds,
        "per_client_hz": sum(counts) / seconds / clients,
        **_stats(every),
        "fewest": min(counts),
        "most": max(counts),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=200, help="round trips per client kind")
    parser.add_argument("--clients", type=int, nargs="+", default=[1, 2, 4])
    parser.add_argument("--seconds", type=float, default=5.0, help="per client count")
    parser.add_argument("--model-ms", type=float, default=20.0, help="the served model's time per request")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    rt = round_trip(args.requests)
    rows = [shared(n, args.seconds, args.model_ms) for n in args.clients]
    if args.json:
        print(json.dumps({"round_trip_overhead": rt, "shared": rows}, indent=2))
        return
    print("Round-trip overhead (round trip - server infer_ms), 2 x 224x224x3 images + state + prompt, (50, 7) reply")
    print(f"{'client':<30} {'p50 ms':>8} {'p99 ms':>8}")
    for name, r in rt.items():
        print(f"{name:<30} {r['p50_ms']:>8.2f} {r['p99_ms']:>8.2f}")
    ours, theirs = rt["ros2_vla OpenpiClient"], rt["openpi WebsocketClientPolicy"]
    print(
        f"ratio ours/openpi's: p50 {ours['p50_ms'] / theirs['p50_ms']:.2f}, p99 {ours['p99_ms'] / theirs['p99_ms']:.2f}"
    )
    print(f"\nOne server, a {args.model_ms:g} ms model, N clients back to back for {args.seconds:g} s each")
    print(f"{'clients':>7} {'server Hz':>10} {'Hz/client':>10} {'p50 ms':>8} {'p99 ms':>8} {'fewest':>7} {'most':>6}")
    for r in rows:
        print(
            f"{r['clients']:>7} {r['server_hz']:>10.1f} {r['per_client_hz']:>10.1f} {r['p50_ms']:>8.1f} "
            f"{r['p99_ms']:>8.1f} {r['fewest']:>7} {r['most']:>6}"
        )


if __name__ == "__main__":
    main()
