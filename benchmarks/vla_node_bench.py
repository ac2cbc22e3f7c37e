"""How fast each policy backend infers, and what vla_node itself adds on top of the model, over real DDS.

    python benchmarks/vla_node_bench.py [--backends flow-tiny flow-small openvla-fp32 openvla-4bit]
                                        [--repeats 50] [--seconds 30] [--no-node] [--json]

Run it in the project env (`source scripts/env.sh`). Models have random weights, built from config into a
temp folder: flow `tiny` and `small` presets (config_for_robot, franka), and the OpenVLA test checkpoint
(the published layout: full-size vision backbone, tiny Llama) in fp32 and 4-bit NF4 (bitsandbytes on the
CPU); it takes seconds a chunk here, so the node-overhead definition below does not hold for it.

In process: `load_policy` (the node's own loading path), then `infer` on observations of two 224x224 RGB
cameras; latency p50/p99 over --repeats calls after 3 warm-up calls, Hz = 1 / mean latency.

Node overhead: vla_node runs as its own process with the same model (as the launcher starts it). This
process publishes two 224x224 rgb8 Images (scene, then wrist) and a JointState at 10 Hz, every header
stamped with the send time, and records when each ActionChunk arrives. Per chunk,
    overhead = (receipt time - chunk header stamp) - chunk.inference_time,
i.e. everything between "the camera frame is taken" and "the chunk is in the subscriber's hands" that is not
the model: the wrist publish after the scene one, image DDS transport and deserialization into Python,
vla_node's callbacks (decode, buffer), the policy thread waking up and assembling the observation, building
and publishing the ActionChunk, its DDS transport and deserialization here. The goal is p99 <= 5 ms.
`chunks/tick` is the share of 10 Hz ticks that got a chunk (1.0: the node keeps up with the cameras).
The definition assumes the model is faster than the frames (the flow presets are): with a slower one, a
frame's wait for the previous inference to end would count as overhead too.

Where the time went (timing probes around vla_node's callbacks, 2-core machine, p50): stamp -> scene
callback 1.0 ms (publish calls, DDS, rclpy), wrist callback +0.4 ms, decode 0.02 ms, policy thread awake
and observation assembled 0.4 ms later (the executor thread holds the GIL until it blocks again),
chunk_to_msg 0.09 ms, publish 0.25 ms, chunk DDS to this process 0.65 ms. Two fixes came from it: torch on
one core fewer than the machine has for OpenVLA too (OpenMP workers spinning after each step delayed the
chunk by up to 4 ms: p99 7.3 -> ~4.5 ms), and no copies of the frame between rclpy and the buffer.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

from ros2_vla.config import load_robot_config
from ros2_vla.dds_env import set_localhost_only
from ros2_vla.policies.base import Observation
from ros2_vla.policies.registry import LoadOptions, load_policy

ROBOT = "franka"
FEED_HZ = 10.0  # [Hz] camera frames and joint states
CAMERA_SIZE = (224, 224)  # (height, width) [px]
WARMUP = 3
INSTRUCTION = "pick up the red cube and put it in the bowl"
# backend label -> (vla_node `policy`, model kind, vla_node `quantization`)
BACKENDS = {
    "flow-tiny": ("flow", "flow-tiny", ""),
    "flow-small": ("flow", "flow-small", ""),
    "openvla-fp32": ("openvla", "openvla-test", "fp32"),
    "openvla-4bit": ("openvla", "openvla-test", "4bit"),
}


# --- models ----------------------------------------------------------------------------------------
def build_model(kind: str, folder: Path, robot) -> Path:
    """A random-weight checkpoint of `kind` in `folder/kind` (built once per run)."""
    path = folder / kind
    if path.exists():
        return path
    if kind.startswith("flow-"):
        import torch

        from ros2_vla.policies.flow import FlowModel, config_for_robot, identity_norm_stats, save_checkpoint

        config = config_for_robot(kind.removeprefix("flow-"), robot)
        torch.manual_seed(0)
        return save_checkpoint(
            path, FlowModel(config), config, identity_norm_stats(config.action_dim, config.state_dim)
        )
    from ros2_vla.policies.openvla.random_checkpoint import build_test_checkpoint

    return build_test_checkpoint(path)


# --- in process ------------------------------------------------------------------------------------
def bench_infer(robot, policy_name: str, model: Path, quantization: str, repeats: int) -> dict:
    policy = load_policy(policy_name, robot, LoadOptions(model=str(model), device="cpu", quantization=quantization))
    rng = np.random.default_rng(0)
    state_dim = len(robot.joint_names) + sum(a.gripper is not None for a in robot.arms)
    obs = [
        Observation(
            stamp=float(i),
            images={c.name: rng.integers(0, 256, (*CAMERA_SIZE, 3), dtype=np.uint8) for c in robot.cameras},
            state=rng.normal(size=state_dim).astype(np.float32),
            instruction=INSTRUCTION,
        )
        for i in range(8)
    ]
    ms = []
    for i in range(WARMUP + repeats):
        t0 = time.perf_counter()
        policy.infer(obs[i % len(obs)])
        if i >= WARMUP:
            ms.append(1e3 * (time.perf_counter() - t0))
    return {
        "infer_p50_ms": float(np.percentile(ms, 50)),
        "infer_p99_ms": float(np.percentile(ms, 99)),
        "infer_hz": float(1e3 / np.mean(ms)),
    }


# --- over DDS --------------------------------------------------------------------------------------
class Feeder:
    """Publishes the cameras and joint states at FEED_HZ (stamps = send time); records chunk receipts."""

    def __init__(self, node, robot) -> None:
        from rclpy.qos import qos_profile_sensor_data
        from sensor_msgs.msg import Image, JointState

        from ros2_vla.bringup import NAMES
        from ros2_vla.msg import ActionChunk
        from ros2_vla.ros.qos import COMMAND

        self.node = node
        h, w = CAMERA_SIZE
        pixels = np.random.default_rng(0).integers(0, 256, (h, w, 3), dtype=np.uint8).tobytes()
        # one message per camera, built once: the publisher's own cost is the publish call, as for a driver
        self.frames = [
            (
                node.create_publisher(Image, c.topic, qos_profile_sensor_data),
                Image(height=h, width=w, encoding="rgb8", step=3 * w, data=pixels),
            )
            for c in robot.cameras
        ]
        names = list(robot.joint_names) + [a.gripper.joint for a in robot.arms if a.gripper]
        self.joint_state = JointState(name=names, position=[0.0] * len(names))
        self.joints = node.create_publisher(JointState, robot.joint_states_topic, qos_profile_sensor_data)
        self.received: list[tuple[float, float, float]] = []  # (receipt [s], header stamp [s], inference_time [s])
        self.ticks = 0
        node.create_subscription(ActionChunk, NAMES.action_chunk, self._on_chunk, COMMAND)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _on_chunk(self, msg) -> None:
        receipt = self.node.get_clock().now().nanoseconds * 1e-9
        stamp = msg.header.stamp.sec + msg.header.stamp.nanosec * 1e-9
        self.received.append((receipt, stamp, msg.inference_time))

    def _run(self) -> None:
        next_tick = time.monotonic()
        while not self._stop.is_set():
            stamp = self.node.get_clock().now().to_msg()
            for pub, msg in self.frames:
                msg.header.stamp = stamp
                pub.publish(msg)
            self.joint_state.header.stamp = stamp
            self.joints.publish(self.joint_state)
            self.ticks += 1
            next_tick += 1.0 / FEED_HZ
            self._stop.wait(max(0.0, next_tick - time.monotonic()))

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=2)


def bench_node(robot, policy_name: str, model: Path, quantization: str, seconds: float, folder: Path) -> dict:
    """vla_node as a process, fed over DDS for `seconds` after its first chunk: overhead p50/p99 [ms]."""
    import rclpy

    from ros2_vla.bringup import NodeSpec
    from ros2_vla.launcher import node_command, write_params_file
    from ros2_vla.ros.spin import spinning

    spec = NodeSpec(
        "vla",
        "vla_node",
        {
            "robot": robot.name,
            "policy": policy_name,
            "model": str(model),
            "quantization": quantization,
            "device": "cpu",
            "instruction": INSTRUCTION,
        },
    )
    log = open(folder / f"vla_node_{policy_name}_{quantization or 'default'}.log", "w")
    proc = subprocess.Popen(
        node_command(spec, write_params_file([spec], folder)), cwd="/", stdout=log, stderr=subprocess.STDOUT
    )
    node = rclpy.create_node("vla_node_bench")
    feeder = Feeder(node, robot)
    try:
        with spinning(node, 0.05):
            feeder.start()
            try:
                deadline = time.monotonic() + 120
                while not feeder.received and time.monotonic() < deadline and proc.poll() is None:
                    time.sleep(0.05)
                if not feeder.received:
                    raise RuntimeError(f"vla_node sent no chunk; see {log.name}")
                time.sleep(1.0)  # warm-up: first chunks pay for lazy initialisation
                first, ticks0 = len(feeder.received), feeder.ticks
                time.sleep(seconds)
                samples, ticks = feeder.received[first:], feeder.ticks - ticks0
            finally:
                feeder.stop()
    finally:
        node.destroy_node()
        proc.send_signal(2)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()
    arr = np.array(samples)
    overhead_ms = 1e3 * (arr[:, 0] - arr[:, 1] - arr[:, 2])
    return {
        "node_overhead_p50_ms": float(np.percentile(overhead_ms, 50)),
        "node_overhead_p99_ms": float(np.percentile(overhead_ms, 99)),
        "node_overhead_max_ms": float(np.max(overhead_ms)),
        "node_inference_p50_ms": float(1e3 * np.median(arr[:, 2])),
        "node_chunks": len(samples),
        "chunks_per_tick": len(samples) / max(ticks, 1),
    }


# --- report ----------------------------------------------------------------------------------------
def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--backends", nargs="+", default=list(BACKENDS), choices=list(BACKENDS))
    parser.add_argument("--repeats", type=int, default=50, help="in-process infer calls per backend")
    parser.add_argument("--seconds", type=float, default=30.0, help="[s] of feeding vla_node per backend")
    parser.add_argument("--no-node", action="store_true", help="in-process latency only (no ROS needed)")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    set_localhost_only(os.environ)
    robot = load_robot_config(ROBOT)
    rows = []
    with tempfile.TemporaryDirectory(prefix="vla_node_bench_") as tmp:
        folder = Path(tmp)
        if not args.no_node:
            import rclpy

            rclpy.init()
        try:
            for label in args.backends:
                policy_name, kind, quantization = BACKENDS[label]
                model = build_model(kind, folder, robot)
                row = {"backend": label, **bench_infer(robot, policy_name, model, quantization, args.repeats)}
                if not args.no_node:
                    row.update(bench_node(robot, policy_name, model, quantization, args.seconds, folder))
                rows.append(row)
        finally:
            if not args.no_node:
                rclpy.try_shutdown()
    if args.json:
        print(json.dumps(rows, indent=2))
        return
    print(
        f"{'backend':13} {'infer p50':>9} {'p99':>7} {'Hz':>6} | {'node overhead p50':>17} {'p99':>6} {'max':>6} "
        f"{'chunks':>6} {'chunks/tick':>11}   [ms]"
    )
    for r in rows:
        node = (
            (
                f"{r['node_overhead_p50_ms']:17.2f} {r['node_overhead_p99_ms']:6.2f} {r['node_overhead_max_ms']:6.2f} "
                f"{r['node_chunks']:6d} {r['chunks_per_tick']:11.2f}"
            )
            if "node_chunks" in r
            else f"{'-':>17}"
        )
        print(f"{r['backend']:13} {r['infer_p50_ms']:9.2f} {r['infer_p99_ms']:7.2f} {r['infer_hz']:6.1f} | {node}")


if __name__ == "__main__":
    main()
