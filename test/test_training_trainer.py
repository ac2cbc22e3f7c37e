"""The flow trainer: it learns, its output loads in FlowPolicy, and a resumed run equals an unbroken one."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
import torch
from flow_helpers import one_torch_thread  # noqa: F401
from training_helpers import fast_config, tiny_dataset

from ros2_vla.config import load_robot_config
from ros2_vla.errors import PolicyError
from ros2_vla.policies.base import Observation
from ros2_vla.policies.flow import FlowPolicy, load_checkpoint
from ros2_vla.policies.registry import LoadOptions
from ros2_vla.training.batching import ChunkBatcher, norm_stats_from_dataset
from ros2_vla.training.checkpoints import list_checkpoints
from ros2_vla.training.model_setup import new_model
from ros2_vla.training.trainer import resume_flow, train_flow
from ros2_vla.training.validation import validation_loss


@pytest.fixture(scope="module")
def dataset():
    return tiny_dataset()


def _loss(model, dataset) -> float:
    batcher = ChunkBatcher(dataset, model.config, norm_stats_from_dataset(dataset, model.config.dimension_names))
    return validation_loss(model, batcher, np.arange(len(dataset)), 32, seed=7)


def test_a_few_steps_reduce_the_loss(tmp_path, dataset):
    config = fast_config(steps=60, lr=3e-3, augment_shift=0, save_every=100)
    before = _loss(new_model(dataset, load_robot_config("franka"), "tiny", {}, None, config.seed), dataset)
    train_flow(dataset, tmp_path, config)
    after = _loss(load_checkpoint(tmp_path)[0], dataset)
    assert after < 0.8 * before


def test_a_goal_head_is_trained_and_its_loss_logged(tmp_path, dataset):
    train_flow(
        dataset,
        tmp_path,
        fast_config(steps=60, lr=3e-3, augment_shift=0, save_every=100, overrides={"goal_head": True}),
    )
    records = [json.loads(line) for line in (tmp_path / "train_log.jsonl").read_text().splitlines()]
    goal = [r["goal_loss"] for r in records if "goal_loss" in r]
    assert len(goal) == len(records) > 1 and goal[-1] < 0.8 * goal[0]
    FlowPolicy(tmp_path, num_threads=1)  # the head is saved and loads with the rest


def test_the_trained_folder_is_a_flow_policy_for_the_robot(tmp_path, dataset):
    result = train_flow(dataset, tmp_path, fast_config(steps=10))
    assert result.step == 10 and not result.interrupted
    policy = FlowPolicy.from_options(load_robot_config("franka"), LoadOptions(model=str(tmp_path), device="cpu"))
    obs = Observation(
        stamp=0.0,
        images={c: dataset.images[c][0] for c in dataset.cameras},
        state=dataset.state[0],
        instruction=dataset.tasks[0],
    )
    out = policy.infer(obs)
    assert out.values.shape == (policy.spec.horizon, 7) and np.all(np.isfinite(out.values))
    np.testing.assert_allclose(out.low, dataset.stats["action"]["q01"], rtol=1e-6)
    assert policy.spec.dt == pytest.approx(1.0 / dataset.fps)


def test_the_run_folder_holds_checkpoints_a_log_and_a_plot(tmp_path, dataset):
    train_flow(dataset, tmp_path, fast_config(steps=30, save_every=10, keep_last=2, val_episodes=1))
    assert [step for step, _ in list_checkpoints(tmp_path)] == [20, 30]
    FlowPolicy(tmp_path / "checkpoints" / "step_000020", num_threads=1)  # each checkpoint loads on its own
    records = [json.loads(line) for line in (tmp_path / "train_log.jsonl").read_text().splitlines()]
    assert [r["step"] for r in records if "loss" in r] == [5, 10, 15, 20, 25, 30]
    assert [r["step"] for r in records if "val_loss" in r] == [10, 20, 30]
    assert (tmp_path / "loss_curve.png").read_bytes()[:4] == b"\x89PNG"


def test_resuming_from_a_checkpoint_equals_the_unbroken_run(tmp_path, dataset):
    config = fast_config(steps=20, save_every=8, keep_last=0)
    straight, broken = tmp_path / "straight", tmp_path / "broken"
    train_flow(dataset, straight, config)
    shutil.copytree(straight, broken)
    for step, folder in list_checkpoints(broken):
        if step > 8:
            shutil.rmtree(folder)  # as if the run had stopped right after step 8
    result = resume_flow(dataset, broken, threads=1, progress=False, device="cpu")
    assert result.step == 20
    a, b = load_checkpoint(straight)[0].state_dict(), load_checkpoint(broken)[0].state_dict()
    for name in a:
        torch.testing.assert_close(b[name], a[name], rtol=1e-6, atol=1e-7, msg=name)
    log = [json.loads(line) for line in (broken / "train_log.jsonl").read_text().splitlines()]
    assert [r["step"] for r in log if "loss" in r] == [5, 10, 15, 20]  # no duplicates from the lost steps


def test_resume_refuses_a_changed_setting_and_an_empty_folder(tmp_path, dataset):
    train_flow(dataset, tmp_path / "run", fast_config(steps=10))
    with pytest.raises(PolicyError, match="lr"):
        resume_flow(dataset, tmp_path / "run", lr=0.5)
    with pytest.raises(PolicyError, match="no training run"):
        resume_flow(dataset, tmp_path / "nothing")
    with pytest.raises(PolicyError, match="already holds a training run"):
        train_flow(dataset, tmp_path / "run", fast_config(steps=10))


def test_a_folder_holding_a_model_is_never_overwritten(tmp_path, dataset):
    train_flow(dataset, tmp_path / "run", fast_config(steps=2))
    shutil.copytree(tmp_path / "run", tmp_path / "model", ignore=shutil.ignore_patterns("checkpoints", "train_*"))
    with pytest.raises(PolicyError, match=r"already holds a model .*--init"):
        train_flow(dataset, tmp_path / "model", fast_config(steps=2))


def test_raising_steps_on_resume_trains_further(tmp_path, dataset):
    train_flow(dataset, tmp_path, fast_config(steps=10))
    result = resume_flow(dataset, tmp_path, steps=15, threads=1, progress=False, device="cpu")
    assert result.step == 15 and [s for s, _ in list_checkpoints(tmp_path)][-1] == 15


def test_fine_tuning_starts_from_the_given_weights(tmp_path, dataset):
    train_flow(dataset, tmp_path / "base", fast_config(steps=10))
    result = train_flow(dataset, tmp_path / "ft", fast_config(init=str(tmp_path / "base"), steps=1, lr=1e-9))
    assert result.step == 1
    base, tuned = load_checkpoint(tmp_path / "base")[0], load_checkpoint(tmp_path / "ft")[0]
    for name, tensor in base.state_dict().items():
        torch.testing.assert_close(tuned.state_dict()[name], tensor, rtol=0, atol=1e-6, msg=name)
