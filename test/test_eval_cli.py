"""`ros2-vla eval` as a user runs it: exit 0 with the rates printed, one line and exit 2 on bad input."""

from __future__ import annotations

import json
import subprocess

import pytest
from helpers import cli


def run(*args: str, timeout: float = 120.0) -> subprocess.CompletedProcess:
    return subprocess.run(cli("eval", *args), capture_output=True, text=True, timeout=timeout)


def test_expert_episodes_print_the_rate_and_write_the_files(tmp_path):
    proc = run("franka", "--policy", "expert", "--episodes", "2", "--out", str(tmp_path), "--video-episodes", "1")
    assert proc.returncode == 0, proc.stderr
    assert "episode 1/2 seed 100000" in proc.stdout and "episode 2/2 seed 100001" in proc.stdout
    assert "**Success: 2/2 = 100%** (95% Wilson interval 34% to 100%)" in proc.stdout
    assert "| task | colors | episodes | success | rate | wrong object |" in proc.stdout
    results = json.loads((tmp_path / "results.json").read_text())
    assert results["robot"] == "franka" and results["policy"] == "scripted_expert" and results["successes"] == 2
    assert {p.name for p in tmp_path.iterdir()} == {"results.json", "summary.md", "episodes.mp4", "episodes.gif"}


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ("franka", "--policy", "flow", "--model", "/nonexistent/model"),
            "model folder /nonexistent/model does not exist",
        ),
        (("franka", "--policy", "openvla"), "--policy openvla needs --model"),
        (("aloha", "--policy", "flow"), "no default policy is shipped for 'aloha'"),
        (
            ("franka", "--policy", "expert", "--kind", "bimanual_pick"),
            "task kind 'bimanual_pick' is not one franka does",
        ),
        (("franka", "--policy", "expert", "--episodes", "0"), "episodes must be >= 1"),
        (("franka", "--policy", "expert", "--chunk-delay", "-0.1"), "chunk_delay must be finite and >= 0"),
        (("frank", "--policy", "expert"), "frank"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(tmp_path, args, message):
    proc = run(*args, "--out", str(tmp_path / "out"))
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert message in proc.stderr and len(proc.stderr.strip().splitlines()) == 1 and "Traceback" not in proc.stderr
    assert not (tmp_path / "out").exists()


def test_a_checkpoint_for_another_robot_is_one_line(tmp_path):
    from flow_helpers import random_model

    from ros2_vla.config import load_robot_config
    from ros2_vla.policies.flow import config_for_robot, identity_norm_stats, save_checkpoint

    model = random_model(config_for_robot("tiny", load_robot_config("widowx")))
    save_checkpoint(tmp_path, model, model.config, identity_norm_stats(model.config.action_dim, model.config.state_dim))
    proc = run("franka", "--policy", "flow", "--model", str(tmp_path), "--device", "cpu")
    assert proc.returncode == 2 and len(proc.stderr.strip().splitlines()) == 1
    assert "robot 'franka' has 8" in proc.stderr
