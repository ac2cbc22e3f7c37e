"""One simulated episode, in process and as fast as the CPU allows, through the real bridge core.

The loop replays what `ros2-vla launch ROBOT --sim` does over DDS, on one sim clock and without
ROS: sim_node's physics timer publishes joint states at the config's `joint_state_rate_hz`;
bridge_node's `Bridge` takes them (`update_joint_state`), plans each chunk (`on_chunk`, then a tick
at once, as the node does) and streams `tick` commands at `control_rate_hz` into the simulated
trajectory controllers (`Simulation.command`); the policy is asked for a chunk every
`policy_period` [s] of sim time; success is checked every `success_period`, as sim_node does.
Bridge commands reach the controllers `command_delay` after the tick (DDS delivery) and joint
states arrive at once. Sim time stands still while the policy thinks, and by default each chunk
reaches the bridge `DDS_DELAY` after its observation. A longer `chunk_delay` plays the graph on a
busy CPU instead, where the arm moves on meanwhile: there a chunk arrives a frame or two after its
observation (frame age, inference, transport) while new ones keep coming at about the camera's rate,
so here requests go on every `policy_period` while earlier chunks are still on their way.

A policy is any callable `policy(obs: EpisodeObservation) -> (H, D) array` in `robot.action.dimension_names`
order at `robot.action.dt` (or a full `Chunk`, for tokenized or normalized output, or None: no chunk
this time, as when vla_node refuses an observation). If it has a `reset()` method, it is called before
the episode's first observation. `ExpertPolicy` wraps the scripted expert in that shape.

At every success check the episode also notes "wrong picks": cubes other than the task's that are
lifted and held by a gripper (`wrong_picks`), so a policy that grabs the wrong color is told apart
from one that does nothing, and how far it got with its own cubes (`tasks.progress`: reached,
grasped, lifted), so a failure says where it stopped. A `monitor(sim, bridge, now)` callback, if
given, runs there too (videos).

A `tap` (`EpisodeTap`) is told everything the graph would publish, when it would publish it: joint
states, camera sets at each camera's rate (one render per set, as sim_node's synchronized rig), the
policy's chunks, the bridge's answers and its periodic status, its trajectory commands, and the success
flag. `ros2-vla record --in-process` writes them to the same bags the live recorder writes. With
`hold` the episode runs on after success, no chunk asked for, as a recorded demo ends.
"""

from __future__ import annotations

import dataclasses
import time
from collections import Counter, deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import NamedTuple, Protocol, Union

import numpy as np

from ros2_vla.actions.chunk import Chunk
from ros2_vla.bridge.bridge import Bridge, TrajectoryCommand
from ros2_vla.bridge.status import BridgeCode, BridgeState
from ros2_vla.config import RobotConfig, load_robot_config
from ros2_vla.errors import ConfigError, TrajectoryError
from ros2_vla.evaluation.eval_config import EpisodeConfig
from ros2_vla.parameters import param
from ros2_vla.sim import controller as jtc
from ros2_vla.sim.cameras import camera_sets
from ros2_vla.sim.expert import ExpertObservation, ScriptedExpert
from ros2_vla.sim.scene import cube_name
from ros2_vla.sim.tasks import STAGES, Task, check_success, holder, lifted, progress, sample_task
from ros2_vla.sim.world import SimJointState, Simulation
from ros2_vla.trajectory.blend_config import BlendConfig

_GOOD_CODES = (
    BridgeCode.OK,
    BridgeCode.IDLE,
    BridgeCode.DECELERATE_FOR_SINGULARITY,
    BridgeCode.DECELERATE_FOR_COLLISION,
)


class EpisodeObservation(NamedTuple):
    """What a policy is given at each chunk request."""

    time: float  # [s] sim time since the episode's reset
    instruction: str  # the task in words, as /sim/task carries it
    joint_state: SimJointState  # measured joints, as /joint_states carries them
    images: dict[str, np.ndarray]  # camera name -> (height, width, 3) uint8 RGB; only the cameras asked for
    task: Task  # privileged: the task itself (scripted experts, diagnostics), not for learned policies
    state: ExpertObservation  # privileged: true TCP and object poses, world frame


EpisodePolicy = Callable[[EpisodeObservation], Union[np.ndarray, Chunk, None]]
Monitor = Callable[[Simulation, Bridge, float], None]  # (sim, bridge, sim time [s]) at every success check


class EpisodeTap(Protocol):
    """What the graph publishes during an episode, each at its sim time [s] of publication."""

    def joint_state(self, t: float, state: SimJointState) -> None: ...  # sim_node, at joint_state_rate_hz

    def images(self, t: float, images: dict[str, np.ndarray]) -> None: ...  # one camera set, captured at t

    def chunk(self, t: float, chunk: Chunk) -> None: ...  # the policy's chunk, stamped with its observation

    def bridge_state(self, t: float, state: BridgeState) -> None: ...  # an answer to a chunk, or the periodic one

    def commands(self, t: float, commands: list[TrajectoryCommand]) -> None: ...  # the bridge's trajectories

    def success(self, t: float, success: bool) -> None: ...  # sim_node's /sim/success, at 10 Hz


@dataclass(frozen=True)
class EpisodeResult:
    """How one simulated episode went: its task, success and times, and what the policy and the bridge did."""

    seed: int  # scene and task seed
    task: Task
    success: bool  # the task's check held at some success check before the time limit
    sim_time: float  # [s] sim time at success, or at the time limit
    chunks: int  # chunks the policy produced
    bad_chunks: int  # chunks the bridge answered with a code other than OK, IDLE or DECELERATE
    bridge_codes: dict[str, int]  # BridgeCode name -> chunks the bridge answered with it
    rejected_trajectories: int  # bridge commands the simulated controllers refused
    wall_time: float  # [s] the episode took on this machine
    instruction: str = ""  # what the policy was told
    wrong_objects: tuple[str, ...] = ()  # other cubes seen lifted and held at a success check (`wrong_picks`)
    furthest: str = STAGES[0]  # the furthest of `tasks.STAGES` seen at a success check: where a failure stopped


class ExpertPolicy:
    """The scripted expert as an `EpisodePolicy`: made for the observation's task at the first call after `reset`."""

    def __init__(self, robot: RobotConfig, sim: Simulation | None = None) -> None:
        self.robot = robot
        self.scene = sim.scene if sim is not None else None
        self.expert: ScriptedExpert | None = None

    def reset(self) -> None:
        self.expert = None

    def __call__(self, obs: EpisodeObservation) -> np.ndarray:
        if self.expert is None or self.expert.task != obs.task:
            self.expert = ScriptedExpert(self.robot, obs.task, scene=self.scene)
        return self.expert.act(obs.state)


def episode_task(
    sim: Simulation, seed: int, kind: str = "", disturbance: float = 0.0, slip: float = 0.0, start_jitter: float = 0.0
) -> Task:
    """Reset `sim` to `seed` and draw its task exactly as sim_node does (kind "" = drawn from the seed);
    disturbance: [rad] the servo disturbance, slip: the grasp slip's chance, start_jitter: [rad] the
    start pose's spread (`Simulation.reset`)."""
    sim.reset(seed, start_jitter=start_jitter, disturbance=disturbance, slip=slip)
    return sample_task(sim.robot, np.random.default_rng(seed), sim=sim, kind=kind)


def wrong_picks(sim: Simulation, task: Task) -> tuple[str, ...]:
    """Body names of the cubes the task is not about that are lifted and held by a gripper right now."""
    others = (cube_name(c) for c in sim.scene.cube_colors if cube_name(c) not in task.objects)
    return tuple(obj for obj in others if lifted(sim, obj) and holder(sim, obj) is not None)


def run_episode(
    robot: RobotConfig | str,
    seed: int,
    kind: str,
    policy_fn: EpisodePolicy,
    config: EpisodeConfig | None = None,
    *,
    sim: Simulation | None = None,
    monitor: Monitor | None = None,
    on_chunk: Callable[[Chunk, BridgeState], None] | None = None,
    tap: EpisodeTap | None = None,
    **settings,
) -> EpisodeResult:
    """Run one episode of task `kind` ("" = drawn from the seed) on `robot` from scene `seed`, as `config`
    says (or EpisodeConfig(**settings): `run_episode(..., time_limit=5.0)` is a shorthand).

    sim: a Simulation of the same robot to reuse (saves building the model); it is reset here.
    monitor: called at every success check. on_chunk: called with each chunk and the bridge's status after
    taking it (benchmarks read the switch jumps). tap: told what the graph would publish (module docstring).
    """
    if config is not None and settings:
        raise ConfigError(f"run_episode: pass an EpisodeConfig or its fields {sorted(settings)}, not both")
    c = config if config is not None else EpisodeConfig(**settings)
    robot = load_robot_config(robot) if isinstance(robot, str) else robot
    if sim is None:
        sim = Simulation(robot, seed=seed)
    elif sim.robot.name != robot.name:
        raise ConfigError(
            f"run_episode: the sim is a {sim.robot.name}, not a {robot.name}; pass a Simulation of {robot.name}"
        )
    periods = {
        "state": 1.0 / robot.joint_state_rate_hz,
        "policy": c.policy_period,
        "control": 1.0 / robot.control_rate_hz,
        "success": c.success_period,
    }
    sets: dict[str, tuple[str, ...]] = {}  # schedule name -> the camera set captured then
    if tap is not None:
        periods["status"] = 1.0 / float(param("bridge", "status_rate_hz").default)
        for period, names in camera_sets(robot.cameras).items():
            sets[f"cameras {period}"] = names
            periods[f"cameras {period}"] = period
    if c.command_delay >= min(periods.values()):
        raise ConfigError(f"run_episode: command_delay {c.command_delay} s must be below every period {periods}")
    cameras, chunk_delay, command_delay = c.cameras, c.chunk_delay, c.command_delay
    for name in cameras:
        sim.cameras.spec(name)  # unknown names fail here, with the list of cameras
    start = time.perf_counter()
    task = episode_task(sim, seed, kind, c.disturbance, c.slip, c.start_jitter)
    instruction = c.instruction or task.instruction
    if hasattr(policy_fn, "reset"):
        policy_fn.reset()
    bridge = Bridge(robot, c.blend or BlendConfig(), check_collisions=c.check_collisions)
    clock = _Schedule(periods)
    chunks = rejected = 0
    codes: Counter[str] = Counter()
    wrong: set[str] = set()
    on_the_way: deque[tuple[Chunk, float]] = deque()  # chunks sent to the bridge, each with its arrival [s]
    now, success_at, furthest = 0.0, None, STAGES[0]
    while now <= c.time_limit and (success_at is None or now < success_at + c.hold):
        now, due = clock.next()
        sim.step_until(now)
        if "state" in due:
            state = sim.joint_state()
            if tap is not None:
                tap.joint_state(now, state)
            bridge.update_joint_state(list(state.names), state.positions.tolist(), now)
            if not bridge.enabled:
                bridge.set_enabled(True, now)  # the launcher's sim graph arms the bridge on the first states
        for name in due & sets.keys():
            tap.images(now, sim.render_set(sets[name]))
        if "control" in due:
            rejected += _deliver(sim, bridge.tick(now), now + command_delay, tap, now)
        if "policy" in due and bridge.enabled and success_at is None:
            out = policy_fn(_observe(sim, task, instruction, now, cameras))
            if out is not None:  # None: the policy declined this observation; nothing is sent, as with vla_node
                chunks += 1
                chunk = _as_chunk(out, robot, instruction, now, chunks)
                if tap is not None:
                    tap.chunk(now, chunk)
                # Delivered `chunk_delay` after the observation it is stamped with. (Its default is not zero:
                # with no delay at all the bridge's "skip" blending keeps step 0, which it drops at any real latency.)
                on_the_way.append((chunk, now + chunk_delay))
        while on_the_way and on_the_way[0][1] <= clock.peek():  # it arrives before the next event
            chunk, arrival = on_the_way.popleft()
            sim.step_until(arrival)
            state = bridge.on_chunk(chunk, arrival)
            codes[state.code.name] += 1
            if on_chunk is not None:
                on_chunk(chunk, state)
            if hasattr(policy_fn, "observe_delay"):  # as vla_node measures it (real-time chunking)
                policy_fn.observe_delay(arrival - chunk.stamp)
            # bridge_node sends the new plan at once, then answers
            rejected += _deliver(sim, bridge.tick(arrival), arrival + command_delay, tap, arrival)
            if tap is not None:
                tap.bridge_state(arrival, state)
        if "status" in due:
            tap.bridge_state(now, bridge.state(now))
        if "success" in due:
            if monitor is not None:
                monitor(sim, bridge, now)
            wrong.update(wrong_picks(sim, task))
            furthest = max(furthest, progress(sim, task), key=STAGES.index)
            if success_at is None and check_success(sim, task):
                success_at = now
            if tap is not None:
                tap.success(now, success_at is not None)
    bad = sum(n for name, n in codes.items() if BridgeCode[name] not in _GOOD_CODES)
    return EpisodeResult(
        seed,
        task,
        success_at is not None,
        now if success_at is None else success_at,
        chunks,
        bad,
        dict(codes),
        rejected,
        time.perf_counter() - start,
        instruction,
        tuple(sorted(wrong)),
        furthest,
    )


class _Schedule:
    """Periodic events on one clock: `next()` -> (time [s], names due then). Integer counts, no drift."""

    def __init__(self, periods: dict[str, float]) -> None:
        self.periods = periods
        self.counts = dict.fromkeys(periods, 0)

    def peek(self) -> float:
        """[s] when `next()` will be."""
        return min(self.counts[n] * p for n, p in self.periods.items())

    def next(self) -> tuple[float, set[str]]:
        t = self.peek()
        due = {n for n, p in self.periods.items() if self.counts[n] * p - t < 1e-9}
        for n in due:
            self.counts[n] += 1
        return t, due


def _observe(sim: Simulation, task: Task, instruction: str, now: float, cameras: tuple[str, ...]) -> EpisodeObservation:
    images = {name: sim.render(name) for name in cameras}
    return EpisodeObservation(now, instruction, sim.joint_state(), images, task, ExpertObservation.from_sim(sim))


def _as_chunk(out: np.ndarray | Chunk, robot: RobotConfig, instruction: str, now: float, sequence: int) -> Chunk:
    """The policy's output as the ActionChunk sim_node would publish, stamped at the observation."""
    if isinstance(out, Chunk):
        return dataclasses.replace(out, stamp=now, sequence=sequence)
    values = np.asarray(out, dtype=np.float32)
    dims = robot.action.dimension_names
    if values.ndim != 2 or values.shape[1] != len(dims):
        raise ConfigError(f"the policy returned shape {values.shape}; expected (H, {len(dims)}) for dimensions {dims}")
    return Chunk(
        stamp=now,
        embodiment=robot.name,
        action_space=robot.action.space,
        dimension_names=dims,
        dt=robot.action.dt,
        horizon=values.shape[0],
        values=values.reshape(-1),
        instruction=instruction,
        policy="episode",
        sequence=sequence,
    )


def _deliver(
    sim: Simulation, commands: list[TrajectoryCommand], at: float, tap: EpisodeTap | None = None, sent: float = 0.0
) -> int:
    """Run the sim to `at` [s], then hand it the bridge's commands (sent at `sent` [s], told to `tap`);
    returns how many it refused."""
    if not commands:
        return 0
    if tap is not None:
        tap.commands(sent, commands)
    sim.step_until(at)
    return sum(not _send(sim, c) for c in commands)


def _send(sim: Simulation, c: TrajectoryCommand) -> bool:
    """Hand one bridge command to its simulated controller, as sim_node does; False when refused."""
    velocities = c.velocities if c.velocities is not None else [()] * len(c.positions)  # None: positions only
    points = tuple(
        jtc.TrajectoryPoint(tuple(map(float, q)), float(t), tuple(map(float, v)))
        for t, q, v in zip(c.times_from_start, c.positions, velocities)
    )
    try:
        # A stop is stamped with the bridge's time, which is the sim's here; plans start on receipt.
        sim.command(c.topic, jtc.SimTrajectory(tuple(c.joint_names), points, 0.0 if c.start is None else c.start))
    except TrajectoryError:
        return False
    return True
