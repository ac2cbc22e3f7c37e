"""Helpers for tests that talk real ROS 2 (rclpy over Fast DDS) to real node processes."""

from __future__ import annotations

import os
import random
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from ros2_vla.dds_env import set_localhost_only

ROOT = Path(__file__).resolve().parent.parent
POSITION_SLACK = 0.01  # [rad] the sim's physics may settle a joint this far past a limit the command respects

# Isolate every run: its own DDS domain, this host only. Set before rclpy starts, inherited by
# every process a test launches.
os.environ.setdefault("ROS_DOMAIN_ID", str(random.randint(10, 99)))
set_localhost_only(os.environ)


def wait_for(
    predicate: Callable[[], object],
    timeout: float,
    what: str,
    poll: float = 0.02,
    detail: Callable[[], str] | None = None,
):
    """Poll until predicate() is truthy; fail the test naming `what` (and `detail()`, when given) after
    `timeout` s."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(poll)
    pytest.fail(f"timed out after {timeout:.0f} s waiting for {what}" + (f"; {detail()}" if detail else ""))


def cli(*args: str) -> list[str]:
    """The ros2-vla command line, run with this interpreter (no PATH lookup needed)."""
    return [sys.executable, "-m", "ros2_vla.cli", *args]


@contextmanager
def launched(*args: str, timeout: float = 15.0) -> Iterator[subprocess.Popen]:
    """`ros2-vla launch ARGS` as a subprocess; SIGINT and reap on exit."""
    proc = subprocess.Popen(cli("launch", *args), cwd="/", stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        yield proc
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGINT)
            try:
                proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def child_pids(pid: int) -> list[int]:
    """Direct children of `pid` (from /proc)."""
    out = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            out.append(int(stat.parent.name))
    return out


def pid_alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def free_port() -> int:
    """A TCP port of 127.0.0.1 that nothing listens on now (for servers a test starts)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]
