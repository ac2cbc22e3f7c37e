"""Run a node graph from the bringup as processes, where ROS's `launch` is not installed.

Each node runs as its own process (as `ros2 launch` does), in its own session so that a
terminal's Ctrl-C reaches the launcher only; the launcher forwards SIGINT, waits, and escalates
to SIGTERM and SIGKILL. Children also get SIGTERM if the launcher itself dies (Linux
PR_SET_PDEATHSIG), so no node outlives it.
"""

from __future__ import annotations

import ctypes
import os
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import yaml

from ros2_vla.bringup import NodeSpec

PACKAGE = "ros2_vla"


def node_command(spec: NodeSpec, params_file: Path) -> list[str]:
    """The command line of one node: its installed entry script, or the module."""
    argv = _entry_point(spec.executable)
    argv += ["--ros-args", "-r", f"__node:={spec.name}", "--params-file", str(params_file)]
    if spec.enclave:
        argv += ["--enclave", spec.enclave]
    for src, dst in spec.remappings:
        argv += ["-r", f"{src}:={dst}"]
    return argv


def _entry_point(executable: str) -> list[str]:
    # The installed script (lib/ros2_vla/<node>) is what `ros2 run` uses; running it keeps a
    # source checkout in the working directory from shadowing the install space.
    try:
        from ament_index_python.packages import get_package_prefix

        script = Path(get_package_prefix(PACKAGE)) / "lib" / PACKAGE / executable
        if script.is_file():
            return [sys.executable, str(script)]
    except Exception:  # no ament index (a plain pip install): fall back to the module
        pass
    return [sys.executable, "-m", f"{PACKAGE}.nodes.{executable}"]


def write_params_file(specs: list[NodeSpec], directory: Path) -> Path:
    """One ROS parameters YAML for the whole graph, keyed by node name."""
    path = directory / "params.yaml"
    path.write_text(yaml.safe_dump({s.name: {"ros__parameters": s.parameters} for s in specs}, sort_keys=False))
    return path


def _die_with_parent() -> None:
    libc = ctypes.CDLL("libc.so.6", use_errno=True)
    libc.prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


@dataclass
class Running:
    """A node the launcher started: its spec and its process."""

    spec: NodeSpec
    process: subprocess.Popen


class Launcher:
    """Starts the nodes of a graph, watches them, and stops them all."""

    def __init__(self, specs: list[NodeSpec], shutdown_timeout: float = 5.0) -> None:
        self.specs = specs
        self.shutdown_timeout = shutdown_timeout
        self.running: list[Running] = []
        self._tmp = tempfile.TemporaryDirectory(prefix="ros2_vla_launch_")

    def start(self) -> None:
        params = write_params_file(self.specs, Path(self._tmp.name))
        for spec in self.specs:
            cmd = node_command(spec, params)
            env = {**os.environ, **dict(spec.env)} if spec.env else None
            proc = subprocess.Popen(cmd, start_new_session=True, preexec_fn=_die_with_parent, env=env)
            self.running.append(Running(spec, proc))
            _log(f"started {spec.name} ({spec.executable}) pid {proc.pid}")

    def wait(self, should_stop) -> int:
        """Poll until `should_stop()` or a node exits; returns that node's code (0 if stopped)."""
        while not should_stop():
            for r in self.running:
                code = r.process.poll()
                if code is not None:
                    _log(f"{r.spec.name} exited with code {code}: stopping the graph")
                    return code if code != 0 else 1
            time.sleep(0.1)
        return 0

    def shutdown(self) -> None:
        """SIGINT every node, then SIGTERM, then SIGKILL whatever is left; reap them all."""
        for sig, grace in ((signal.SIGINT, self.shutdown_timeout), (signal.SIGTERM, 2.0), (signal.SIGKILL, 2.0)):
            alive = [r for r in self.running if r.process.poll() is None]
            if not alive:
                break
            for r in alive:
                try:
                    os.killpg(r.process.pid, sig)
                except ProcessLookupError:
                    pass
            deadline = time.monotonic() + grace
            while time.monotonic() < deadline and any(r.process.poll() is None for r in alive):
                time.sleep(0.05)
            if sig != signal.SIGINT:
                _log(f"sent {signal.Signals(sig).name} to {[r.spec.name for r in alive]}")
        for r in self.running:
            r.process.wait()
        self._tmp.cleanup()


def run(specs: list[NodeSpec]) -> int:
    """Start the graph, return when SIGINT/SIGTERM arrives or a node dies; never leave orphans."""
    stop = {"flag": False}

    def on_signal(signum, _frame) -> None:
        stop["flag"] = True

    old = {s: signal.signal(s, on_signal) for s in (signal.SIGINT, signal.SIGTERM)}
    launcher = Launcher(specs)
    try:
        launcher.start()
        code = launcher.wait(lambda: stop["flag"])
    finally:
        launcher.shutdown()
        for s, h in old.items():
            signal.signal(s, h)
    _log("all nodes stopped")
    return code


def _log(text: str) -> None:
    print(f"[ros2-vla launch] {text}", file=sys.stderr, flush=True)
