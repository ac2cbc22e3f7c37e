"""`ros2-vla serve` as a user runs it: the shipped Franka policy behind openpi's protocol in its own process,
answered to openpi's own WebsocketClientPolicy, stopped cleanly by Ctrl-C; bad input is one line."""

from __future__ import annotations

import signal
import subprocess
import urllib.request

import numpy as np
import pytest
from helpers import cli, free_port, wait_for

from ros2_vla.config import load_robot_config

pytestmark = pytest.mark.slow


def _healthy(port: int) -> bool:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=1) as reply:
            return reply.status == 200
    except OSError:
        return False


@pytest.mark.parametrize("stop", [signal.SIGINT, signal.SIGTERM])
def test_serve_answers_openpis_client_and_stops_on_ctrl_c_or_kill(stop):
    from openpi_client.websocket_client_policy import WebsocketClientPolicy

    port = free_port()
    proc = subprocess.Popen(
        cli("serve", "franka", "--policy", "flow", "--device", "cpu", "--host", "127.0.0.1", "--port", str(port)),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        wait_for(lambda: _healthy(port) or proc.poll() is not None, 60, "ros2-vla serve to answer /healthz")
        assert proc.poll() is None, proc.stdout.read()
        client = WebsocketClientPolicy("127.0.0.1", port)
        meta = client.get_server_metadata()
        robot = load_robot_config("franka")
        assert meta["embodiment"] == "franka" and meta["policy"].startswith("flow:")
        assert meta["dimension_names"] == list(robot.action.dimension_names) and meta["cameras"] == ["scene", "wrist"]
        rng = np.random.default_rng(0)
        obs = {
            "images": {c: rng.integers(0, 256, (224, 224, 3), dtype=np.uint8) for c in meta["cameras"]},
            "state": np.r_[robot.arms[0].chain.home, 0.04].astype(np.float32),
            "prompt": "pick up the red cube",
        }
        reply = client.infer(obs)
        assert reply["actions"].shape == (meta["horizon"], 7) and np.all(np.isfinite(reply["actions"]))
        assert reply["server_timing"]["infer_ms"] > 0
        client._ws.close()
    finally:
        proc.send_signal(stop)
        out, _ = proc.communicate(timeout=30)
    assert proc.returncode == 0, out
    assert "stopped after 1 request(s)" in out and "Traceback" not in out


@pytest.mark.parametrize(
    "args, message",
    [
        (("franka", "--policy", "flwo"), "Did you mean 'flow'"),
        (("franka", "--policy", "flow", "--model", "/nonexistent"), "does not exist"),
        (("frank",), "frank"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(args, message):
    proc = subprocess.run(cli("serve", *args, "--port", str(free_port())), capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert message in proc.stderr and len(proc.stderr.strip().splitlines()) == 1
