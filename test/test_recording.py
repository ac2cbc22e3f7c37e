"""EpisodeRecorder and SequenceGaps: what recorder_node does between its callbacks, without ROS."""

from __future__ import annotations

import pytest
from test_bag_writer import TOPICS, read_all, string_cdr

from ros2_vla.data.episode import BOOL, EpisodeMeta, read_episode_meta
from ros2_vla.data.recording import EpisodeRecorder, SequenceGaps
from ros2_vla.errors import RecordingError

INSTR = "/vla/instruction"


def test_sequence_gaps_per_publisher():
    gaps = SequenceGaps()
    assert gaps.observe("a", 5) == 0  # first sample of a publisher that was already running
    assert gaps.observe("a", 6) == 0
    assert gaps.observe("a", 9) == 2
    assert gaps.observe("b", 1) == 0  # another publisher has its own numbers
    assert gaps.observe("a", 8) == 0  # reordered: no gap, and no double count later
    assert gaps.observe("a", 10) == 0


def test_only_messages_inside_an_episode_are_written(tmp_path):
    rec = EpisodeRecorder(tmp_path, TOPICS)
    rec.on_message(INSTR, string_cdr("before"), 1)
    path = rec.start(t_ns=10)
    rec.on_message(INSTR, string_cdr("during"), 11)
    meta = rec.stop(EpisodeMeta(robot="franka", notes="n"), success=False, t_ns=20)
    rec.on_message(INSTR, string_cdr("after"), 21)
    assert [m.data for _, _, m in read_all(path)] == ["during"]
    assert (meta.start_ns, meta.stop_ns, meta.success, meta.notes) == (10, 20, False, "n")
    assert read_episode_meta(path) == meta and rec.episodes_written == 1 and not rec.recording


def test_sequence_gaps_during_an_episode_are_dropped_messages(tmp_path):
    rec = EpisodeRecorder(tmp_path, TOPICS)
    rec.on_message(INSTR, string_cdr("a"), 1, publisher="p", sequence=1)
    rec.on_message(INSTR, string_cdr("b"), 2, publisher="p", sequence=5)  # gap before the episode: not counted
    rec.start()
    rec.on_message(INSTR, string_cdr("c"), 3, publisher="p", sequence=6)
    rec.on_message(INSTR, string_cdr("d"), 4, publisher="p", sequence=9)
    meta = rec.stop(EpisodeMeta(robot="franka"), success=True)
    assert meta.dropped[INSTR] == 2 and meta.message_counts[INSTR] == 2


def test_instruction_and_sim_success_of_the_episode(tmp_path):
    rec = EpisodeRecorder(tmp_path, {**TOPICS, "/sim/success": BOOL}, sim=True)
    rec.note_instruction("pick up the red cube")
    rec.note_sim_success(True)  # before the episode (last scene): ignored
    rec.start()
    assert rec.status()["sim_success"] is False
    rec.note_sim_success(True)
    rec.note_sim_success(False)  # once true during the episode, it succeeded
    meta = rec.stop(EpisodeMeta(robot="franka"), success=None)
    assert (meta.instruction, meta.sim_success, meta.success) == ("pick up the red cube", True, None)


def test_not_a_sim_has_no_sim_verdict(tmp_path):
    rec = EpisodeRecorder(tmp_path, TOPICS)
    rec.start()
    assert rec.stop(EpisodeMeta(robot="franka"), success=True).sim_success is None


def test_start_stop_discard_in_the_wrong_state_are_errors(tmp_path):
    rec = EpisodeRecorder(tmp_path, TOPICS)
    with pytest.raises(RecordingError, match="nothing to stop"):
        rec.stop(EpisodeMeta(robot="franka"), success=True)
    with pytest.raises(RecordingError, match="nothing to discard"):
        rec.discard()
    path = rec.start()
    with pytest.raises(RecordingError, match="already recording"):
        rec.start()
    assert rec.status()["state"] == "recording" and rec.status()["episode"] == str(path)
    assert rec.discard() == path and not path.exists()
    assert rec.status()["state"] == "idle" and rec.episodes_written == 0


def test_the_instruction_in_force_opens_every_episode(tmp_path):
    rec = EpisodeRecorder(tmp_path, TOPICS, carry_over=[INSTR, "/not/recorded"])
    rec.on_message(INSTR, string_cdr("old"), 1)
    rec.on_message(INSTR, string_cdr("pick up the red cube"), 2)
    first = rec.start(t_ns=100)
    rec.stop(EpisodeMeta(robot="franka"), success=True)
    second = rec.start(t_ns=200)
    rec.on_message(INSTR, string_cdr("put it in the bowl"), 201)
    rec.stop(EpisodeMeta(robot="franka"), success=True)
    assert [(t, m.data) for _, t, m in read_all(first)] == [(100, "pick up the red cube")]
    assert [(t, m.data) for _, t, m in read_all(second)] == [(200, "pick up the red cube"), (201, "put it in the bowl")]
