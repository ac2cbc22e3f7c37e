"""The latency budget of a running graph, stage by stage, from what a listener sees (no ROS here).

A listener (`ros2-vla latency`) records, with its own clock: every camera frame (stamp, receipt), every
ActionChunk (stamp = its observation's capture time, receipt, the model's own inference_time) and every
JointTrajectory the bridge sends (receipt). Per chunk the stages are:

- capture -> receipt, per camera: from a frame's stamp to its arrival (exposure/render, encoding, DDS);
- waiting for the other cameras: from the first to the last frame of the chunk's set arriving;
- queueing before inference (with the chunk's own transport): what is left of the chunk's delay;
- inference: the model's time, as vla_node reports it in the chunk;
- bridge planning -> first point out: from the chunk's arrival to the next trajectory leaving the
  bridge (its planning, and the trajectory's transport).
The chunk's set is the frames with its stamp (the oldest of the set) and, for the other cameras, the first
frame at or after it within `slop`. On one host every clock is the same; across hosts they must be
synchronized (chrony/PTP) or the transport stages absorb the offset.
"""

from __future__ import annotations

import bisect
from collections import defaultdict
from dataclasses import dataclass, field

import numpy as np

from ros2_vla.policies.observation import DEFAULT_SYNC_SLOP

STAGES = (
    "capture -> receipt (slowest camera)",
    "waiting for the other cameras",
    "queueing before inference",
    "inference",
    "bridge planning -> first point out",
)


@dataclass
class LatencyLog:
    """What the listener saw; times [s] on one clock."""

    frames: dict[str, list[tuple[float, float]]] = field(default_factory=lambda: defaultdict(list))  # (stamp, receipt)
    chunks: list[tuple[float, float, float]] = field(default_factory=list)  # (stamp, receipt, inference_time)
    trajectories: list[float] = field(default_factory=list)  # receipt

    def add_frame(self, camera: str, stamp: float, receipt: float) -> None:
        self.frames[camera].append((stamp, receipt))

    def add_chunk(self, stamp: float, receipt: float, inference_time: float) -> None:
        self.chunks.append((stamp, receipt, inference_time))

    def add_trajectory(self, receipt: float) -> None:
        self.trajectories.append(receipt)


@dataclass(frozen=True)
class ChunkLatency:
    """The stages [s] of one chunk."""

    camera: dict[str, float]  # capture -> receipt per camera
    waiting: float
    queueing: float
    inference: float
    bridge: float  # nan when no trajectory followed
    chunk_delay: float  # capture -> chunk receipt
    total: float  # capture -> first trajectory point out (nan when none)

    def stages(self) -> tuple[float, ...]:
        return (max(self.camera.values()), self.waiting, self.queueing, self.inference, self.bridge)


def chunk_latencies(log: LatencyLog, slop: float = DEFAULT_SYNC_SLOP) -> list[ChunkLatency]:
    """One ChunkLatency per chunk whose frames were all seen (chunks from frames before the listener
    started are left out)."""
    frames = {c: sorted(v) for c, v in log.frames.items()}
    stamps = {c: [s for s, _ in v] for c, v in frames.items()}
    trajectories = sorted(log.trajectories)
    out = []
    for stamp, receipt, inference in log.chunks:
        chosen = {}
        for camera, v in frames.items():
            i = bisect.bisect_left(stamps[camera], stamp - 1e-9)
            if i < len(v) and v[i][0] - stamp <= slop + 1e-9:
                chosen[camera] = v[i]
        if len(chosen) != len(frames) or not chosen:
            continue
        arrivals = [r for _, r in chosen.values()]
        ready = max(arrivals)
        j = bisect.bisect_left(trajectories, receipt)
        first_out = trajectories[j] if j < len(trajectories) else float("nan")
        out.append(
            ChunkLatency(
                camera={c: r - s for c, (s, r) in chosen.items()},
                waiting=ready - min(arrivals),
                queueing=max(0.0, receipt - inference - ready),
                inference=inference,
                bridge=first_out - receipt,
                chunk_delay=receipt - stamp,
                total=first_out - stamp,
            )
        )
    return out


def summary(rows: list[ChunkLatency]) -> dict:
    """p50 / p95 [ms] of each stage, per camera, of the chunk delay and of the total; and the ratio of the
    chunk delay to the model's own time (p50 / p50)."""
    if not rows:
        return {"chunks": 0}

    def q(values: list[float]) -> dict[str, float]:
        return {
            "p50_ms": 1e3 * float(np.nanpercentile(values, 50)),
            "p95_ms": 1e3 * float(np.nanpercentile(values, 95)),
        }

    out = {
        "chunks": len(rows),
        "cameras": {c: q([r.camera[c] for r in rows]) for c in rows[0].camera},
        "stages": {name: q([r.stages()[i] for r in rows]) for i, name in enumerate(STAGES)},
        "chunk_delay": q([r.chunk_delay for r in rows]),
        "first_point_out": q([r.total for r in rows]),
    }
    out["chunk_delay_over_inference"] = out["chunk_delay"]["p50_ms"] / max(out["stages"]["inference"]["p50_ms"], 1e-9)
    return out


def table(s: dict) -> str:
    """The summary as a Markdown table."""
    if not s.get("chunks"):
        return "no chunk seen with all its frames: is the graph running, and a policy sending chunks?"
    lines = ["| stage | p50 [ms] | p95 [ms] |", "|---|---|---|"]
    for camera, v in s["cameras"].items():
        lines.append(f"| capture -> receipt: {camera} | {v['p50_ms']:.1f} | {v['p95_ms']:.1f} |")
    for name, v in s["stages"].items():
        lines.append(f"| {name} | {v['p50_ms']:.1f} | {v['p95_ms']:.1f} |")
    lines.append(
        f"| **chunk delay** (capture -> chunk out of vla_node) | {s['chunk_delay']['p50_ms']:.1f} | "
        f"{s['chunk_delay']['p95_ms']:.1f} |"
    )
    lines.append(
        f"| **capture -> first trajectory point out** | {s['first_point_out']['p50_ms']:.1f} | "
        f"{s['first_point_out']['p95_ms']:.1f} |"
    )
    lines.append(f"\n{s['chunks']} chunks; chunk delay / inference (p50): {s['chunk_delay_over_inference']:.2f}")
    return "\n".join(lines)


def plot(s: dict, path: str, title: str = "") -> None:
    """The p50 stages as one stacked bar (and the p95s beside it), saved as a PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(9, 2.8))
    colors = plt.get_cmap("tab10").colors
    for row, key in enumerate(("p50_ms", "p95_ms")):
        left = 0.0
        for i, name in enumerate(STAGES):
            width = s["stages"][name][key]
            ax.barh(row, width, left=left, color=colors[i], label=name if row == 0 else None)
            left += width
    ax.set_yticks([0, 1], ["p50", "p95"])
    ax.invert_yaxis()
    ax.set_xlabel("ms from capture")
    ax.set_title(
        title
        or f"latency budget: chunk delay p50 {s['chunk_delay']['p50_ms']:.0f} ms, "
        f"{s['chunk_delay_over_inference']:.2f} x inference"
    )
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.3), ncol=3, fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
