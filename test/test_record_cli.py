"""`ros2-vla record` end to end: the sim's expert demonstrates through the real graph, and keys drive
the recorder; every bag is read back with rosbags."""

from __future__ import annotations

import subprocess
import time

import numpy as np
import pytest
from helpers import cli, wait_for

pytest.importorskip("rclpy")
from rosbags.rosbag2 import Reader  # noqa: E402

from ros2_vla.bringup import NAMES  # noqa: E402
from ros2_vla.config import load_robot_config  # noqa: E402
from ros2_vla.data.bag_reader import open_episode, read_messages  # noqa: E402
from ros2_vla.data.episode import episode_topics, read_episode_meta  # noqa: E402


def record(*args: str, timeout: float = 240) -> subprocess.CompletedProcess:
    return subprocess.run(cli("record", *args), cwd="/", capture_output=True, text=True, timeout=timeout)


@pytest.mark.slow
def test_expert_episodes_are_recorded_labelled_and_complete(tmp_path):
    out = tmp_path / "demos"
    result = record(
        "franka",
        str(out),
        "--sim",
        "--expert",
        "--episodes",
        "2",
        "--seed",
        "5",
        "--task-kind",
        "pick",
        "--expert-period",
        "0.1",
        "--start-jitter",
        "0.3",
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "episode 2/2 episode_0001" in result.stdout and "recorded 2 episodes" in result.stdout

    robot = load_robot_config("franka")
    bags = sorted(out.glob("episode_*"))
    assert [b.name for b in bags] == ["episode_0000", "episode_0001"]
    for seed, bag in zip((5, 6), bags):
        meta = read_episode_meta(bag)
        assert (meta.robot, meta.success, meta.sim_success, meta.seed) == ("franka", True, True, seed)
        assert (meta.demonstrator, meta.task) == ("expert", "pick") and meta.instruction.startswith("pick up the")
        with Reader(bag) as reader:
            assert {c.topic: c.msgtype for c in reader.connections} == episode_topics(robot, sim=True)
            counts = {c.topic: c.msgcount for c in reader.connections}
        assert counts == meta.message_counts
        assert all(counts[c.topic] > 0 for c in robot.cameras)
        assert counts[robot.arms[0].trajectory_topic] > 0
        seconds = (meta.stop_ns - meta.start_ns) * 1e-9
        assert 0.5 * seconds / 0.1 < counts[NAMES.action_chunk] <= seconds / 0.1 + 2  # a chunk every 0.1 s
        assert counts[NAMES.sim_task] == 1 and sum(meta.dropped.values()) == 0
        _, _, first = next(read_messages(open_episode(bag), [robot.joint_states_topic]))
        start = np.array([first.position[list(first.name).index(n)] for n in robot.arms[0].chain.joint_names])
        assert 0.05 < np.abs(start - robot.arms[0].chain.home).max() <= 0.3 + 1e-6  # --start-jitter reached the sim


def test_keys_start_stop_discard_and_quit(tmp_path):
    out = tmp_path / "demos"
    proc = subprocess.Popen(
        cli("record", "franka", str(out)),
        cwd="/",
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )

    def key(k: str, then_exists: str = "", gone: str = "") -> None:
        proc.stdin.write(k + "\n")
        proc.stdin.flush()
        if then_exists:
            wait_for(lambda: (out / then_exists / "metadata.yaml").exists(), 30, f"{then_exists} closed")
        if gone:
            wait_for(lambda: not (out / gone).exists(), 30, f"{gone} removed")

    try:
        key("r")
        wait_for(lambda: (out / "episode_0000").is_dir(), 60, "the first episode folder")
        key("s", then_exists="episode_0000")
        key("r")
        wait_for(lambda: (out / "episode_0001").is_dir(), 30, "the second episode folder")
        key("d", gone="episode_0001")
        key("r")
        wait_for(lambda: (out / "episode_0001").is_dir(), 30, "the third episode folder")
        time.sleep(0.5)
        key("q")
        output, _ = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0, output
    assert read_episode_meta(out / "episode_0000").success is True
    assert read_episode_meta(out / "episode_0001").success is None  # quit while recording: kept, unlabelled
    assert "episode 1 episode_0000" in output and "discarded" in output and "recorded 1 episodes" in output


def test_expert_without_sim_is_one_line_error(tmp_path):
    result = record("franka", str(tmp_path), "--expert")
    assert result.returncode == 2 and "--expert needs the sim" in result.stderr and "Traceback" not in result.stderr


def test_a_period_that_is_not_positive_is_one_line_error(tmp_path):
    result = record("franka", str(tmp_path), "--sim", "--expert", "--expert-period", "0")
    assert (
        result.returncode == 2 and "--expert-period must be > 0" in result.stderr and "Traceback" not in result.stderr
    )


def test_a_negative_start_jitter_is_one_line_error(tmp_path):
    result = record("franka", str(tmp_path), "--sim", "--expert", "--start-jitter", "-0.1")
    assert (
        result.returncode == 2 and "--start-jitter must be >= 0" in result.stderr and "Traceback" not in result.stderr
    )


def test_a_slip_chance_outside_0_to_1_is_one_line_error(tmp_path):
    result = record("franka", str(tmp_path), "--sim", "--expert", "--slip", "1.5")
    assert (
        result.returncode == 2
        and "--slip must be a chance in [0, 1]" in result.stderr
        and "Traceback" not in result.stderr
    )


def test_a_negative_disturbance_is_one_line_error(tmp_path):
    result = record("franka", str(tmp_path), "--sim", "--expert", "--disturbance", "-0.01")
    assert result.returncode == 2 and "--disturbance must be >= 0" in result.stderr and "Traceback" not in result.stderr


def test_print_topics_lists_the_episode_topics():
    result = record("widowx", "unused", "--print-topics", "--sim")
    robot = load_robot_config("widowx")
    assert result.returncode == 0
    assert result.stdout.split("\n")[:-1] == [f"{t} {m}" for t, m in episode_topics(robot, sim=True).items()]
