"""`ros2-vla record ROBOT OUT --sim --expert --in-process`: the expert's demos without DDS, as fast as the CPU allows.

The sim, the scripted expert and the bridge core run in one process on one sim clock (`run_episode`,
the loop `ros2-vla eval` plays). What the live graph would publish is built as its nodes build it
(`ros2_vla.ros.convert`, the driver's joint-state split), serialized as exact CDR (`ros2_vla.ros.cdr`)
and written by the live recorder's own `EpisodeRecorder`: the same bag layout, topics, message types,
offered QoS, EpisodeMeta and labels. Stamps are ROS times: the episode's start on the wall clock plus
sim time; a message's log time is when it was published. With `--jobs N`, N processes record the
seeds; each episode goes to the folder its seed's place gives it, so the folders hold the same
episodes whatever N is.

Not as in the live graph: the bridge arms at the first joint states (live: after the recorder started);
chunks reach the bridge DDS_DELAY after their observation and commands reach the controllers DDS_DELAY
after the tick, with no CPU contention; nothing comes on /vla/instruction (nor does it live).
"""

from __future__ import annotations

import argparse
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass, replace
from multiprocessing import get_context
from pathlib import Path

import numpy as np
from sensor_msgs.msg import JointState
from std_msgs.msg import Bool, String

from ros2_vla.actions.chunk import Chunk
from ros2_vla.bridge.bridge import TrajectoryCommand
from ros2_vla.bridge.status import BridgeState
from ros2_vla.bringup import NAMES
from ros2_vla.config import RobotConfig, load_robot_config
from ros2_vla.data.bag_writer import EPISODE_PREFIX, next_episode_dir
from ros2_vla.data.episode import EpisodeMeta, episode_topics
from ros2_vla.data.recording import EpisodeRecorder, episode_summary
from ros2_vla.driver_profile import DriverProfile, driver_joint_state, load_driver_profile
from ros2_vla.errors import ConfigError
from ros2_vla.evaluation.episode import ExpertPolicy, episode_task, run_episode
from ros2_vla.evaluation.eval_config import EpisodeConfig
from ros2_vla.nodes.recorder_node import CARRY_OVER, offered_qos
from ros2_vla.parameters import EXPERT_PERIOD, RECORDER_QUEUE_SIZE
from ros2_vla.ros.cdr import to_cdr
from ros2_vla.ros.convert import bridge_status_msg, chunk_to_msg, image_msg, joint_trajectory_msg, sec_to_time
from ros2_vla.sim.phrasings import DEFAULT_PHRASING, instruction_for
from ros2_vla.sim.world import SimJointState, Simulation


@dataclass(frozen=True)
class DemoSettings:
    """What every episode of one `record --in-process` run shares (the command's options)."""

    robot: str
    out: str
    variant: str = ""
    timeout: float = 60.0  # [s] sim time before an episode without success ends as a failure
    hold: float = 1.0  # [s] recorded after success
    expert_period: float = EXPERT_PERIOD  # [s] between the expert's chunks
    start_jitter: float = 0.0  # [rad]
    disturbance: float = 0.0  # [rad]
    slip: float = 0.0  # chance [0, 1]
    task_kind: str = ""
    phrasing: str = DEFAULT_PHRASING
    task: str = ""  # the task label stored with every episode (default: task_kind)
    notes: str = ""

    @classmethod
    def from_args(cls, args: argparse.Namespace, out: Path) -> DemoSettings:
        return cls(
            robot=args.robot,
            out=str(out),
            variant=args.variant,
            timeout=args.timeout,
            hold=args.hold,
            expert_period=EXPERT_PERIOD if args.expert_period is None else args.expert_period,
            start_jitter=args.start_jitter,
            disturbance=args.disturbance,
            slip=args.slip,
            task_kind=args.task_kind,
            phrasing=args.phrasing,
            task=args.task,
            notes=args.notes,
        )


class BagTap:
    """An `EpisodeTap` that writes what the graph publishes into an open episode of `recorder`."""

    def __init__(self, robot: RobotConfig, profile: DriverProfile, recorder: EpisodeRecorder, t0_ns: int) -> None:
        self.robot = robot
        self.recorder = recorder
        self.t0_ns = t0_ns  # [ns] the ROS time of sim time zero
        self._sources = [s for s in profile.joint_states if s.topic in recorder.topics]
        self._profile = profile
        self._cameras = {c.name: c.topic for c in robot.cameras}
        self._types = recorder.topics  # topic -> message type

    def _ns(self, t: float) -> int:
        return self.t0_ns + round(t * 1e9)

    def _write(self, topic: str, msg, t: float) -> None:
        self.recorder.on_message(topic, to_cdr(msg, self._types[topic]), self._ns(t))

    def task(self, instruction: str) -> None:
        """/sim/task, latched: the recorder opens the episode with it."""
        self.recorder.on_message(
            NAMES.sim_task, to_cdr(String(data=instruction), self._types[NAMES.sim_task]), self.t0_ns
        )
        self.recorder.note_instruction(instruction)

    def joint_state(self, t: float, state: SimJointState) -> None:
        stamp = sec_to_time(self._ns(t) * 1e-9)
        for source in self._sources:
            n, p, v = driver_joint_state(
                self.robot, self._profile, source, state.names, state.positions.tolist(), state.velocities.tolist()
            )
            msg = JointState(name=n, position=p, velocity=v)
            msg.header.stamp = stamp
            self._write(source.topic, msg, t)

    def images(self, t: float, images: dict[str, np.ndarray]) -> None:
        stamp = sec_to_time(self._ns(t) * 1e-9)  # one capture instant for the set, as sim_node stamps it
        for name, rgb in images.items():
            self._write(self._cameras[name], image_msg(rgb, stamp, f"{name}_optical_frame"), t)

    def chunk(self, t: float, chunk: Chunk) -> None:
        self._write(NAMES.action_chunk, chunk_to_msg(replace(chunk, stamp=self._ns(chunk.stamp) * 1e-9)), t)

    def bridge_state(self, t: float, state: BridgeState) -> None:
        self._write(NAMES.bridge_status, bridge_status_msg(state, self.robot.name, sec_to_time(self._ns(t) * 1e-9)), t)

    def commands(self, t: float, commands: list[TrajectoryCommand]) -> None:
        for c in commands:
            stamp = None if c.start is None else self._ns(c.start) * 1e-9  # a stop plays at its stamp
            msg = joint_trajectory_msg(c.joint_names, c.times_from_start, c.positions, c.velocities, stamp)
            self._write(c.topic, msg, t)

    def success(self, t: float, success: bool) -> None:
        self._write(NAMES.sim_success, Bool(data=success), t)
        self.recorder.note_sim_success(success)


def check_default_outputs(robot: RobotConfig, profile: DriverProfile) -> None:
    """ConfigError unless every command of `profile` is a trajectory topic the bridge's commands map onto one to
    one, as with the sim's default driver profile (other drivers' actions and streams are not replayed here)."""
    for arm in robot.arms:
        driver = profile.arm(arm.name)
        gripper = driver.gripper.interface if driver.gripper is not None else "in_trajectory"
        if driver.command.interface != "joint_trajectory" or gripper not in ("joint_trajectory", "in_trajectory"):
            raise ConfigError(
                f"--in-process records the sim's default driver profile; {robot.name}'s arm {arm.name} "
                f"is commanded by {driver.command.interface}, its gripper by {gripper}"
            )


class DemoRecorder:
    """Records episodes of one robot, one after another, in this process."""

    def __init__(self, settings: DemoSettings) -> None:
        self.settings = settings
        self.robot = load_robot_config(settings.robot, variant=settings.variant or None)
        self.profile = load_driver_profile(self.robot, "")
        check_default_outputs(self.robot, self.profile)
        self.sim = Simulation(self.robot, seed=0)
        self.topics = episode_topics(self.robot, sim=True)
        self.qos = offered_qos(self.topics)

    def record(self, seed: int, name: str) -> dict:
        """Episode `seed` into OUT/`name`; returns its summary (`episode_summary`), as recorder_node's stop does."""
        s = self.settings
        task = episode_task(self.sim, seed, s.task_kind, s.disturbance, s.slip, s.start_jitter)
        instruction = instruction_for(task, s.phrasing, seed)
        # block: nothing is lost to a full queue, the episode waits for the disk instead
        recorder = EpisodeRecorder(
            s.out, self.topics, self.qos, RECORDER_QUEUE_SIZE, sim=True, carry_over=CARRY_OVER, block=True
        )
        t0_ns = time.time_ns()
        tap = BagTap(self.robot, self.profile, recorder, t0_ns)
        tap.task(instruction)
        recorder.start(t0_ns, name)
        config = EpisodeConfig(
            instruction=instruction,
            time_limit=s.timeout,
            policy_period=s.expert_period,
            start_jitter=s.start_jitter,
            disturbance=s.disturbance,
            slip=s.slip,
            hold=s.hold,
        )
        result = run_episode(
            self.robot, seed, s.task_kind, ExpertPolicy(self.robot, self.sim), config, sim=self.sim, tap=tap
        )
        end = result.sim_time + s.hold if result.success else s.timeout
        meta = EpisodeMeta(
            robot=self.robot.name,
            variant=s.variant,
            task=s.task or s.task_kind,
            notes=s.notes,
            seed=seed,
            demonstrator="expert",
        )
        meta = recorder.stop(meta, result.success, t0_ns + round(end * 1e9))
        return episode_summary(recorder.last_episode, meta)


_WORKER: DemoRecorder | None = None  # one per worker process: the sim is built once


def _start_worker(settings: DemoSettings) -> None:
    global _WORKER
    _WORKER = DemoRecorder(settings)


def _record_in_worker(seed: int, name: str) -> dict:
    assert _WORKER is not None
    return _WORKER.record(seed, name)


def episode_names(out: Path, count: int) -> list[str]:
    """Folder names for `count` new episodes in `out`: numbered on from what is there, in seed order."""
    first = int(next_episode_dir(out).name[len(EPISODE_PREFIX) :])
    return [f"{EPISODE_PREFIX}{first + i:04d}" for i in range(count)]


def record_demos(settings: DemoSettings, seeds: list[int], jobs: int = 1, on_episode=None) -> list[dict]:
    """Record one episode per seed into settings.out with `jobs` processes; `on_episode(index, summary)` as each
    ends (in the order they end). Returns the summaries in seed order."""
    if jobs < 1:
        raise ConfigError(f"--jobs must be >= 1, got {jobs}")
    out = Path(settings.out)
    out.mkdir(parents=True, exist_ok=True)
    names = episode_names(out, len(seeds))
    done: dict[int, dict] = {}
    if jobs == 1:
        recorder = DemoRecorder(settings)
        for i, (seed, name) in enumerate(zip(seeds, names)):
            done[i] = recorder.record(seed, name)
            if on_episode is not None:
                on_episode(i, done[i])
        return [done[i] for i in range(len(seeds))]
    # spawn, not fork: a forked child would share the parent's GL and DDS state.
    with ProcessPoolExecutor(
        jobs, mp_context=get_context("spawn"), initializer=_start_worker, initargs=(settings,)
    ) as pool:
        futures = {pool.submit(_record_in_worker, seed, name): i for i, (seed, name) in enumerate(zip(seeds, names))}
        for future in as_completed(futures):
            i = futures[future]
            done[i] = future.result()
            if on_episode is not None:
                on_episode(i, done[i])
    return [done[i] for i in range(len(seeds))]
