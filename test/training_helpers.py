"""Builders shared by the test_training_* files: small in-memory FrameDatasets and a fast TrainConfig."""

from __future__ import annotations

import numpy as np

from ros2_vla.config import load_robot_config
from ros2_vla.data.frames import FrameDataset
from ros2_vla.policies.flow.config import robot_state_dim
from ros2_vla.training.run_config import TrainConfig

TASKS = ("pick up the red cube", "pick up the blue cube")


def lerobot_stats(x: np.ndarray) -> dict[str, np.ndarray]:
    x = np.asarray(x, np.float64)
    return {
        "mean": x.mean(0),
        "std": x.std(0),
        "min": x.min(0),
        "max": x.max(0),
        "q01": np.quantile(x, 0.01, axis=0),
        "q99": np.quantile(x, 0.99, axis=0),
    }


def tiny_dataset(
    robot: str = "franka",
    lengths: tuple[int, ...] = (12, 7, 10),
    size: tuple[int, int] = (32, 32),
    seed: int = 0,
    fps: float | None = None,
) -> FrameDataset:
    """Episodes of `lengths` frames for `robot`: each episode shows a bright square whose position and colour
    decide its actions (so a model can learn something), per-frame gripper openness 0/1, states that drift."""
    cfg = load_robot_config(robot)
    rng = np.random.default_rng(seed)
    names = cfg.action.dimension_names
    d, s, n = len(names), robot_state_dim(cfg), sum(lengths)
    images = {c.name: np.zeros((n, *size, 3), np.uint8) for c in cfg.cameras}
    action = np.zeros((n, d), np.float32)
    state = np.zeros((n, s), np.float32)
    episode = np.repeat(np.arange(len(lengths)), lengths)
    frame = np.concatenate([np.arange(k) for k in lengths])
    task = episode % len(TASKS)
    gripper = np.array(["gripper" in name for name in names])
    for i in range(n):
        e = episode[i]
        y, x = (e * 5) % (size[0] - 6), (frame[i] * 2) % (size[1] - 6)
        for name, im in images.items():
            im[i] = rng.integers(0, 40, (*size, 3))
            im[i, y : y + 6, x : x + 6, task[i]] = 255
        action[i, ~gripper] = 0.02 * np.sin(0.5 * frame[i] + e + np.arange((~gripper).sum())) * (1 + task[i])
        action[i, gripper] = float(frame[i] < lengths[e] // 2)
        state[i] = 0.1 * frame[i] + rng.normal(0, 0.05, s)
    return FrameDataset(
        root=f"memory:{robot}",
        robot=robot,
        fps=fps or 1.0 / cfg.action.dt,
        cameras=tuple(images),
        images=images,
        state=state,
        action=action,
        action_names=names,
        action_space=cfg.action.space,
        episode_index=episode.astype(np.int64),
        frame_index=frame.astype(np.int64),
        task_index=task.astype(np.int64),
        tasks=TASKS,
        stats={"action": lerobot_stats(action), "observation.state": lerobot_stats(state)},
    )


def fast_config(**overrides) -> TrainConfig:
    """Tiny preset, one thread, no progress bar: a few steps take well under a second."""
    fields = dict(
        preset="tiny",
        steps=20,
        batch_size=8,
        save_every=10,
        log_every=5,
        threads=1,
        progress=False,
        lr=1e-3,
        device="cpu",
    )
    fields.update(overrides)
    return TrainConfig(**fields)
