"""Targets of the goal loss: where each demo goes next, read from the demo's own actions.

A flow policy trained on chunks alone learns a shortcut: once the arm is moving, the state and the
images say where it is heading, so the chunk can be predicted without reading the instruction. Only
the first frames of an episode need the words, and they are too few to teach them. The goal head
(FlowConfig.goal_head) is asked at every frame where the demo will be at its next gripper change
(the grasp, then the release, then the episode's end), which at the start of an episode only the
instruction and the image can tell. No simulator state is used: the goal comes from the actions.

Goal of frame i, with g the first later frame of its episode whose gripper command differs from
frame i's (or the episode's end):
- delta action spaces (ee_delta, joint_delta): the sum of the motion dims of frames i .. g-1, i.e.
  the displacement still to go; the gripper dims take the command at g (the last one at the end);
- absolute spaces: the action at frame g (the last frame's at the end).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from ros2_vla.data.frames import episode_bounds

_STD_FLOOR = 1e-3  # goal dims that barely vary (a fixed roll) are not blown up by normalization
# Gripper actions are the policy's openness in [0, 1] in every action space (actions/gripper.py), so a
# grasp or a release crosses the middle whatever threshold a robot's bridge binarizes with.
OPENNESS_MIDDLE = 0.5


def goal_frames(gripper: np.ndarray | None, episode_index: np.ndarray) -> np.ndarray:
    """(N,) index of each frame's goal frame g: its next gripper change in the episode, else one past the
    episode's last frame. gripper: (N,) commands (None: no gripper, every goal is the episode's end)."""
    starts, ends = episode_bounds(episode_index)
    goal = np.repeat(ends, ends - starts)  # default: the end of each frame's episode
    if gripper is None:
        return goal
    closed = np.asarray(gripper) < OPENNESS_MIDDLE
    for s, e in zip(starts, ends):
        nxt = e
        for i in range(e - 1, s - 1, -1):  # walking back, the next change after i is known
            if i + 1 < e and closed[i + 1] != closed[i]:
                nxt = i + 1
            goal[i] = nxt
    return goal


def goal_targets(
    action: np.ndarray, episode_index: np.ndarray, dimension_names: Sequence[str], hold: np.ndarray
) -> np.ndarray:
    """(N, D) physical goal of every frame (see the module docstring). hold: (D,) bool, True on absolute
    dims (every dim of an absolute space, the grippers of a delta space: `actions.spaces.hold_dims`)."""
    action = np.asarray(action, np.float64)
    grippers = [k for k, name in enumerate(dimension_names) if "gripper" in name]
    g = goal_frames(action[:, grippers[0]] if grippers else None, episode_index)
    starts, ends = episode_bounds(episode_index)
    last = np.minimum(g, np.repeat(ends - 1, ends - starts))  # the frame whose value a held dim takes
    goals = action[last].copy()
    if not hold.all():  # a delta space: the motion dims sum what is still to go
        csum = np.vstack([np.zeros((1, action.shape[1])), np.cumsum(action, axis=0)])
        still_to_go = csum[g] - csum[np.arange(action.shape[0])]
        goals[:, ~hold] = still_to_go[:, ~hold]
    return goals.astype(np.float32)


def normalize_goals(goals: np.ndarray) -> np.ndarray:
    """Z-scores per dim (the head's targets; its outputs are never un-normalized, so nothing is saved)."""
    mean, std = goals.mean(0), np.maximum(goals.std(0), _STD_FLOOR)
    return ((goals - mean) / std).astype(np.float32)
