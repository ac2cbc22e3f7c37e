"""Issue 6's whole path through the CLI, as a user runs it: the sim's expert demonstrates
(`record`), the bags become a LeRobot dataset (`convert`), a tiny flow policy trains on it
(`train`), and the sim scores it on held-out seeds (`eval`)."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import numpy as np
import pytest
from helpers import cli

pytest.importorskip("rclpy")

from ros2_vla.data.bag_writer import EPISODE_PREFIX  # noqa: E402
from ros2_vla.data.episode import read_episode_meta  # noqa: E402
from ros2_vla.data.lerobot_reader import load_lerobot_dataset, read_extras  # noqa: E402
from ros2_vla.policies.flow.checkpoint import read_config  # noqa: E402


def run(*args: str, timeout: float = 300) -> subprocess.CompletedProcess:
    result = subprocess.run(cli(*args), cwd="/", capture_output=True, text=True, timeout=timeout)
    assert result.returncode == 0, f"ros2-vla {' '.join(args)}:\n{result.stdout}\n{result.stderr}"
    return result


@pytest.mark.slow
def test_record_convert_train_eval_through_the_cli(tmp_path):
    bags, dataset, model, evals = (tmp_path / name for name in ("bags", "dataset", "model", "eval"))
    recorded = run(
        "record",
        "franka",
        str(bags),
        "--sim",
        "--expert",
        "--episodes",
        "2",
        "--seed",
        "11",
        "--task-kind",
        "pick",
        "--phrasing",
        "train",
        "--hold",
        "0.3",
    ).stdout
    # Under heavy load the expert can miss a grasp: the sim labels that episode a failure, and the
    # converter must leave out exactly the failures.
    episodes = sorted(bags.glob(f"{EPISODE_PREFIX}*"))
    labels = {path.resolve(): read_episode_meta(path).success for path in episodes}
    assert len(episodes) == 2 and None not in labels.values() and any(labels.values()), recorded
    converted = run("convert", str(bags), "--to", "lerobot", str(dataset)).stdout
    data = load_lerobot_dataset(dataset)
    assert data.num_episodes == sum(labels.values()), f"{recorded}\n{converted}"
    skipped = {Path(p).resolve() for p in read_extras(dataset)["skipped_failed"]}
    assert skipped == {path for path, success in labels.items() if not success}, converted
    assert data.robot == "franka" and data.action_space == "ee_delta"
    assert (
        set(data.cameras) == {"scene", "wrist"} and len(data) > 40 * data.num_episodes
    )  # ~6 s of picking each, at 10 Hz
    assert np.any(data.action[:, 2] > 0.005)  # the lift is in the labels
    assert set(data.action[:, 6]) == {0.0, 1.0}  # the gripper opens and closes

    run(
        "train",
        str(dataset),
        str(model),
        "--preset",
        "tiny",
        "--steps",
        "6",
        "--batch-size",
        "4",
        "--save-every",
        "3",
        "--threads",
        "1",
        "--no-progress",
    )
    log = [json.loads(line) for line in (model / "train_log.jsonl").read_text().splitlines()]
    assert log and all(np.isfinite(r["loss"]) for r in log if "loss" in r)
    assert (model / "loss_curve.png").stat().st_size > 0 and read_config(model).cameras == ("scene", "wrist")

    run(
        "eval",
        "franka",
        "--policy",
        "flow",
        "--model",
        str(model),
        "--episodes",
        "2",
        "--time-limit",
        "2",
        "--video-episodes",
        "1",
        "--out",
        str(evals),
    )
    results = json.loads((evals / "results.json").read_text())
    episodes = results["records"]
    assert results["episodes"] == 2 and all(e["seed"] >= 100000 for e in episodes)  # held-out scenes
    assert (evals / "summary.md").is_file() and (evals / "episodes.mp4").stat().st_size > 0
