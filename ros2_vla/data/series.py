"""One episode's recorded time series, as the converter needs them: a first pass over the bag.

Joint states become a (J, S) array in the policy's state order, each camera a list of frame times
(frames themselves are decoded later, only those a dataset frame uses), gripper commands the paths
the controllers were told to follow, and the instructions in force. Every time is the bag's log
time (the recorder's clock, one clock for every topic) in seconds after the episode's first message.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ros2_vla.actions.chunk import chunk_from_message
from ros2_vla.actions.spaces import hold_dims
from ros2_vla.bringup import NAMES
from ros2_vla.config import ArmSpec, RobotConfig
from ros2_vla.data.bag_reader import EpisodeBag, decode, read_messages
from ros2_vla.data.chunk_log import ChunkLog, chunk_actions
from ros2_vla.data.episode import ACTION_CHUNK, IMAGE, JOINT_STATE, STRING, TRAJECTORY
from ros2_vla.errors import DatasetError, PolicyError
from ros2_vla.policies.encodings import decode_raw
from ros2_vla.policies.observation import decode_compressed, state_names

COMPRESSED_IMAGE = "sensor_msgs/msg/CompressedImage"
_SAME_CLOCK_NS = 10**9  # [ns] a command stamp within this of its log time is taken to be on the same clock


@dataclass(frozen=True)
class CommandLog:
    """The trajectory commands one gripper joint received: each one's arrival and path."""

    receipt: np.ndarray  # (M,) [s] when each command arrived, non-decreasing
    start: np.ndarray  # (M,) [s] its path's time zero: the header stamp, or the arrival for a zero stamp
    times: tuple[np.ndarray, ...]  # M arrays (P,) [s] time_from_start of the points
    positions: tuple[np.ndarray, ...]  # M arrays (P,) [m or rad] the gripper joint at those points

    def at(self, t: np.ndarray) -> np.ndarray:
        """Commanded position at times `t` (K,) [s]: the latest command that had arrived, interpolated
        along its path (held before its first and after its last point); NaN before any command."""
        t = np.asarray(t, dtype=np.float64)
        out = np.full(t.shape, np.nan)
        active = np.searchsorted(self.receipt, t, side="right") - 1
        for k, m in enumerate(active):
            if m >= 0:
                out[k] = np.interp(t[k] - self.start[m], self.times[m], self.positions[m])
        return out


@dataclass(frozen=True)
class CameraSeries:
    """One camera's recorded frames: their topic, log times and image shape."""

    topic: str  # the topic the frames came on (the config's, or its /compressed twin)
    times: np.ndarray  # (M,) [s] log time of every frame, in bag order
    shape: tuple[int, int, int]  # (height, width, 3) of the first frame


@dataclass(frozen=True)
class EpisodeSeries:
    """One episode's series from its bag: joint states, camera frame times, gripper commands, instructions, chunks."""

    bag: EpisodeBag
    robot: RobotConfig  # the episode's robot (with its variant)
    origin_ns: int  # [ns] log time that every time here is relative to
    state_names: tuple[str, ...]  # S joints: every arm joint, then each gripper (vla_node's order)
    state_times: np.ndarray  # (J,) [s] joint-state messages that completed the state
    state: np.ndarray  # (J, S) [rad or m] positions at those times
    cameras: dict[str, CameraSeries]  # camera name -> its frames
    grippers: dict[str, CommandLog]  # arm name -> commands to its gripper (absent: none recorded)
    instructions: tuple[tuple[float, str], ...]  # (time [s], text) on /vla/instruction, non-empty only
    sim_tasks: tuple[tuple[float, str], ...]  # (time [s], text) on /sim/task
    chunks: ChunkLog | None = None  # the chunks on /vla/action_chunk the bridge would take; None: none recorded


def camera_topics(bag: EpisodeBag, robot: RobotConfig) -> tuple[dict[str, str], list[str]]:
    """Camera name -> recorded topic (raw Image, or `<topic>/compressed`), and the cameras missing."""
    found, missing = {}, []
    for cam in robot.cameras:
        if bag.topics.get(cam.topic) == IMAGE:
            found[cam.name] = cam.topic
        elif bag.topics.get(cam.topic + "/compressed") == COMPRESSED_IMAGE:
            found[cam.name] = cam.topic + "/compressed"
        else:
            missing.append(cam.topic)
    return found, missing


def check_required_topics(bag: EpisodeBag, robot: RobotConfig) -> dict[str, str]:
    """DatasetError unless the bag has joint states and every configured camera, with messages; returns
    camera name -> recorded topic."""
    cams, missing = camera_topics(bag, robot)
    if bag.topics.get(robot.joint_states_topic) != JOINT_STATE:
        missing.insert(0, robot.joint_states_topic)
    if missing:
        raise DatasetError(
            f"{bag.path}: missing required topic(s) {missing} (robot {robot.name} needs its joint states "
            f"and every camera of config/{robot.name}.yaml); it has {sorted(bag.topics)}"
        )
    empty = [t for t in (robot.joint_states_topic, *cams.values()) if bag.counts.get(t, 0) == 0]
    if empty:
        raise DatasetError(f"{bag.path}: no messages on {empty}; the episode has no frames")
    return cams


def decode_image(bag: EpisodeBag, topic: str, msg) -> np.ndarray:
    """A decoded Image or CompressedImage message -> (H, W, 3) uint8 RGB; DatasetError naming bag and topic."""
    try:
        if bag.topics[topic] == COMPRESSED_IMAGE:
            return decode_compressed(bytes(msg.data), msg.format)
        return decode_raw(memoryview(msg.data), msg.encoding, msg.height, msg.width, msg.step, bool(msg.is_bigendian))
    except PolicyError as exc:
        raise DatasetError(f"{bag.path}: frame on {topic}: {exc}") from exc


def read_series(bag: EpisodeBag, robot: RobotConfig, with_chunks: bool = False) -> EpisodeSeries:
    """First pass over the bag: every series but the camera frames (times and first-frame size only);
    `with_chunks` also reads the action chunks (DatasetError for chunks that cannot label this robot)."""
    cams = check_required_topics(bag, robot)
    names = state_names(robot)
    gripper_topics = {_gripper_topic(arm): arm for arm in robot.arms if arm.gripper is not None}
    wanted = [robot.joint_states_topic, *cams.values(), *(t for t in gripper_topics if bag.topics.get(t) == TRAJECTORY)]
    wanted += [t for t in (NAMES.instruction, NAMES.sim_task) if bag.topics.get(t) == STRING]
    if with_chunks and bag.topics.get(NAMES.action_chunk) == ACTION_CHUNK:
        wanted.append(NAMES.action_chunk)
    latest: dict[str, float] = {}
    state_t, state_rows = [], []
    frames: dict[str, list[int]] = {c: [] for c in cams}
    shapes: dict[str, tuple[int, int, int]] = {}
    commands: dict[str, list] = {}
    chunks: list[tuple[int, int, np.ndarray]] = []
    texts: dict[str, list[tuple[int, str]]] = {NAMES.instruction: [], NAMES.sim_task: []}
    topic_camera = {t: c for c, t in cams.items()}
    for topic, t_ns, msg in read_messages(bag, wanted, raw_topics=set(cams.values())):
        if topic == robot.joint_states_topic:
            latest.update((n, p) for n, p in zip(msg.name, msg.position) if np.isfinite(p))
            if len(latest) >= len(names) and all(n in latest for n in names):
                state_t.append(t_ns)
                state_rows.append([latest[n] for n in names])
        elif topic in topic_camera:
            cam = topic_camera[topic]
            if cam not in shapes:
                shapes[cam] = decode_image(bag, topic, decode(bag, topic, t_ns, msg)).shape
            frames[cam].append(t_ns)
        elif topic in gripper_topics:
            _note_command(commands, gripper_topics[topic], msg, t_ns)
        elif topic == NAMES.action_chunk:
            _note_chunk(chunks, bag, robot, msg, t_ns)
        elif msg.data:
            texts[topic].append((t_ns, msg.data))
    if not state_t:
        raise DatasetError(
            f"{bag.path}: no complete joint state on {robot.joint_states_topic} (need {list(names)}); "
            f"the episode has no frames"
        )
    silent = [cams[c] for c, f in frames.items() if not f]
    if silent:
        raise DatasetError(f"{bag.path}: no messages on {silent}; the episode has no frames")
    origin = min([state_t[0], *(f[0] for f in frames.values())])

    def sec(ns) -> np.ndarray:
        return (np.asarray(ns, dtype=np.int64) - origin) / 1e9

    return EpisodeSeries(
        bag=bag,
        robot=robot,
        origin_ns=origin,
        state_names=names,
        state_times=sec(state_t),
        state=np.asarray(state_rows, dtype=np.float64),
        cameras={c: CameraSeries(cams[c], sec(frames[c]), shapes[c]) for c in cams},
        grippers={arm: _command_log(rows, origin) for arm, rows in commands.items()},
        instructions=tuple((float(sec(t)), s) for t, s in texts[NAMES.instruction]),
        sim_tasks=tuple((float(sec(t)), s) for t, s in texts[NAMES.sim_task]),
        chunks=_chunk_log(chunks, robot, origin) if chunks else None,
    )


def _gripper_topic(arm: ArmSpec) -> str:
    assert arm.gripper is not None
    return arm.gripper.topic if arm.gripper.mode == "separate" else arm.trajectory_topic


def _note_command(commands: dict[str, list], arm: ArmSpec, msg, t_ns: int) -> None:
    """Keep the gripper joint's path from one JointTrajectory (commands without it are skipped)."""
    assert arm.gripper is not None
    if arm.gripper.joint not in msg.joint_names or not msg.points:
        return
    j = list(msg.joint_names).index(arm.gripper.joint)
    times = np.array([p.time_from_start.sec + p.time_from_start.nanosec * 1e-9 for p in msg.points])
    positions = np.array([p.positions[j] if len(p.positions) > j else np.nan for p in msg.points], dtype=np.float64)
    if not (np.all(np.isfinite(positions)) and np.all(np.diff(times) >= 0)):
        return  # a malformed command: the controller refuses it, so it commanded nothing
    commands.setdefault(arm.name, []).append((t_ns, _start_ns(msg, t_ns), times, positions))


def _start_ns(msg, t_ns: int) -> int:
    """[ns] when a stamped command's time zero is, on the log clock: its header stamp, or the log time
    `t_ns`. A zero stamp means "start on receipt" (ros2_control, and what the bridge sends); a stamp far
    from the log time is on another clock (sim time vs wall time), so the receipt is the better start."""
    stamp_ns = msg.header.stamp.sec * 10**9 + msg.header.stamp.nanosec
    return stamp_ns if stamp_ns and abs(stamp_ns - t_ns) < _SAME_CLOCK_NS else t_ns


def _note_chunk(chunks: list, bag: EpisodeBag, robot: RobotConfig, msg, t_ns: int) -> None:
    """Keep one ActionChunk's physical steps, unless the bridge would have refused it."""
    try:
        actions = chunk_actions(chunk_from_message(msg), robot)
    except DatasetError as exc:
        raise DatasetError(f"{bag.path}: {NAMES.action_chunk}: {exc}") from exc
    if actions is not None:
        chunks.append((t_ns, _start_ns(msg, t_ns), actions))


def _seconds(rows: list, column: int, origin_ns: int) -> np.ndarray:
    return np.array([(r[column] - origin_ns) / 1e9 for r in rows])


def _chunk_log(rows: list, robot: RobotConfig, origin_ns: int) -> ChunkLog:
    return ChunkLog(
        receipt=_seconds(rows, 0, origin_ns),
        start=_seconds(rows, 1, origin_ns),
        actions=tuple(r[2] for r in rows),
        dt=robot.action.dt,
        hold_motion=~hold_dims(robot.action.space, robot.action.dimension_names),
    )


def _command_log(rows: list, origin_ns: int) -> CommandLog:
    return CommandLog(
        receipt=_seconds(rows, 0, origin_ns),
        start=_seconds(rows, 1, origin_ns),
        times=tuple(r[2] for r in rows),
        positions=tuple(r[3] for r in rows),
    )
