"""What one recorded episode is: a rosbag2 folder (MCAP storage, CDR) plus its metadata.

Layout, the contract between the recorder (writes), the converter (reads) and anyone with
`ros2 bag info` or the `rosbags` library:

    OUT/episode_0007/            one rosbag2 bag per episode
        metadata.yaml            rosbag2's; custom_data["ros2_vla.episode"] = EpisodeMeta as JSON
        episode_0007.mcap        (rosbags names it after the folder; `ros2 bag record` adds _0)

Topics are the ones the policy and the bridge use (`episode_topics`), so a demo and a policy run
record the same things: cameras, joint states, instruction, the chunks sent and the bridge's
trajectories (and in the sim, the task and success flags).
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from ros2_vla.bringup import NAMES
from ros2_vla.config import RobotConfig
from ros2_vla.errors import ConfigError

CUSTOM_DATA_KEY = "ros2_vla.episode"
FORMAT_VERSION = 1

IMAGE = "sensor_msgs/msg/Image"
JOINT_STATE = "sensor_msgs/msg/JointState"
STRING = "std_msgs/msg/String"
BOOL = "std_msgs/msg/Bool"
TRAJECTORY = "trajectory_msgs/msg/JointTrajectory"
ACTION_CHUNK = "ros2_vla/msg/ActionChunk"
BRIDGE_STATUS = "ros2_vla/msg/BridgeStatus"

# What a converted frame's action is read from: the joints' motion, or the chunks sent (data/action_labels.py).
MEASURED, COMMANDED = "measured", "commanded"
LABEL_SOURCES = (MEASURED, COMMANDED)


@dataclass
class EpisodeMeta:
    """Per-episode facts a dataset needs that no message carries."""

    robot: str  # config name, e.g. "franka"
    variant: str = ""  # kinematic variant ("" = the config's default chain)
    task: str = ""  # task kind when known ("pick", "place", ...); free text on a real robot
    instruction: str = ""  # the instruction in force when the episode ended
    success: bool | None = None  # the operator's (or the sim's) label; None = not labelled
    notes: str = ""
    seed: int | None = None  # sim scene seed
    demonstrator: str = ""  # "expert" | "teleop" | "policy:<name>" | ""
    start_ns: int = 0  # [ns] ROS time of the first message
    stop_ns: int = 0
    message_counts: dict[str, int] = field(default_factory=dict)  # topic -> messages written
    dropped: dict[str, int] = field(default_factory=dict)  # topic -> messages lost (sequence gaps, queue overflow)
    format: int = FORMAT_VERSION
    sim_success: bool | None = None  # sim only: /sim/success was true during the episode (None: not a sim episode)

    def to_json(self) -> str:
        return json.dumps(dataclasses.asdict(self), sort_keys=True)

    @staticmethod
    def from_json(text: str, source: str = "") -> EpisodeMeta:
        try:
            d = json.loads(text)
            known = {f.name for f in dataclasses.fields(EpisodeMeta)}
            return EpisodeMeta(**{k: v for k, v in d.items() if k in known})
        except (ValueError, TypeError) as e:
            raise ConfigError(f"{source}: episode metadata is not valid EpisodeMeta JSON: {e}") from e


def episode_topics(robot: RobotConfig, sim: bool) -> dict[str, str]:
    """Topic -> message type that an episode of `robot` records (default names, before remapping)."""
    topics = {robot.joint_states_topic: JOINT_STATE}
    topics.update({cam.topic: IMAGE for cam in robot.cameras})
    topics[NAMES.instruction] = STRING
    topics[NAMES.action_chunk] = ACTION_CHUNK
    topics[NAMES.bridge_status] = BRIDGE_STATUS
    for arm in robot.arms:
        topics[arm.trajectory_topic] = TRAJECTORY
        if arm.gripper is not None and arm.gripper.mode == "separate":
            topics[arm.gripper.topic] = TRAJECTORY
    if sim:
        topics[NAMES.sim_task] = STRING
        topics[NAMES.sim_success] = BOOL
    return topics


def read_episode_meta(bag: str | Path) -> EpisodeMeta:
    """The EpisodeMeta of a bag folder; ConfigError naming the folder when it is missing or unreadable."""
    path = Path(bag) / "metadata.yaml"
    if not path.is_file():
        raise ConfigError(f"{bag}: not a rosbag2 folder (no metadata.yaml); was the recording closed?")
    try:
        info: Any = yaml.safe_load(path.read_text())
        custom = info["rosbag2_bagfile_information"].get("custom_data") or {}
    except (yaml.YAMLError, KeyError, TypeError, AttributeError) as e:
        raise ConfigError(f"{path}: unreadable rosbag2 metadata: {e}") from e
    if CUSTOM_DATA_KEY not in custom:
        raise ConfigError(f"{bag}: no {CUSTOM_DATA_KEY!r} in the bag's custom_data; record it with `ros2-vla record`")
    return EpisodeMeta.from_json(custom[CUSTOM_DATA_KEY], str(bag))
