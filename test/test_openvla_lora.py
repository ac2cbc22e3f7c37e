"""OpenVLA LoRA fine-tuning of a checkpoint in OpenVLA's published layout (full-size vision towers, tiny Llama,
random weights), on the CPU: OpenVLA's labels and tokens, only LoRA weights train, the loss falls, resume
repeats the run, and the merged result loads in OpenVlaPolicy and acts. Runs are a few steps of one or two
frames: each step goes through the 0.7 B-parameter vision backbone and back."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from ros2_vla.actions.tokenization import token_ids_to_bin_indices, tokens_to_normalized, unnormalize
from ros2_vla.data.frames import FrameDataset
from ros2_vla.errors import PolicyError
from ros2_vla.policies.base import Observation
from ros2_vla.policies.openvla import OpenVlaConfig, OpenVlaPolicy
from ros2_vla.policies.openvla.loading import load_checkpoint
from ros2_vla.training.openvla_data import IGNORE_INDEX, ExampleSource, action_norm, action_token_ids, batch_indices
from ros2_vla.training.openvla_lora import train_lora, with_lora
from ros2_vla.training.openvla_metrics import action_metrics
from ros2_vla.training.openvla_run import LoraTrainConfig

pytestmark = pytest.mark.slow
NAMES = ("x", "y", "z", "roll", "pitch", "yaw", "gripper")
CAMERAS = ("scene", "wrist")
V, BINS = 32000, 256  # OpenVLA's action vocabulary: 32064 rows - 64 padding
RUN = dict(batch_size=1, lr=3e-3, rank=4, log_every=1, device="cpu", threads=1, progress=False)


def make_dataset(root: str = "/data/toy_pick", n: int = 16) -> FrameDataset:
    """Two episodes: a red scene with one action, a blue scene with another (so images matter)."""
    half = n // 2
    images = np.zeros((n, 40, 40, 3), np.uint8)
    images[:half, ..., 0] = 200
    images[half:, ..., 2] = 200
    action = np.zeros((n, 7), np.float32)
    action[:half] = [0.01, -0.02, 0.005, 0.0, 0.0, 0.05, 1.0]
    action[half:] = [-0.01, 0.02, -0.005, 0.0, 0.0, -0.05, 0.0]
    stats = {
        "action": {
            "q01": action.min(0) - 1e-3,
            "q99": action.max(0) + 1e-3,
            "mean": action.mean(0),
            "std": action.std(0),
        }
    }
    return FrameDataset(
        root=root,
        robot="franka",
        fps=10.0,
        cameras=CAMERAS,
        images={"scene": images, "wrist": images},
        state=np.zeros((n, 8), np.float32),
        action=action,
        action_names=NAMES,
        action_space="ee_delta",
        episode_index=np.repeat([0, 1], half),
        frame_index=np.tile(np.arange(half), 2),
        task_index=np.repeat([0, 1], half),
        tasks=("pick up the red cube", "pick up the blue cube"),
        stats=stats,
    )


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    """One torch thread: on a shared 2-core machine two spinning OpenMP threads run steps 5-40x slower."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def base(openvla_checkpoint):
    return openvla_checkpoint


@pytest.fixture(scope="module")
def dataset():
    return make_dataset()


@pytest.fixture(scope="module")
def trained(base, dataset, tmp_path_factory):
    out = tmp_path_factory.mktemp("lora") / "run"
    return train_lora(dataset, out, base, steps=4, save_every=2, **RUN)


def _policy(checkpoint, unnorm_key=None) -> OpenVlaPolicy:
    return OpenVlaPolicy(
        OpenVlaConfig(checkpoint=str(checkpoint), dt=0.1, cameras=CAMERAS, device="cpu", unnorm_key=unnorm_key)
    )


# --- tokens and labels, as OpenVLA builds them ----------------------------------------------------------
def test_action_tokens_are_openvlas_and_decode_back(dataset):
    norm = action_norm(dataset)
    assert norm.mask.tolist() == [True] * 6 + [False]  # the gripper passes through, as OpenVLA's bridge_orig
    ids = action_token_ids(dataset.action, norm, V, BINS)
    assert ids.min() >= V - BINS and ids.max() <= V - 1
    # OpenVLA: id = V - digitize(x); x = +1 (at or above q99, clipped; an open gripper) gives 256, -1 gives 1
    assert action_token_ids(norm.q99 + 0.1, norm, V, BINS)[:6].tolist() == [V - 256] * 6
    assert action_token_ids(norm.q01, norm, V, BINS)[:6].tolist() == [V - 1] * 6
    assert ids[0, 6] == V - 256 and ids[-1, 6] == V - 128  # gripper 1.0 and 0.0, not normalized
    decoded = unnormalize(
        tokens_to_normalized(token_ids_to_bin_indices(ids, V, BINS), BINS), norm.q01, norm.q99, norm.mask
    )
    half_bin = (norm.q99 - norm.q01) / (BINS - 1)
    half_bin[6] = 1.0 / (BINS - 1)
    assert np.all(np.abs(decoded - dataset.action) <= half_bin + 1e-7)


def test_labels_cover_only_the_action_and_stop_tokens_after_the_inference_prompt(base, dataset):
    policy = _policy(base, "bridge_orig")
    norm = action_norm(dataset)
    source = ExampleSource(dataset, policy.processor, "scene", norm, V, BINS, suffix_id=policy._suffix_id)
    assert policy._suffix_id == 29871
    example = source.example(3)
    ids, labels = example["input_ids"], example["labels"]
    d = len(NAMES)
    assert torch.all(labels[: -(d + 1)] == IGNORE_INDEX)  # the prompt carries no loss (nor, in the model, the image)
    assert labels[-(d + 1) :].tolist() == [*action_token_ids(dataset.action[3], norm, V, BINS).tolist(), 2]  # + </s>
    obs = Observation(
        stamp=0.0,
        images={"scene": dataset.images["scene"][3]},
        state=dataset.state[3],
        instruction="Pick up the red cube",
    )
    prompt = policy.encode(obs)  # what the backend feeds the model at inference
    assert torch.equal(ids[: -(d + 1)], prompt["input_ids"][0])
    assert torch.allclose(example["pixel_values"], prompt["pixel_values"])


def test_batches_are_right_padded_and_reproducible(base, dataset):
    policy = _policy(base, "bridge_orig")
    source = ExampleSource(dataset, policy.processor, "scene", action_norm(dataset), V, BINS, policy._suffix_id)
    batch = source.batch(np.array([0, 9]))
    assert batch["input_ids"].shape == batch["labels"].shape == batch["attention_mask"].shape
    assert batch["pixel_values"].shape[0] == 2
    # one epoch visits every frame once; the same (seed, step) gives the same frames
    epoch = np.concatenate([batch_indices(s, 4, 16, seed=0) for s in range(4)])
    assert sorted(epoch.tolist()) == list(range(16))
    assert np.array_equal(batch_indices(5, 4, 16, seed=1), batch_indices(5, 4, 16, seed=1))


# --- what trains --------------------------------------------------------------------------------------
def test_only_lora_weights_train(base, dataset):
    loaded = load_checkpoint(base, "fp32", "cpu")
    model = with_lora(loaded.model, LoraTrainConfig(model_dir=str(base), rank=4))
    trainable = {n for n, p in model.named_parameters() if p.requires_grad}
    assert trainable and all("lora_A" in n or "lora_B" in n for n in trainable)
    for part in ("language_model", "vision_backbone.featurizer", "vision_backbone.fused_featurizer", "projector"):
        assert any(part in n for n in trainable), part  # OpenVLA's all-linear: every part of the VLA
    assert not any("lm_head" in n for n in trainable)  # the output head stays as it is
    frozen = {n: p.detach().clone() for n, p in model.named_parameters() if not p.requires_grad}
    lora_b = {n: p.detach().clone() for n, p in model.named_parameters() if "lora_B" in n}
    source = ExampleSource(dataset, loaded.processor, "scene", action_norm(dataset), V, BINS, 29871)
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-3)
    model.train()
    for step in range(1):
        loss = model(**source.batch(batch_indices(step, 1, len(dataset), 0))).loss
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    params = dict(model.named_parameters())
    assert all(torch.equal(params[n], before) for n, before in frozen.items())
    assert any(not torch.equal(params[n], before) for n, before in lora_b.items())


def test_a_few_steps_lower_the_loss_and_log_it(trained):
    records = [json.loads(line) for line in (trained.out / "train_log.jsonl").read_text().splitlines()]
    assert [r["step"] for r in records] == [1, 2, 3, 4]
    assert records[-1]["loss"] < records[0]["loss"] - 0.3
    assert not trained.interrupted and trained.step == 4
    assert (trained.out / "loss_curve.png").stat().st_size > 1000
    assert sorted(p.name for p in (trained.out / "checkpoints").iterdir()) == ["step_000002", "step_000004"]


def test_merged_result_loads_in_the_backend_and_acts(trained, dataset):
    policy = _policy(trained.out)  # one key: no unnorm_key needed
    norm = action_norm(dataset)
    assert policy.stats.key == "toy_pick"  # the dataset folder's name
    assert np.allclose(policy.stats.low, norm.q01) and np.allclose(policy.stats.high, norm.q99)
    assert policy.stats.mask.tolist() == norm.mask.tolist()
    obs = Observation(
        stamp=0.0,
        images={"scene": dataset.images["scene"][0]},
        state=dataset.state[0],
        instruction="pick up the red cube",
    )
    out = policy.infer(obs)
    assert out.tokens.shape == (1, 7) and out.tokens.max() <= BINS - 2 and out.num_bins == BINS


def test_the_merged_model_fits_the_training_actions_better_than_the_base(trained, base, dataset):
    def scored(checkpoint) -> tuple[float, dict]:
        loaded = load_checkpoint(checkpoint, "fp32", "cpu")
        source = ExampleSource(dataset, loaded.processor, "scene", action_norm(dataset), V, BINS, 29871)
        batch = source.batch(np.array([0, 8]))  # one frame of each task
        with torch.no_grad():
            out = loaded.model(**batch)
        return float(out.loss), action_metrics(out.logits, batch["labels"], V - BINS, V, BINS)

    (base_loss, base_metrics), (tuned_loss, tuned_metrics) = scored(base), scored(trained.out)
    assert tuned_loss < base_loss - 0.3  # the adapter was merged into the weights that were saved
    assert tuned_metrics["action_l1"] <= base_metrics["action_l1"]


def test_resume_repeats_the_uninterrupted_run(trained, base, dataset, tmp_path):
    straight = trained  # 4 steps, checkpoints every 2
    first = train_lora(dataset, tmp_path / "resumed", base, steps=2, save_every=2, **RUN)
    assert first.step == 2
    resumed = train_lora(dataset, tmp_path / "resumed", steps=4, resume=True, progress=False)
    assert resumed.step == 4

    def losses(run) -> list[float]:
        return [json.loads(line)["loss"] for line in (run / "train_log.jsonl").read_text().splitlines()]

    assert np.allclose(losses(straight.out), losses(tmp_path / "resumed"), rtol=1e-4)
    from safetensors.torch import load_file

    a = load_file(str(straight.out / "adapter" / "adapter_model.safetensors"))
    b = load_file(str(resumed.out / "adapter" / "adapter_model.safetensors"))
    assert a.keys() == b.keys() and all(torch.allclose(a[k], b[k], atol=1e-5) for k in a)


def lerobot_folder(dataset, root):
    """Episodes 0 and 1 of `dataset` as a LeRobot folder, through the package's writer."""
    from ros2_vla.data.lerobot_writer import LeRobotWriter

    writer = LeRobotWriter(
        root,
        fps=10,
        robot_type="franka",
        state_names=[f"s{i}" for i in range(8)],
        action_names=NAMES,
        cameras={"scene": (40, 40)},
    )
    for ep in (0, 1):
        rows = np.flatnonzero(dataset.episode_index == ep)
        writer.start_episode(len(rows))
        for i in rows:
            writer.write_frame("scene", dataset.images["scene"][i])
        writer.end_episode(
            dataset.state[rows], dataset.action[rows], [dataset.tasks[dataset.task_index[i]] for i in rows]
        )
    writer.finish({"action_space": "ee_delta"})
    return root


# One step on both examples of a LeRobot folder, OpenVLA's defaults: through `ros2-vla train`, then under torchrun.
CLI_RUN = ["--policy", "openvla", "--steps", "1", "--batch-size", "2", "--lora-rank", "4", "--device", "cpu"]
CLI_RUN += ["--threads", "1", "--no-progress"]


@pytest.fixture(scope="module")
def cli_run(base, dataset, tmp_path_factory):
    """(the LeRobot folder, the run folder of `ros2-vla train ... CLI_RUN` in one process)."""
    from ros2_vla.cli import main

    root = lerobot_folder(dataset, tmp_path_factory.mktemp("cli") / "toy_pick")
    out = root.parent / "run"
    assert main(["train", str(root), str(out), "--init", str(base), *CLI_RUN]) == 0
    return root, out


def test_ros2_vla_train_policy_openvla_on_a_lerobot_folder(cli_run, dataset):
    out = cli_run[1]
    run = json.loads((out / "openvla_lora_run.json").read_text())["config"]
    assert (run["rank"], run["alpha"], run["lr"], run["quantization"]) == (4, 4.0, 5e-4, "fp32")  # OpenVLA's defaults
    assert run["threads"] == 1
    stats = json.loads((out / "dataset_statistics.json").read_text())
    assert list(stats) == ["toy_pick"] and stats["toy_pick"]["num_trajectories"] == 2
    assert np.allclose(stats["toy_pick"]["action"]["q99"], dataset.action.max(0), atol=1e-6)


def test_two_processes_take_the_one_process_step(base, cli_run, tmp_path):
    """torchrun, 2 CPU processes (gloo), one example each: the adapter is the one process's on both examples.
    A step moves the LoRA weights by about the learning rate (Adam); without the gradients' all-reduce, rank 0
    would have stepped on its example alone and landed that far off."""
    root, one_process = cli_run
    launcher = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2"]
    command = [*launcher, "-m", "ros2_vla.cli", "train", str(root), str(tmp_path / "run"), "--init", str(base)]
    result = subprocess.run([*command, *CLI_RUN], cwd="/", capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-3000:]
    assert result.stdout.count("trained to step 1") == 1  # rank 0 alone reports
    one, two = (
        load_file(str(run / "adapter" / "adapter_model.safetensors")) for run in (one_process, tmp_path / "run")
    )
    moved = max(float(v.abs().max()) for k, v in one.items() if "lora_B" in k)  # B starts at zero
    worst = max(float((two[k] - one[k]).abs().max()) for k in one)
    assert moved > 2e-4 and worst < 2e-5, (moved, worst)


def test_runs_are_not_overwritten_and_resume_keeps_the_recipe(base, dataset, trained):
    with pytest.raises(PolicyError, match="already holds a training run"):
        train_lora(dataset, trained.out, base, steps=2, device="cpu", progress=False)
    with pytest.raises(PolicyError, match="rank"):
        train_lora(dataset, trained.out, steps=30, rank=16, resume=True, progress=False)
    with pytest.raises(PolicyError, match="trained on"):
        train_lora(make_dataset(n=8), trained.out, steps=30, resume=True, progress=False)


def test_defaults_follow_openvla_and_vla_node(base, dataset):
    import dataclasses

    resolved = LoraTrainConfig(model_dir=str(base)).resolved(
        dataclasses.replace(dataset, cameras=("wrist", "scene")), "cpu"
    )
    assert resolved.camera == "scene"  # franka's first camera: the one vla_node shows the model
    assert (resolved.rank, resolved.alpha, resolved.dropout, resolved.lr) == (32, 16.0, 0.0, 5e-4)
    assert resolved.quantization == "fp32" and resolved.unnorm_key == "toy_pick"
    assert LoraTrainConfig(model_dir=str(base)).resolved(dataset, "cuda:0").quantization == "bf16"


def test_bad_settings_fail_early(base, dataset, tmp_path):
    with pytest.raises(PolicyError, match="8-bit"):
        LoraTrainConfig(model_dir=str(base), quantization="8bit")
    with pytest.raises(PolicyError, match="camera 'top'"):
        train_lora(dataset, tmp_path / "x", base, steps=1, camera="top", device="cpu", progress=False)
    with pytest.raises(PolicyError, match="does not exist"):
        train_lora(dataset, tmp_path / "y", tmp_path / "no_model", steps=1, device="cpu", progress=False)
    assert not (tmp_path / "x").exists() and not (tmp_path / "y").exists()  # nothing half-made to trip a retry


def test_qlora_trains_on_a_4bit_base_and_merges_unquantized(base, dataset, tmp_path):
    pytest.importorskip("bitsandbytes")
    result = train_lora(
        dataset, tmp_path / "q", base, steps=1, quantization="4bit", **{k: v for k, v in RUN.items() if k != "lr"}
    )
    config = json.loads((result.out / "config.json").read_text())
    assert "quantization_config" not in config and config["torch_dtype"] == "bfloat16"  # merged, unquantized
    loaded = load_checkpoint(result.out, "fp32", "cpu")
    assert {type(m).__name__ for m in loaded.model.modules()}.isdisjoint({"Linear4bit", "LoraLayer"})
    assert _policy(result.out).infer(
        Observation(
            stamp=0.0,
            images={"scene": dataset.images["scene"][0]},
            state=dataset.state[0],
            instruction="pick up the red cube",
        )
    ).tokens.shape == (1, 7)
