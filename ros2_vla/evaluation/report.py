"""What an evaluation found: per-episode records, the summary with 95 % intervals, and its files.

results.json holds everything (config, summary, per-task rows, every episode); summary.md is the
same as tables people read; both are written whole or not at all (temporary file, then rename).
"""

from __future__ import annotations

import dataclasses
import json
import os
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ros2_vla.evaluation.episode import EpisodeResult
from ros2_vla.evaluation.stats import percentiles, wilson_interval
from ros2_vla.sim.tasks import STAGES


@dataclass(frozen=True)
class EpisodeRecord:
    """One evaluated episode: its seed and task, the outcome, and what the policy and the bridge did."""

    episode: int  # 0-based index in the run
    seed: int  # scene and task seed
    kind: str  # task kind
    colors: tuple[str, ...]  # the task's cube colors, in instruction order
    instruction: str  # what the policy was told
    success: bool
    sim_time: float  # [s] sim time to success, or the time limit
    wall_time: float  # [s] on this machine, rendering included
    chunks: int  # chunks the policy produced
    declined: int  # observations the policy gave no chunk for (vla_node: OBSERVATION_REFUSED)
    bad_chunks: int  # chunks the bridge refused or could not follow (codes other than OK/IDLE/DECELERATE)
    bridge_codes: dict[str, int]  # BridgeCode name -> chunks answered with it
    rejected_trajectories: int  # bridge commands the simulated controllers refused
    wrong_objects: tuple[str, ...]  # other cubes lifted and held at some success check
    latency_p50_ms: float  # policy call, this episode
    latency_max_ms: float
    furthest: str  # the furthest of `tasks.STAGES` the task's cubes got (where a failure stopped)

    @staticmethod
    def from_result(index: int, r: EpisodeResult, latencies: Sequence[float], declined: int) -> EpisodeRecord:
        ms = [1000.0 * t for t in latencies]
        return EpisodeRecord(
            index,
            r.seed,
            r.task.kind,
            r.task.colors,
            r.instruction,
            r.success,
            round(r.sim_time, 3),
            round(r.wall_time, 3),
            r.chunks,
            declined,
            r.bad_chunks,
            dict(r.bridge_codes),
            r.rejected_trajectories,
            r.wrong_objects,
            round(percentiles(ms, (50,))["p50"], 3),
            round(max(ms, default=float("nan")), 3),
            r.furthest,
        )

    @property
    def task_label(self) -> str:
        return "+".join(self.colors)

    def line(self, of: int) -> str:
        """One progress line, e.g. `episode 3/50 seed 100002 'grab the red block': success in 6.3 s`."""
        verdict = (
            f"success in {self.sim_time:.1f} s"
            if self.success
            else f"FAILED ({self.sim_time:.1f} s, furthest: {self.furthest})"
        )
        wrong = f", WRONG OBJECT {', '.join(self.wrong_objects)}" if self.wrong_objects else ""
        return f"episode {self.episode + 1}/{of} seed {self.seed} {self.instruction!r}: {verdict}{wrong}"


@dataclass(frozen=True)
class TaskRow:
    """Episode, success and wrong-pick counts of one task (kind and colors)."""

    kind: str
    colors: str  # "red", or "red+blue" for two-arm tasks
    episodes: int
    successes: int
    wrong_object: int  # episodes with a wrong pick


@dataclass(frozen=True)
class EvalReport:
    """An evaluation's results: the summary with 95 % intervals, per-task rows, every episode and the files written."""

    robot: str
    policy: str
    config: dict[str, Any]  # EvalConfig as a dict
    episodes: int
    successes: int
    success_rate: float
    success_ci95: tuple[float, float]  # Wilson score interval
    wrong_object_episodes: int
    wrong_object_rate: float
    wrong_object_ci95: tuple[float, float]
    latency_ms: dict[str, float]  # p50, p95 of every policy call; "calls"
    mean_success_time: float  # [s] sim time, successful episodes (NaN if none)
    bridge_codes: dict[str, int]  # BridgeCode name -> chunks answered with it, all episodes
    rejected_chunks: int  # chunks the bridge refused outright (CHUNK_REJECTED: nothing of them was driven)
    bad_chunks: int  # chunks answered with any code but OK, IDLE or DECELERATE (limits clipped them, IK failed...)
    rejected_trajectories: int
    declined: int
    failures_by_stage: dict[str, int]  # failed episodes by the furthest stage they got to, every stage listed
    tasks: list[TaskRow]
    records: list[EpisodeRecord]
    held_out_seed: int  # training demos use seeds below this
    files: dict[str, str] = field(default_factory=dict)  # what was written: results, summary, mp4, gif

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON types; NaN (no calls, no success) becomes None, which JSON can hold."""
        return _json_safe(dataclasses.asdict(self))

    def markdown(self) -> str:
        return _markdown(self)


def summarize(
    robot: str, policy: str, config: Any, records: list[EpisodeRecord], latencies: Sequence[float], held_out_seed: int
) -> EvalReport:
    """The report over `records`; `latencies` [s] are every policy call of the run; `config` an EvalConfig."""
    n = len(records)
    wins = sum(r.success for r in records)
    wrong = sum(bool(r.wrong_objects) for r in records)
    ms = [1000.0 * t for t in latencies]
    lat = {k: round(v, 3) for k, v in percentiles(ms, (50, 95)).items()} | {"calls": len(ms)}
    times = [r.sim_time for r in records if r.success]
    rows: dict[tuple[str, str], list[EpisodeRecord]] = {}
    for r in records:
        rows.setdefault((r.kind, r.task_label), []).append(r)
    codes: Counter[str] = Counter()
    for r in records:
        codes.update(r.bridge_codes)
    tasks = [
        TaskRow(k, c, len(rs), sum(x.success for x in rs), sum(bool(x.wrong_objects) for x in rs))
        for (k, c), rs in sorted(rows.items())
    ]
    return EvalReport(
        robot=robot,
        policy=policy,
        config=dataclasses.asdict(config),
        episodes=n,
        successes=wins,
        success_rate=wins / n if n else float("nan"),
        success_ci95=wilson_interval(wins, n),
        wrong_object_episodes=wrong,
        wrong_object_rate=wrong / n if n else float("nan"),
        wrong_object_ci95=wilson_interval(wrong, n),
        latency_ms=lat,
        mean_success_time=sum(times) / len(times) if times else float("nan"),
        bridge_codes=dict(sorted(codes.items())),
        rejected_chunks=codes.get("CHUNK_REJECTED", 0),
        bad_chunks=sum(r.bad_chunks for r in records),
        rejected_trajectories=sum(r.rejected_trajectories for r in records),
        declined=sum(r.declined for r in records),
        failures_by_stage={stage: sum(not r.success and r.furthest == stage for r in records) for stage in STAGES},
        tasks=tasks,
        records=list(records),
        held_out_seed=held_out_seed,
    )


def write_report(report: EvalReport, folder: Path, videos: Sequence[Path] = ()) -> EvalReport:
    """results.json and summary.md into `folder` (created); returns the report with `files` filled in."""
    folder.mkdir(parents=True, exist_ok=True)
    files = {"results": str(folder / "results.json"), "summary": str(folder / "summary.md")}
    files |= {p.suffix.lstrip("."): str(p) for p in videos}
    report = dataclasses.replace(report, files=files)
    _write_atomic(folder / "summary.md", report.markdown())
    _write_atomic(folder / "results.json", json.dumps(report.to_dict(), indent=2) + "\n")
    return report


def _write_atomic(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


def _json_safe(x: Any) -> Any:
    if isinstance(x, float) and x != x:
        return None
    if isinstance(x, dict):
        return {k: _json_safe(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_json_safe(v) for v in x]
    return x


def _pct(x: float) -> str:
    return f"{100 * x:.0f}%" if x == x else "n/a"


def _codes(codes: dict[str, int]) -> str:
    return ", ".join(f"{k} {v}" for k, v in codes.items()) or "none"


def _num(x: float, unit: str) -> str:
    return f"{x:.1f} {unit}" if x == x else "n/a"


def _markdown(r: EvalReport) -> str:
    c = r.config
    seeds = f"{c['seed']}..{c['seed'] + r.episodes - 1}"
    held = (
        f"held out: training demos use seeds below {r.held_out_seed}"
        if c["seed"] >= r.held_out_seed
        else f"NOT held out: seeds below {r.held_out_seed} are the ones training demos use"
    )
    lo, hi = r.success_ci95
    wlo, whi = r.wrong_object_ci95
    lines = [
        f"# ros2-vla eval: {r.robot}, policy {r.policy}",
        "",
        f"Seeds {seeds} ({held}), task kind {c['kind'] or 'from the seed'}, "
        f"phrasing {c['phrasing']}, time limit {c['time_limit']:g} s, a chunk every {c['policy_period']:g} s, "
        f"bridge blending {c['blend']['mode']}, "
        f"each chunk at the bridge {c['chunk_delay'] * 1e3:g} ms after its observation.",
        "",
        f"**Success: {r.successes}/{r.episodes} = {_pct(r.success_rate)}** "
        f"(95% Wilson interval {_pct(lo)} to {_pct(hi)})",
        "",
        f"- Wrong object picked: {r.wrong_object_episodes}/{r.episodes} = {_pct(r.wrong_object_rate)} "
        f"(95% interval {_pct(wlo)} to {_pct(whi)})",
        f"- Policy latency: p50 {_num(r.latency_ms['p50'], 'ms')}, p95 {_num(r.latency_ms['p95'], 'ms')} over "
        f"{r.latency_ms['calls']} calls",
        f"- Mean time to success: {_num(r.mean_success_time, 's')} (sim time)",
        f"- Bridge: {r.rejected_chunks} chunks rejected; answers {_codes(r.bridge_codes)}; {r.rejected_trajectories} "
        f"trajectories refused by the controllers; the policy declined {r.declined} observations",
        f"- Failed episodes by the furthest they got with the named cube: {_codes(r.failures_by_stage)}",
        "",
        "| task | colors | episodes | success | rate | wrong object |",
        "|---|---|---|---|---|---|",
    ]
    lines += [
        f"| {t.kind} | {t.colors} | {t.episodes} | {t.successes} | {_pct(t.successes / t.episodes)} "
        f"| {t.wrong_object} |"
        for t in r.tasks
    ]
    lines += [
        "",
        "| episode | seed | instruction | success | time [s] | furthest | wrong object |",
        "|---|---|---|---|---|---|---|",
    ]
    lines += [
        f"| {e.episode + 1} | {e.seed} | {e.instruction} | {'yes' if e.success else 'no'} | {e.sim_time:.1f} | "
        f"{'-' if e.success else e.furthest} | {', '.join(e.wrong_objects) or '-'} |"
        for e in r.records
    ]
    if r.files:
        lines += ["", "Files: " + ", ".join(f"{k} `{v}`" for k, v in r.files.items())]
    return "\n".join(lines) + "\n"
