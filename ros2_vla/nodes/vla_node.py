"""vla_node: cameras + joint states + instruction in, ActionChunks out, never blocking.

A thin shell over ros2_vla.policies (PolicyRunner, ObservationBuffer, the backends): callbacks
only decode messages into the buffer; loading and inference run on the runner's own thread.
Changing a parameter in RELOAD_ON (policy, model, device, quantization, ...) reloads.
"""

from __future__ import annotations

import sys

from rcl_interfaces.msg import SetParametersResult
from rclpy.node import Node
from sensor_msgs.msg import CompressedImage, Image, JointState
from std_msgs.msg import String

from ros2_vla.bringup import NAMES
from ros2_vla.config import load_robot_config
from ros2_vla.errors import PolicyError
from ros2_vla.msg import ActionChunk, PolicyStatus
from ros2_vla.policies.observation import DEFAULT_SYNC_SLOP, ObservationBuffer, decode_compressed, decode_raw, state_names
from ros2_vla.policies.registry import LoadOptions, load_policy
from ros2_vla.policies.runner import PolicyRunner, RunnerStatus
from ros2_vla.ros.convert import chunk_to_msg, time_to_sec
from ros2_vla.ros.qos import COMMAND, SENSOR, STATUS
from ros2_vla.ros.spin import run_node

RELOAD_ON = ("policy", "model", "device", "quantization", "unnorm_key", "server", "api_key", "openpi_preset", "rtc")


class VlaNode(Node):
    def __init__(self) -> None:
        super().__init__("vla")
        p = self._declare_parameters()
        self.robot = load_robot_config(p["robot"], variant=p["variant"] or None)
        cameras = tuple(c.name for c in self.robot.cameras)
        self.buffer = ObservationBuffer(cameras, state_names(self.robot), p["max_observation_age"],
                                        {c.name: (c.height, c.width) for c in self.robot.cameras}, p["sync_slop"])
        self.chunk_pub = self.create_publisher(ActionChunk, NAMES.action_chunk, COMMAND)
        self.status_pub = self.create_publisher(PolicyStatus, NAMES.policy_status, STATUS)
        self.runner = PolicyRunner(self.robot.name, self.buffer, self._now, self._publish_chunk, self._publish_status,
                                   p["max_instruction_chars"])
        for cam in self.robot.cameras:
            self.create_subscription(Image, cam.topic, lambda m, c=cam.name: self._on_image(c, m), SENSOR)
            self.create_subscription(CompressedImage, f"{cam.topic}/compressed",
                                     lambda m, c=cam.name: self._on_compressed(c, m), SENSOR)
        self.create_subscription(JointState, self.robot.joint_states_topic, self._on_joint_state, SENSOR)
        self.create_subscription(String, NAMES.instruction, lambda m: self.runner.set_instruction(m.data), COMMAND)
        self.create_timer(1.0 / p["status_rate_hz"], lambda: self._publish_status(self.runner.status))
        self._reload_timer = None  # a pending reload after parameter changes
        self.add_on_set_parameters_callback(self._on_parameters)
        self.runner.start()
        self._load()
        if p["instruction"]:
            self.runner.set_instruction(p["instruction"])

    def _declare_parameters(self) -> dict:
        defaults = {
            "robot": "franka",  # config/<robot>.yaml: cameras, joint names, action space
            "variant": "",  # kinematic variant (franka: panda)
            "policy": "flow",  # backend: openvla | flow | openpi
            "model": "",  # checkpoint directory
            "device": "auto",  # auto | cpu | cuda
            "quantization": "",  # openvla: 4bit | 8bit | bf16 | fp32; "" = the backend's default
            "unnorm_key": "",  # openvla: dataset statistics for un-normalization
            "server": "",  # openpi: host:port of the policy server
            "api_key": "",  # openpi: sent as `Authorization: Api-Key <key>`
            "openpi_preset": "",  # openpi: droid | libero | aloha | a YAML path; "": the server is `ros2-vla serve`
            "rtc": False,  # flow: real-time chunking (each chunk continues the one the arm is playing)
            "instruction": "",  # an instruction to start with ("" = wait for /vla/instruction)
            "max_observation_age": 0.5,  # [s] older frames or joint states are refused
            "sync_slop": DEFAULT_SYNC_SLOP,  # [s] the frames of one observation are at most this far apart
            "max_instruction_chars": 512,  # longer instructions are refused
            "status_rate_hz": 2.0,  # [Hz] /vla/status, also sent on every change
        }
        return {name: self.declare_parameter(name, value).value for name, value in defaults.items()}

    def _now(self) -> float:
        return self.get_clock().now().nanoseconds * 1e-9

    def _load(self) -> None:
        get = lambda name: self.get_parameter(name).value  # noqa: E731
        opts = LoadOptions(model=get("model"), device=get("device"), quantization=get("quantization"),
                           unnorm_key=get("unnorm_key"), server=get("server"), api_key=get("api_key"),
                           openpi_preset=get("openpi_preset"), rtc=get("rtc"))
        backend = get("policy")
        self.runner.load(lambda: load_policy(backend, self.robot, opts))

    def _on_parameters(self, params) -> SetParametersResult:
        # Parameters are set after this callback returns: read them on the next tick, then reload. A
        # SetParameters request calls this once per parameter: one pending reload serves them all.
        if any(p.name in RELOAD_ON for p in params) and self._reload_timer is None:
            self._reload_timer = self.create_timer(0.0, self._reload_once)
        return SetParametersResult(successful=True)

    def _reload_once(self) -> None:
        timer, self._reload_timer = self._reload_timer, None
        timer.cancel()
        self.destroy_timer(timer)
        self._load()

    # --- inputs -------------------------------------------------------------------------------
    def _on_image(self, camera: str, msg: Image) -> None:
        # msg.data (array.array) goes in as is: no copy of the frame on the way to the buffer
        self._add_frame(camera, msg.header.stamp, lambda: decode_raw(msg.data, msg.encoding, msg.height, msg.width, msg.step))

    def _on_compressed(self, camera: str, msg: CompressedImage) -> None:
        self._add_frame(camera, msg.header.stamp, lambda: decode_compressed(msg.data, msg.format))

    def _add_frame(self, camera: str, stamp, decode) -> None:
        try:
            rgb = decode()
            with self.runner.lock:
                self.buffer.add_frame(camera, time_to_sec(stamp), rgb)
        except PolicyError as exc:
            self._publish_status(RunnerStatus("OBSERVATION_REFUSED", f"camera {camera}: {exc}",
                                              self.runner.status.policy, self.runner.status.instruction,
                                              self.runner.status.sequence))
            self.get_logger().warn(f"camera {camera}: {exc}", throttle_duration_sec=2.0)
            return
        self.runner.notify()

    def _on_joint_state(self, msg: JointState) -> None:
        with self.runner.lock:
            self.buffer.add_joint_state(time_to_sec(msg.header.stamp) or self._now(), list(msg.name), list(msg.position))

    # --- outputs ------------------------------------------------------------------------------
    def _publish_chunk(self, chunk) -> None:
        self._publish(self.chunk_pub, chunk_to_msg(chunk))

    def _publish(self, publisher, msg) -> None:
        """Publish from any thread; at shutdown (Ctrl-C shuts the context down before the policy thread
        stops) the message is dropped instead of killing the policy thread with a traceback."""
        try:
            publisher.publish(msg)
        except Exception:
            if self.context.ok():
                raise

    def _publish_status(self, s: RunnerStatus) -> None:
        msg = PolicyStatus()
        msg.header.stamp = self.get_clock().now().to_msg()
        msg.code = getattr(PolicyStatus, s.code)
        msg.message, msg.policy, msg.instruction = s.message, s.policy, s.instruction
        msg.sequence, msg.inference_time, msg.rate_hz = s.sequence, float(s.inference_time), float(s.rate_hz)
        self._publish(self.status_pub, msg)

    def destroy_node(self) -> None:
        if not self.runner.stop():
            self.get_logger().warning("the policy is still computing; the process exits when that is done")
        super().destroy_node()


def main(args: list[str] | None = None) -> int:
    return run_node(VlaNode, args)


if __name__ == "__main__":
    sys.exit(main())
