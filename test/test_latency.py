"""The latency budget from what a listener saw: each stage from a known timeline, sets matched by stamp,
and chunks whose frames were not seen left out."""

from __future__ import annotations

import pytest

from ros2_vla.latency import STAGES, LatencyLog, chunk_latencies, plot, summary, table


def _timeline(log: LatencyLog, t: float, wrist_skew: float = 0.0) -> None:
    """One observation at t: scene arrives 10 ms after capture, wrist 30 ms; inference 24 ms after 5 ms of
    queueing; the chunk is out at t + 59 ms, the trajectory 2 ms later."""
    log.add_frame("scene", t, t + 0.010)
    log.add_frame("wrist", t + wrist_skew, t + 0.030)
    log.add_chunk(t, t + 0.030 + 0.005 + 0.024, 0.024)
    log.add_trajectory(t + 0.061)


def test_each_stage_comes_out_of_a_known_timeline():
    log = LatencyLog()
    for k in range(10):
        _timeline(log, 1.0 + 0.1 * k, wrist_skew=0.004)
    rows = chunk_latencies(log)
    assert len(rows) == 10
    r = rows[0]
    assert r.camera["scene"] == pytest.approx(0.010) and r.camera["wrist"] == pytest.approx(0.026)
    assert r.waiting == pytest.approx(0.020)
    assert r.queueing == pytest.approx(0.005) and r.inference == pytest.approx(0.024)
    assert r.bridge == pytest.approx(0.002)
    assert r.chunk_delay == pytest.approx(0.059) and r.total == pytest.approx(0.061)
    s = summary(rows)
    assert s["chunk_delay"]["p50_ms"] == pytest.approx(59.0)
    assert s["chunk_delay_over_inference"] == pytest.approx(59.0 / 24.0)
    assert list(s["stages"]) == list(STAGES)


def test_chunks_whose_frames_were_not_all_seen_are_left_out():
    log = LatencyLog()
    log.add_chunk(0.5, 0.6, 0.02)  # from before the listener started: no frames
    log.add_frame("scene", 1.0, 1.01)
    log.add_frame("wrist", 1.2, 1.21)  # 200 ms later: not of the same set
    log.add_chunk(1.0, 1.1, 0.02)
    assert chunk_latencies(log, slop=0.05) == []
    assert table(summary([])).startswith("no chunk seen")


def test_the_table_and_the_plot_are_written(tmp_path):
    log = LatencyLog()
    for k in range(5):
        _timeline(log, 0.1 * k)
    s = summary(chunk_latencies(log))
    text = table(s)
    assert "| capture -> receipt: wrist | 30.0 |" in text and "chunk delay / inference (p50): 2.46" in text
    plot(s, str(tmp_path / "latency.png"))
    assert (tmp_path / "latency.png").stat().st_size > 1000
