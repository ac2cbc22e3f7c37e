"""`ros2-vla train` end to end on a LeRobot v3.0 folder: train, resume, and one-line errors."""

from __future__ import annotations

import json
import subprocess

import pytest
from flow_helpers import one_torch_thread  # noqa: F401
from helpers import cli
from training_helpers import tiny_dataset

from ros2_vla.data.lerobot_writer import write_frames
from ros2_vla.errors import PolicyError
from ros2_vla.policies.flow import FlowPolicy
from ros2_vla.training.cli import parse_overrides

FAST = (
    "--preset",
    "tiny",
    "--batch-size",
    "4",
    "--save-every",
    "3",
    "--log-every",
    "1",
    "--threads",
    "1",
    "--device",
    "cpu",
    "--no-progress",
)


@pytest.fixture(scope="module")
def lerobot_dir(tmp_path_factory):
    root = tmp_path_factory.mktemp("lerobot") / "franka_tiny"
    write_frames(tiny_dataset(size=(48, 64)), root)
    return root


def _train(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(cli("train", *args), capture_output=True, text=True, timeout=120)


def test_train_then_resume_through_the_cli(lerobot_dir, tmp_path):
    out = tmp_path / "model"
    first = _train(str(lerobot_dir), str(out), *FAST, "--steps", "4", "--val-episodes", "1")
    assert first.returncode == 0, first.stderr
    assert "ros2-vla launch franka --sim --policy flow --model" in first.stdout
    policy = FlowPolicy(out, num_threads=1)
    assert policy.spec.cameras == ("scene", "wrist") and policy.spec.image_size == (32, 32)
    more = _train(str(lerobot_dir), str(out), "--resume", "--steps", "6", "--no-progress", "--threads", "1")
    assert more.returncode == 0, more.stderr
    steps = [json.loads(line)["step"] for line in (out / "train_log.jsonl").read_text().splitlines()]
    assert [s for s in steps if s] == sorted(s for s in steps if s) and max(steps) == 6
    assert (out / "checkpoints" / "step_000006" / "training_state.pt").is_file()


@pytest.mark.parametrize(
    "args, message",
    [
        (("--resume",), "has no complete checkpoint"),
        (("--preset", "smal"), "did you mean 'small'"),
        (("--lora-rank", "8"), "--lora-rank: not an option of --policy flow"),
        (("--goal-weight", "-1"), "goal_weight must be >= 0"),
        (("--rephrase", "1.5"), "rephrase is a chance in [0, 1], got 1.5"),
    ],
)
def test_mistakes_print_one_line(lerobot_dir, tmp_path, args, message):
    run = _train(str(lerobot_dir), str(tmp_path / "model"), *args)
    assert run.returncode == 2
    assert message in run.stderr and len(run.stderr.strip().splitlines()) == 1, run.stderr


def test_overrides_are_json_values_or_text():
    assert parse_overrides(["horizon=16", "image_size=[64, 64]", "text_encoder=hash"]) == {
        "horizon": 16,
        "image_size": [64, 64],
        "text_encoder": "hash",
    }
    with pytest.raises(PolicyError, match="expected KEY=VALUE"):
        parse_overrides(["horizon"])
