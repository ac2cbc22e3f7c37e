"""Closed-loop evaluation: a policy runs sim episodes on held-out seeds through the real bridge core.

Each episode is `ros2_vla.evaluation.episode.run_episode`: the sim renders the cameras the policy reads at
the config's resolution, the policy's chunks go through `Bridge` exactly as bridge_node plans them,
and the task's success check decides. Held-out seeds start at `HELD_OUT_SEED`: demos for training
are recorded with seeds below it (sim_node and `ros2-vla record` start at 0), so an evaluation
never sees a training scene. The instruction is the task's template, a training paraphrase, or a
held-out paraphrase (`ros2_vla.sim.phrasings`), the same one for the same seed on every run.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable
from pathlib import Path

from ros2_vla.config import RobotConfig, load_robot_config
from ros2_vla.errors import ConfigError
from ros2_vla.evaluation import episode
from ros2_vla.evaluation.adapter import BackendPolicy
from ros2_vla.evaluation.eval_config import EvalConfig
from ros2_vla.evaluation.report import EpisodeRecord, EvalReport, summarize, write_report
from ros2_vla.evaluation.seeds import HELD_OUT_SEED
from ros2_vla.evaluation.video import Film
from ros2_vla.parameters import EXPERT_PERIOD
from ros2_vla.policies.base import Policy as Backend
from ros2_vla.sim.phrasings import instruction_for
from ros2_vla.sim.world import Simulation


class _Timed:
    """Wraps an episode policy: wall time of each call [s], and calls that gave no chunk."""

    def __init__(self, policy: episode.EpisodePolicy) -> None:
        self.policy = policy
        self.latencies: list[float] = []
        self.declined = 0

    def reset(self) -> None:
        self.latencies, self.declined = [], 0
        if hasattr(self.policy, "reset"):
            self.policy.reset()

    def observe_delay(self, seconds: float) -> None:
        if hasattr(self.policy, "observe_delay"):
            self.policy.observe_delay(seconds)

    def __call__(self, obs: episode.EpisodeObservation):
        start = time.perf_counter()
        out = self.policy(obs)
        self.latencies.append(time.perf_counter() - start)
        self.declined += out is None
        return out


def as_episode_policy(robot: RobotConfig, policy: Backend | episode.EpisodePolicy) -> episode.EpisodePolicy:
    """A vla_node backend (has `spec` and `infer`) wrapped as vla_node feeds it; an episode policy as is."""
    if hasattr(policy, "spec") and hasattr(policy, "infer"):
        return BackendPolicy(robot, policy)
    if not callable(policy):
        raise ConfigError(f"evaluate: {type(policy).__name__} is neither a policy backend nor an episode policy")
    return policy


def frame_period(robot: RobotConfig) -> float:
    """[s] between frames of the fastest camera (0.1 s at 10 Hz). vla_node runs a fast policy on each
    new observation, so in the graph it sends at least one chunk per such frame (with two cameras
    not in step, one per frame of either: about 20 chunks/s in the Franka demo); the evaluation asks
    at the camera's rate, nearer the graph than sim_node's expert period (EXPERT_PERIOD, 0.25 s)."""
    rates = [c.rate_hz for c in robot.cameras]
    return 1.0 / max(rates) if rates else EXPERT_PERIOD


def policy_name(policy: episode.EpisodePolicy) -> str:
    if isinstance(policy, episode.ExpertPolicy):
        return "scripted_expert"
    return getattr(policy, "name", type(policy).__name__)


def evaluate(
    robot: RobotConfig | str,
    policy: Backend | episode.EpisodePolicy,
    config: EvalConfig = EvalConfig(),
    out_dir: Path | None = None,
    log: Callable[[str], None] | None = print,
) -> EvalReport:
    """Run `config.episodes` episodes of `policy` on `robot`; return the report, and with `out_dir`
    write results.json, summary.md and (video_episodes > 0) episodes.mp4 / episodes.gif there.

    policy: a vla_node backend (`ros2_vla.policies.base.Policy`: fed through `BackendPolicy`) or any
    `episode.EpisodePolicy` callable (e.g. `episode.ExpertPolicy`); one with a `cameras` attribute gets
    those cameras rendered into each observation. log: called with one line per episode (None: quiet).
    """
    robot = load_robot_config(robot) if isinstance(robot, str) else robot
    if config.policy_period is None:
        config = dataclasses.replace(config, policy_period=frame_period(robot))
    policy = as_episode_policy(robot, policy)
    timed = _Timed(policy)
    cameras = tuple(getattr(policy, "cameras", ()))
    film = Film(robot, config.video_camera) if out_dir is not None and config.video_episodes > 0 else None
    sim = Simulation(robot, seed=config.seed)
    records: list[EpisodeRecord] = []
    latencies: list[float] = []
    try:
        for index, seed in enumerate(config.seeds):
            task = episode.episode_task(sim, seed, config.kind)
            instruction = instruction_for(task, config.phrasing, seed)
            filming = film is not None and index < config.video_episodes
            if filming:
                film.start(f"ep {index + 1} seed {seed}", instruction)
            run = episode.EpisodeConfig(
                instruction=instruction,
                time_limit=config.time_limit,
                policy_period=config.policy_period,
                cameras=cameras,
                blend=config.blend,
                chunk_delay=config.chunk_delay,
                check_collisions=config.check_collisions,
            )
            result = episode.run_episode(
                robot, seed, config.kind, timed, run, sim=sim, monitor=film.monitor if filming else None
            )
            if filming:
                film.finish(result.success)
            records.append(EpisodeRecord.from_result(index, result, timed.latencies, timed.declined))
            latencies += timed.latencies
            if log is not None:
                log(records[-1].line(config.episodes))
    finally:
        sim.close()
    report = summarize(robot.name, policy_name(policy), config, records, latencies, HELD_OUT_SEED)
    if out_dir is not None:
        videos = film.write(out_dir) if film is not None else []
        report = write_report(report, out_dir, videos)
    return report
