"""Episode bags for the data tests, made from the real MuJoCo sim and the real bridge core.

`record_sim_episode` runs the scripted expert through `ros2_vla.evaluation.episode.run_episode` on a
Simulation that also records what sim_node, bridge_node and the expert would publish (joint states
at the config's rate, camera frames at each camera's rate, the bridge's trajectories as the
controllers took them, the expert's chunks), then writes one rosbag2 MCAP episode with rosbags and
the package's type store. Log times are the sim clock plus a fixed epoch, as a recorder stamps them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from rosbags.rosbag2 import StoragePlugin, Writer

from ros2_vla.bringup import NAMES
from ros2_vla.config import RobotConfig, load_robot_config
from ros2_vla.data.episode import CUSTOM_DATA_KEY, EpisodeMeta, episode_topics
from ros2_vla.data.typestore import typestore
from ros2_vla.evaluation.episode import ExpertPolicy, run_episode
from ros2_vla.sim.world import Simulation

EPOCH_NS = 1_750_000_000 * 10**9  # recordings start at a realistic wall-clock time


@dataclass
class Recorded:
    """What one sim episode published, in sim seconds."""

    robot: RobotConfig
    instruction: str = ""
    success: bool = False
    messages: list[tuple[float, str, object]] = field(default_factory=list)  # (time, topic, rosbags message)
    chunks: list[tuple[float, np.ndarray]] = field(default_factory=list)  # (time, (H, D) expert chunk)


class _RecordingSim(Simulation):
    """A Simulation that notes joint states, frames and accepted trajectories as sim_node would publish them."""

    def __init__(self, robot: RobotConfig, seed: int, cameras: bool, record_commands: bool) -> None:
        self.out = Recorded(robot)
        self._with_cameras = cameras
        self._record_commands = record_commands
        super().__init__(robot, seed=seed)

    def reset(
        self, seed: int | None = None, start_jitter: float = 0.0, disturbance: float = 0.0, slip: float = 0.0
    ) -> None:
        super().reset(seed, start_jitter, disturbance, slip)
        self.out.messages.clear()
        self._sent = {"js": 0} | (
            {c.name: 0 for c in self.robot.cameras} if self._with_cameras else {}
        )  # publications so far

    def _due(self, key: str, rate_hz: float, now: float) -> bool:
        """True once per period of `rate_hz` (counted, so no drift): the publisher's timer fired."""
        if now + 1e-6 < self._sent[key] / rate_hz:
            return False
        self._sent[key] = int(np.floor((now + 1e-6) * rate_hz)) + 1
        return True

    def step_until(self, t: float) -> None:
        super().step_until(t)
        now = self.time
        if self._due("js", self.robot.joint_state_rate_hz, now):
            js = self.joint_state()
            self.out.messages.append(
                (now, self.robot.joint_states_topic, joint_state_msg(now, js.names, js.positions, js.velocities))
            )
        for cam in self.robot.cameras:
            if cam.name in self._sent and self._due(cam.name, cam.rate_hz, now):
                self.out.messages.append((now, cam.topic, image_msg(now, self.render(cam.name))))

    def command(self, topic, trajectory) -> None:
        super().command(topic, trajectory)  # a refused trajectory raises before it is noted
        if self._record_commands:
            self.out.messages.append((self.time, topic, trajectory_msg(trajectory)))


def _stamp(t: float):
    T = typestore().types
    ns = EPOCH_NS + int(round(t * 1e9))
    return T["std_msgs/msg/Header"](
        stamp=T["builtin_interfaces/msg/Time"](sec=ns // 10**9, nanosec=ns % 10**9), frame_id=""
    )


def joint_state_msg(t: float, names, positions, velocities=None):
    T = typestore().types
    pos = np.asarray(positions, dtype=np.float64)
    vel = np.asarray(velocities if velocities is not None else np.zeros_like(pos), dtype=np.float64)
    return T["sensor_msgs/msg/JointState"](
        header=_stamp(t), name=list(names), position=pos, velocity=vel, effort=np.zeros(0, dtype=np.float64)
    )


def image_msg(t: float, rgb: np.ndarray):
    T = typestore().types
    h, w = rgb.shape[:2]
    return T["sensor_msgs/msg/Image"](
        header=_stamp(t),
        height=h,
        width=w,
        encoding="rgb8",
        is_bigendian=0,
        step=w * 3,
        data=np.ascontiguousarray(rgb, dtype=np.uint8).reshape(-1),
    )


def trajectory_msg(trajectory):
    """A sim controller's JointTrajectory as trajectory_msgs (zero stamp: start on receipt, as the bridge sends)."""
    T = typestore().types
    Duration = T["builtin_interfaces/msg/Duration"]
    points = []
    for p in trajectory.points:
        ns = int(round(p.time_from_start * 1e9))
        points.append(
            T["trajectory_msgs/msg/JointTrajectoryPoint"](
                positions=np.asarray(p.positions, dtype=np.float64),
                velocities=np.asarray(p.velocities, dtype=np.float64),
                accelerations=np.zeros(0),
                effort=np.zeros(0),
                time_from_start=Duration(sec=ns // 10**9, nanosec=ns % 10**9),
            )
        )
    header = T["std_msgs/msg/Header"](stamp=T["builtin_interfaces/msg/Time"](sec=0, nanosec=0), frame_id="")
    return T["trajectory_msgs/msg/JointTrajectory"](
        header=header, joint_names=list(trajectory.joint_names), points=points
    )


def string_msg(text: str):
    return typestore().types["std_msgs/msg/String"](data=text)


def chunk_msg(t: float, robot: RobotConfig, values: np.ndarray, instruction: str, sequence: int):
    T = typestore().types
    values = np.asarray(values, dtype=np.float32)
    return T["ros2_vla/msg/ActionChunk"](
        header=_stamp(t),
        embodiment=robot.name,
        action_space=robot.action.space,
        dimension_names=list(robot.action.dimension_names),
        dt=robot.action.dt,
        horizon=values.shape[0],
        values=values.reshape(-1),
        tokens=np.zeros(0, dtype=np.uint16),
        num_bins=0,
        low=np.zeros(0, dtype=np.float32),
        high=np.zeros(0, dtype=np.float32),
        normalized=np.zeros(0, dtype=np.bool_),
        instruction=instruction,
        policy="expert",
        sequence=sequence,
        inference_time=0.0,
    )


def simulate(
    robot: str | RobotConfig,
    seed: int,
    kind: str = "pick",
    time_limit: float = 3.0,
    *,
    cameras: bool = True,
    commands: bool = True,
) -> Recorded:
    """Run the expert for up to `time_limit` [s] of sim time and return what was published."""
    robot = load_robot_config(robot) if isinstance(robot, str) else robot
    sim = _RecordingSim(robot, seed, cameras, commands)
    expert = ExpertPolicy(robot, sim)
    chunks: list[tuple[float, np.ndarray]] = []

    def policy(obs):
        values = expert(obs)
        chunks.append((obs.time, values))
        return values

    policy.reset = expert.reset  # type: ignore[attr-defined]
    result = run_episode(robot, seed, kind, policy, sim=sim, time_limit=time_limit)
    out = sim.out
    out.success, out.instruction, out.chunks = result.success, result.task.instruction, chunks
    out.messages.append((0.0, NAMES.sim_task, string_msg(out.instruction)))
    out.messages.append((0.0, NAMES.instruction, string_msg(out.instruction)))
    for i, (t, values) in enumerate(chunks):
        out.messages.append((t, NAMES.action_chunk, chunk_msg(t, robot, values, out.instruction, i + 1)))
    sim.cameras.close()
    return out


def write_bag(
    path: Path,
    rec: Recorded,
    meta: EpisodeMeta | None = None,
    skip_topics: tuple[str, ...] = (),
    topics: dict[str, str] | None = None,
) -> Path:
    """Write `rec` as one rosbag2 MCAP episode folder at `path` (which must not exist)."""
    store = typestore()
    topics = dict(topics or episode_topics(rec.robot, sim=True))
    for t in skip_topics:
        topics.pop(t, None)
    meta = meta or EpisodeMeta(
        robot=rec.robot.name, task="pick", instruction=rec.instruction, success=None, demonstrator="expert"
    )
    writer = Writer(path, version=9, storage_plugin=StoragePlugin.MCAP)
    writer.open()
    connections = {topic: writer.add_connection(topic, msgtype, typestore=store) for topic, msgtype in topics.items()}
    for t, topic, msg in sorted(rec.messages, key=lambda m: m[0]):
        if topic in connections:
            writer.write(connections[topic], EPOCH_NS + int(round(t * 1e9)), store.serialize_cdr(msg, topics[topic]))
    writer.set_custom_data(CUSTOM_DATA_KEY, meta.to_json())
    writer.close()
    return path


def record_sim_episode(
    path: Path,
    robot: str = "franka",
    seed: int = 0,
    kind: str = "pick",
    time_limit: float = 3.0,
    *,
    success: bool | None | str = "sim",
    cameras: bool = True,
    commands: bool = True,
) -> Path:
    """Simulate and write one episode bag at `path`; success "sim" labels it with the sim's verdict."""
    rec = simulate(robot, seed, kind, time_limit, cameras=cameras, commands=commands)
    label = rec.success if success == "sim" else success
    meta = EpisodeMeta(
        robot=rec.robot.name, task=kind, instruction=rec.instruction, success=label, seed=seed, demonstrator="expert"
    )
    return write_bag(path, rec, meta)
