"""A sim graph whose node processes a fault test can kill, stop and restart one by one, and what it measures:
the sim's published joint states checked against the limits, the bridge's statuses, times to hold and recover.

Nodes are started one process each, as `ros2 run` would (the launcher would stop the whole graph when one
node dies, which is not what a crash looks like on a robot)."""

from __future__ import annotations

import os
import signal
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from helpers import POSITION_SLACK, wait_for

from ros2_vla.bringup import NodeSpec
from ros2_vla.config import RobotConfig
from ros2_vla.launcher import node_command, write_params_file

MOVING = 0.02  # [rad/s] a joint faster than this is moving
FAST = 0.15  # faults strike while some joint runs at this fraction of its speed limit or more
ROWS: list[dict] = []  # the fault table, one row per test (printed at the end of the session)


class Processes:
    """Node processes of one graph; each can be signalled or restarted with its parameters."""

    def __init__(self) -> None:
        self._dir = Path(tempfile.mkdtemp(prefix="faults_"))
        self.running: dict[str, subprocess.Popen] = {}

    def start(self, spec: NodeSpec) -> subprocess.Popen:
        """Start one node of the graph (its name, executable and parameters as the bringup describes it)."""
        folder = self._dir / f"{spec.name}_{len(list(self._dir.iterdir()))}"
        folder.mkdir()
        command = node_command(spec, write_params_file([spec], folder))
        proc = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
        self.running[spec.name] = proc
        return proc

    def signal(self, name: str, sig: signal.Signals) -> None:
        os.killpg(self.running[name].pid, sig)

    def kill(self, name: str) -> None:
        self.signal(name, signal.SIGKILL)
        self.running.pop(name).wait(timeout=10)

    def stop_all(self) -> None:
        for proc in self.running.values():
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGCONT)
                os.killpg(proc.pid, signal.SIGINT)
        for proc in self.running.values():
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
        self.running.clear()


@dataclass
class Sample:
    t: float  # [s] receipt time (monotonic)
    q: np.ndarray  # [rad] the arm's joints in chain order
    v: np.ndarray  # [rad/s] their speeds as the sim measures them (MuJoCo's joint velocities)


class Joints:
    """The sim's /joint_states for one arm: positions and the measured joint velocities it publishes."""

    def __init__(self, node, robot: RobotConfig, topic: str = "") -> None:
        """topic: where the sim publishes its joint states (the config's topic unless remapped)."""
        from sensor_msgs.msg import JointState

        self.arm = robot.arms[0]
        self.names = self.arm.chain.joint_names
        self.samples: list[Sample] = []
        node.create_subscription(JointState, topic or robot.joint_states_topic, self._on, 100)

    def _on(self, msg) -> None:
        index = {n: i for i, n in enumerate(msg.name)}
        if all(n in index for n in self.names) and len(msg.velocity) == len(msg.name):
            rows = [index[n] for n in self.names]
            self.samples.append(
                Sample(
                    time.monotonic(),
                    np.array([msg.position[i] for i in rows]),
                    np.array([msg.velocity[i] for i in rows]),
                )
            )

    def speeds(self, since: float = 0.0) -> tuple[np.ndarray, np.ndarray]:
        """(receipt times (N,), |joint velocities| [rad/s] (N, n)) of the states received after `since`."""
        kept = [s for s in list(self.samples) if s.t >= since]
        if not kept:
            return np.zeros(0), np.zeros((0, len(self.names)))
        return np.array([s.t for s in kept]), np.abs(np.array([s.v for s in kept]))

    def beyond_limits(self, skip: tuple[float, float] | None = None) -> list[str]:
        """Every joint position and speed limit the measured motion broke, and any NaN, leaving out the
        speeds in the `skip` window (monotonic; a sim reset puts the arm back home in one step)."""
        samples = list(self.samples)
        q = np.array([s.q for s in samples])
        lower = np.array([j.lower for j in self.arm.chain.joints]) - POSITION_SLACK
        upper = np.array([j.upper for j in self.arm.chain.joints]) + POSITION_SLACK
        broken = [
            f"{n} position" for i, n in enumerate(self.names) if q[:, i].min() < lower[i] or q[:, i].max() > upper[i]
        ]
        broken += [f"{n} NaN" for i, n in enumerate(self.names) if not np.isfinite(q[:, i]).all()]
        t = np.array([s.t for s in samples])
        keep = np.ones(t.size, dtype=bool) if skip is None else (t < skip[0]) | (t > skip[1])
        v = np.abs(np.array([s.v for s in samples]))[keep]
        limit = np.array([j.velocity for j in self.arm.chain.joints])
        broken += [
            f"{n} speed {v[:, i].max():.2f} rad/s (limit {limit[i]:.2f})"
            for i, n in enumerate(self.names)
            if v[:, i].max(initial=0.0) > limit[i]
        ]
        return broken

    def peak_speed(self, since: float = 0.0, until: float = float("inf"), skip=None) -> float:
        """The largest measured joint speed as a fraction of that joint's limit, between `since` and `until`
        (monotonic), leaving out the `skip` window (a sim reset's jump)."""
        t, v = self.speeds(since)
        keep = t <= until
        if skip is not None:
            keep &= (t < skip[0]) | (t > skip[1])
        limit = np.array([j.velocity for j in self.arm.chain.joints])
        return float((v[keep] / limit).max(initial=0.0))

    def moving(self, window: float = 0.2) -> bool:
        t, v = self.speeds(time.monotonic() - window)
        return bool(v.size) and float(v.max()) > MOVING

    def fast(self, fraction: float, window: float = 0.1) -> bool:
        """Some joint ran faster than `fraction` of its speed limit in the last `window` s."""
        t, v = self.speeds(time.monotonic() - window)
        limit = np.array([j.velocity for j in self.arm.chain.joints])
        return bool(v.size) and float((v / limit).max()) > fraction

    def wait_still(self, timeout: float, what: str) -> float:
        """Seconds until no joint moved for 0.2 s."""
        start = time.monotonic()
        wait_for(lambda: time.monotonic() - start > 0.25 and not self.moving(), timeout, what)
        return time.monotonic() - start - 0.2

    def wait_moving(self, timeout: float, what: str) -> float:
        start = time.monotonic()
        wait_for(self.moving, timeout, what)
        return time.monotonic() - start


def record(
    fault: str, beyond: list[str], hold: float | None, recover: float, status: str, speeds: tuple[float, float]
) -> None:
    """One row of the fault table; speeds: peak joint speed / limit before the fault and from it on."""
    ROWS.append(
        {
            "fault": fault,
            "beyond_limits": ", ".join(beyond) or "none",
            "peak_speed_before": round(speeds[0], 2),
            "peak_speed_after": round(speeds[1], 2),
            "hold_s": None if hold is None else round(hold, 2),
            "recover_s": round(recover, 2),
            "status": status,
        }
    )
