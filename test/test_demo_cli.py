"""`ros2-vla demo`, the README's main job, as scripts/demo runs it: the real graph over DDS with the
policy shipped for the robot, a held-out scene, the video and the summary table; exit 0. A model that
fails to load is one line and exit 2."""

from __future__ import annotations

import json
import re
import subprocess

import imageio.v3 as iio
import pytest
from helpers import cli

from ros2_vla.config import load_robot_config
from ros2_vla.evaluation.seeds import HELD_OUT_SEED
from ros2_vla.evaluation.video import UPSCALE
from ros2_vla.policies.defaults import default_model_dir, has_default_model

pytest.importorskip("rclpy")


@pytest.mark.slow
@pytest.mark.skipif(not has_default_model("franka"), reason="no Franka default shipped")
def test_the_demo_runs_the_shipped_policy_to_its_summary_and_video(tmp_path):
    out = tmp_path / "demo"
    # A short episode: this checks the pipeline (success rates are ros2-vla eval's job)
    proc = subprocess.run(
        cli("demo", "--episodes", "1", "--timeout", "6", "--out", str(out)),
        cwd="/",
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert f"policy flow:{default_model_dir('franka')}, 1 episode(s) from seed {HELD_OUT_SEED}" in proc.stdout
    [episode] = json.loads((out / "summary.json").read_text())
    assert episode["seed"] == HELD_OUT_SEED and episode["instruction"]
    assert episode["chunks"] >= 10  # the bridge planned the policy's chunks for the whole episode
    assert 0.0 < episode["chunk_delay_ms"] < 1000.0  # each chunk is stamped with its observation, a moment before
    summary = (out / "summary.md").read_text()
    assert f"franka, policy flow:{default_model_dir('franka')}" in summary
    assert f"| 0 | {HELD_OUT_SEED} | {episode['instruction']} |" in summary
    assert f"| {episode['chunks']} | {episode['chunk_delay_ms']:.0f} |" in summary
    frames = iio.imread(out / "franka_demo.mp4", index=None)
    scene = next(c for c in load_robot_config("franka").cameras if c.mount == "world")
    assert frames.shape[1:] == (scene.height * UPSCALE, scene.width * UPSCALE, 3)  # drawn large for the captions
    # The film covers the episode: 6 s + 1 s of verdict, by the camera's stamps. How many frames fill it
    # depends on the machine's load (70 at the camera's 10 Hz; 34 in one CI run), so it is not counted here.
    filmed = re.search(r"\((\d+) frames, ([\d.]+) s from first to last\)", proc.stdout)
    assert filmed, proc.stdout
    assert int(filmed[1]) == frames.shape[0]  # every frame filmed is in the mp4
    assert float(filmed[2]) >= 6.0
    band = frames[10, -12:]  # the bottom caption: light text on the darkened table
    assert band[:, :4].max() < 110 and band.max() > 180, (band[:, :4].max(), band.max())
    assert (out / "franka_demo.gif").stat().st_size > 0


def test_a_model_that_fails_to_load_stops_the_demo_with_one_line(tmp_path):
    bad = tmp_path / "model"
    bad.mkdir()
    (bad / "config.json").write_text("{not json")
    out = tmp_path / "demo"
    proc = subprocess.run(
        cli("demo", "--episodes", "1", "--model", str(bad), "--out", str(out)),
        cwd="/",
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 2, proc.stdout + proc.stderr
    errors = [line for line in proc.stderr.splitlines() if line.startswith("ros2-vla:")]
    assert len(errors) == 1 and errors[0].startswith("ros2-vla: vla_node: model failed to load: "), proc.stderr
    assert f"{bad}/config.json is not readable JSON" in errors[0]
    assert "Traceback" not in proc.stderr and not out.exists()
