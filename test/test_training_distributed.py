"""Data-parallel flow training under torchrun: 2 CPU processes on gloo train like one process with the same
global batch, write the log and the checkpoints once, and resume exactly."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys

import numpy as np
import pytest
import torch
from flow_helpers import one_torch_thread  # noqa: F401
from training_helpers import tiny_dataset

from ros2_vla.config import load_robot_config as load_config
from ros2_vla.data.lerobot_writer import write_frames
from ros2_vla.policies.flow import load_checkpoint
from ros2_vla.training.batching import ChunkBatcher, norm_stats_from_dataset
from ros2_vla.training.checkpoints import list_checkpoints
from ros2_vla.training.distributed import Ranks
from ros2_vla.training.model_setup import new_model
from ros2_vla.training.validation import validation_loss

SETTINGS = ("--preset", "tiny", "--batch-size", "8", "--log-every", "5", "--threads", "1", "--lr", "1e-3")
SETTINGS += ("--device", "cpu", "--no-progress")


@pytest.fixture(scope="module")
def dataset_dir(tmp_path_factory):
    root = tmp_path_factory.mktemp("tiny") / "dataset"
    write_frames(tiny_dataset(), root)
    return root


def train(dataset_dir, out, processes: int, *args: str) -> subprocess.CompletedProcess:
    """`ros2-vla train` in one process, or under torchrun with `processes` CPU processes (gloo)."""
    launcher = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={processes}"]
    command = [*(launcher if processes > 1 else [sys.executable]), "-m", "ros2_vla.cli", "train"]
    result = subprocess.run(
        [*command, str(dataset_dir), str(out), *SETTINGS, *args], cwd="/", capture_output=True, text=True, timeout=300
    )
    return result


def held_out_loss(model) -> float:
    """A model's flow loss on every frame, with fixed noise: one number to compare runs by."""
    dataset = tiny_dataset()
    batcher = ChunkBatcher(dataset, model.config, norm_stats_from_dataset(dataset, model.config.dimension_names))
    return validation_loss(model, batcher, np.arange(len(dataset)), 32, seed=7)


@pytest.fixture(scope="module")
def runs(dataset_dir, tmp_path_factory):
    """120 steps of one process and of two (checkpoints at 60 and 120), the same seed and global batch."""
    root = tmp_path_factory.mktemp("runs")
    for name, processes in (("one", 1), ("two", 2)):
        result = train(dataset_dir, root / name, processes, "--steps", "120", "--save-every", "60", "--keep-last", "0")
        assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
        assert result.stdout.count("trained to step 120") == 1  # rank 0 alone reports
    return root


@pytest.mark.slow
def test_two_processes_train_like_one_with_the_same_global_batch(runs):
    two = runs / "two"
    log = [json.loads(line) for line in (two / "train_log.jsonl").read_text().splitlines()]
    assert [r["step"] for r in log] == list(range(5, 121, 5))  # written once, by rank 0
    assert [step for step, _ in list_checkpoints(two)] == [60, 120]
    dataset = tiny_dataset()
    start = held_out_loss(new_model(dataset, load_config(dataset.robot), "tiny", {}, None, 0))  # the runs' init
    one, both = held_out_loss(load_checkpoint(runs / "one")[0]), held_out_loss(load_checkpoint(two)[0])
    # Within noise: other seeds of one process land within 0.02 of each other here (0.759-0.779, from 1.144).
    learned = start - one
    assert learned > 0.25 and abs(both - one) <= 0.15 * learned, (start, one, both)


@pytest.mark.slow
def test_a_resumed_two_process_run_equals_the_unbroken_one_and_resumes_under_one(runs, dataset_dir, tmp_path):
    straight, broken, single = runs / "two", tmp_path / "broken", tmp_path / "single"
    for copy in (broken, single):
        shutil.copytree(straight, copy)
        for step, folder in list_checkpoints(copy):
            if step > 60:
                shutil.rmtree(folder)  # as if the run had stopped right after step 60
    resume = ("--steps", "120", "--save-every", "60", "--keep-last", "0", "--resume")
    result = train(dataset_dir, broken, 2, *resume)
    assert result.returncode == 0, result.stderr[-3000:]
    a, b = load_checkpoint(straight)[0].state_dict(), load_checkpoint(broken)[0].state_dict()
    for name in a:
        torch.testing.assert_close(b[name], a[name], rtol=1e-6, atol=1e-7, msg=name)
    log = [json.loads(line) for line in (broken / "train_log.jsonl").read_text().splitlines()]
    assert [r["step"] for r in log] == list(range(5, 121, 5))
    # The same checkpoint goes on in one process (same batches; its own noise): to the end.
    result = train(dataset_dir, single, 1, *resume)
    assert result.returncode == 0 and "trained to step 120" in result.stdout, result.stderr[-3000:]


@pytest.mark.slow
def test_a_global_batch_that_does_not_split_is_one_line_error(tmp_path, dataset_dir):
    result = train(dataset_dir, tmp_path / "run", 2, "--steps", "4", "--batch-size", "7")
    assert result.returncode != 0
    assert "ros2-vla: --batch-size 7 (the global batch) does not split over 2 processes" in result.stderr
    assert "site-packages/ros2_vla/" not in result.stderr  # no traceback of ours (torchrun prints its own)


def test_ranks_come_from_the_launchers_variables(monkeypatch):
    for name in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "LOCAL_WORLD_SIZE"):
        monkeypatch.delenv(name, raising=False)
    assert Ranks.from_env() == Ranks(0, 1, 0, 1) and not Ranks.from_env().enabled
    monkeypatch.setenv("RANK", "3")
    monkeypatch.setenv("WORLD_SIZE", "4")
    monkeypatch.setenv("LOCAL_RANK", "1")
    monkeypatch.setenv("LOCAL_WORLD_SIZE", "2")
    assert Ranks.from_env() == Ranks(3, 4, 1, 2) and not Ranks.from_env().is_main
    monkeypatch.setenv("RANK", "4")
    with pytest.raises(Exception, match="RANK 4 / WORLD_SIZE 4"):
        Ranks.from_env()
