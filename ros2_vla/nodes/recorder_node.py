"""recorder_node: demos as rosbag2 (MCAP) episodes, one bag folder per episode.

    ros2 run ros2_vla recorder_node --ros-args -p robot:=franka -p output_dir:=out/demos
    ros2 service call /recorder/start std_srvs/srv/Trigger
    ros2 service call /recorder/stop std_srvs/srv/SetBool "{data: true}"    # data: the success label
    ros2 service call /recorder/discard std_srvs/srv/Trigger
    ros2 topic echo /recorder/status                                         # JSON, 1 Hz and on change

Subscribes (serialized, never deserialized: no cost per image) to the episode topics of the robot
(`ros2_vla.data.episode.episode_topics`: cameras, joint states, instruction, chunks, trajectories,
bridge status; in the sim also /sim/task and /sim/success) and writes them while an episode is
open. Topics are stored under their default names, so the converter finds them after a remap.
Episode metadata (robot, variant, task, instruction, success label, notes, seed, counts, drops)
goes into each bag's custom_data; `task`, `notes`, `seed` and `demonstrator` are read when the
episode stops, so `ros2 param set` during an episode works. SIGINT or SIGTERM closes the open
episode (unlabelled) before exiting, so the bag stays readable.
"""

from __future__ import annotations

import copy
import json
import sys
import time
from importlib import import_module

from rclpy.node import Node
from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy
from rclpy.serialization import deserialize_message
from rclpy.subscription import Subscription
from rosbags.interfaces import Qos
from std_msgs.msg import Bool, String
from std_srvs.srv import SetBool, Trigger

from ros2_vla.bringup import NAMES
from ros2_vla.config import load_robot_config
from ros2_vla.data.bag_writer import bag_qos
from ros2_vla.data.episode import BOOL, BRIDGE_STATUS, IMAGE, JOINT_STATE, EpisodeMeta, episode_topics
from ros2_vla.data.recording import EpisodeRecorder, episode_summary
from ros2_vla.errors import RecordingError
from ros2_vla.ros.parameters import declare_parameters
from ros2_vla.ros.qos import COMMAND, LATCHED, SENSOR, STATUS
from ros2_vla.ros.spin import run_node

# rclpy passes (message, MessageInfo) to two-argument callbacks since Iron; Humble passes the message only.
_HAS_MESSAGE_INFO = hasattr(Subscription, "CallbackType")
RECORDER_DEPTH = 50  # messages a subscription buffers while the executor is busy (the recorder must not lose any)
CARRY_OVER = (NAMES.instruction, NAMES.sim_task)  # their latest message opens every episode (EpisodeRecorder)


def subscription_qos(topic: str, msgtype: str) -> QoSProfile:
    """The QoS the recorder subscribes with: the publishers' kind of QoS, with a deeper queue."""
    if topic == NAMES.sim_task:
        return LATCHED  # the current task arrives even though it was published before we joined
    base = SENSOR if msgtype in (IMAGE, JOINT_STATE) else STATUS if msgtype in (BOOL, BRIDGE_STATUS) else COMMAND
    profile = copy.copy(base)
    profile.depth = max(base.depth, RECORDER_DEPTH)
    return profile


def offered_qos(topics: dict[str, str]) -> dict[str, Qos]:
    """Topic -> the QoS each episode bag says its topic was offered with (`ros2 bag play` republishes so)."""
    profiles = {t: subscription_qos(t, m) for t, m in topics.items()}
    return {
        t: bag_qos(
            q.reliability == ReliabilityPolicy.RELIABLE, q.durability == DurabilityPolicy.TRANSIENT_LOCAL, q.depth
        )
        for t, q in profiles.items()
    }


class RecorderNode(Node):
    """The `recorder` node: records the episode topics, one bag per episode, on its start, stop and discard calls."""

    def __init__(self) -> None:
        super().__init__("recorder")
        p = declare_parameters(self, "recorder")
        self.robot = load_robot_config(p["robot"], variant=p["variant"] or None)
        topics = episode_topics(self.robot, p["sim"])
        self.recorder = EpisodeRecorder(
            p["output_dir"],
            topics,
            offered_qos(topics),
            p["queue_size"],
            sim=p["sim"],
            carry_over=CARRY_OVER,
        )
        for topic, msgtype in topics.items():
            qos = subscription_qos(topic, msgtype)
            self.create_subscription(_message_class(msgtype), topic, self._callback(topic), qos, raw=True)
        self.status_pub = self.create_publisher(String, "~/status", STATUS)
        self.create_service(Trigger, "~/start", self._on_start)
        self.create_service(SetBool, "~/stop", self._on_stop)
        self.create_service(Trigger, "~/discard", self._on_discard)
        self.create_timer(1.0 / p["status_rate_hz"], self._publish_status)
        self.get_logger().info(
            f"{self.robot.name}: {len(topics)} topics, episodes in {self.recorder.output_dir}; "
            f"call {self.resolve_service_name('~/start')} to record"
        )

    # --- messages -----------------------------------------------------------------------------
    def _callback(self, topic: str):
        on_text = {
            NAMES.instruction: self.recorder.note_instruction,
            NAMES.sim_task: self.recorder.note_instruction,
        }.get(topic)
        recorder = self.recorder

        def handle(data: bytes, t_ns: int, publisher, sequence) -> None:
            recorder.on_message(topic, data, t_ns, publisher, sequence)
            if on_text is not None:
                on_text(deserialize_message(data, String).data)
            elif topic == NAMES.sim_success:
                recorder.note_sim_success(deserialize_message(data, Bool).data)

        if _HAS_MESSAGE_INFO:

            def with_info(data: bytes, info) -> None:
                gid = info.get("publisher_gid") or {}
                handle(
                    data,
                    info.get("received_timestamp") or time.time_ns(),
                    gid.get("data"),
                    info.get("publication_sequence_number"),
                )

            return with_info
        return lambda data: handle(data, time.time_ns(), None, None)

    # --- services -----------------------------------------------------------------------------
    def _on_start(self, request: Trigger.Request, response: Trigger.Response) -> Trigger.Response:
        try:
            path = self.recorder.start(time.time_ns())
            response.success, response.message = True, str(path)
            self.get_logger().info(f"recording {path}")
        except RecordingError as exc:
            response.success, response.message = False, str(exc)
        except OSError as exc:
            response.success, response.message = False, f"cannot create an episode in {self.recorder.output_dir}: {exc}"
        self._publish_status()
        return response

    def _on_stop(self, request: SetBool.Request, response: SetBool.Response) -> SetBool.Response:
        try:
            meta = self._stop(bool(request.data))
            response.success, response.message = True, json.dumps(episode_summary(self.recorder.last_episode, meta))
        except (RecordingError, OSError) as exc:  # OSError: the disk failed while closing
            response.success, response.message = False, str(exc)
        self._publish_status()
        return response

    def _on_discard(self, request: Trigger.Request, response: Trigger.Response) -> Trigger.Response:
        try:
            path = self.recorder.discard()
            response.success, response.message = True, f"discarded {path}"
            self.get_logger().info(response.message)
        except RecordingError as exc:
            response.success, response.message = False, str(exc)
        self._publish_status()
        return response

    def _stop(self, success: bool | None, notes_suffix: str = "") -> EpisodeMeta:
        p = {name: self.get_parameter(name).value for name in ("variant", "task", "notes", "seed", "demonstrator")}
        meta = EpisodeMeta(
            robot=self.robot.name,
            variant=p["variant"],
            task=p["task"],
            notes=p["notes"] + notes_suffix,
            seed=p["seed"] if p["seed"] >= 0 else None,
            demonstrator=p["demonstrator"],
        )
        meta = self.recorder.stop(meta, success, time.time_ns())
        s = episode_summary(self.recorder.last_episode, meta)
        self.get_logger().info(
            f"closed {s['episode']}: success={s['success']} {s['messages']} messages, "
            f"{s['dropped']} dropped, {s['seconds']:.1f} s, {s['instruction']!r}"
        )
        return meta

    def _publish_status(self) -> None:
        if self.context.ok():
            self.status_pub.publish(String(data=json.dumps(self.recorder.status())))

    def destroy_node(self) -> None:
        # SIGINT/SIGTERM (or any exit) with an episode open: close it, unlabelled, so the bag is readable.
        if self.recorder.recording:
            try:
                self._stop(None, notes_suffix=" [recording interrupted]")
            except Exception as exc:  # the node is going away: say so, never hide it behind a traceback
                print(f"[recorder] error: could not close {self.recorder.episode}: {exc}", file=sys.stderr, flush=True)
        super().destroy_node()


def _message_class(msgtype: str) -> type:
    """The rclpy class of "package/msg/Name"."""
    package, _, name = msgtype.split("/")
    return getattr(import_module(f"{package}.msg"), name)


def main(args: list[str] | None = None) -> int:
    return run_node(RecorderNode, args)


if __name__ == "__main__":
    sys.exit(main())
