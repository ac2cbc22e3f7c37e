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
from ros2_vla.driver_profile import JointStateMerge, load_driver_profile
from ros2_vla.errors import PolicyError
from ros2_vla.msg import ActionChunk, PolicyStatus
from ros2_vla.parameters import NODE_PARAMETERS
from ros2_vla.policies.encodings import decode_raw
from ros2_vla.policies.observation import ObservationBuffer, decode_compressed, state_names
from ros2_vla.policies.registry import LoadOptions, load_policy
from ros2_vla.policies.runner import PolicyCode, PolicyRunner, RunnerStatus
from ros2_vla.ros.convert import chunk_to_msg, time_to_sec
from ros2_vla.ros.driver_inputs import subscribe_joint_states
from ros2_vla.ros.parameters import declare_parameters
from ros2_vla.ros.qos import COMMAND, SENSOR, STATUS
from ros2_vla.ros.spin import run_node

RELOAD_ON = tuple(name for name, p in NODE_PARAMETERS["vla"].items() if p.reloads)


class VlaNode(Node):
    """The `vla` node: cameras, joint states and instruction to a PolicyRunner; publishes its chunks and status."""

    def __init__(self) -> None:
        super().__init__("vla")
        p = declare_parameters(self, "vla")
        self.robot = load_robot_config(p["robot"], variant=p["variant"] or None)
        cameras = tuple(c.name for c in self.robot.cameras)
        self.buffer = ObservationBuffer(
            cameras,
            state_names(self.robot),
            p["max_observation_age"],
            {c.name: (c.height, c.width) for c in self.robot.cameras},
            p["sync_slop"],
        )
        self.chunk_pub = self.create_publisher(ActionChunk, NAMES.action_chunk, COMMAND)
        self.status_pub = self.create_publisher(PolicyStatus, NAMES.policy_status, STATUS)
        self.runner = PolicyRunner(
            self.robot.name,
            self.buffer,
            self._now,
            self._publish_chunk,
            self._publish_status,
            p["max_instruction_chars"],
        )
        for cam in self.robot.cameras:
            self.create_subscription(Image, cam.topic, lambda m, c=cam.name: self._on_image(c, m), SENSOR)
            self.create_subscription(
                CompressedImage, f"{cam.topic}/compressed", lambda m, c=cam.name: self._on_compressed(c, m), SENSOR
            )
        # The driver's joint state topics, merged: one state holds the arm and gripper (or both arms) it needs.
        self._merge = JointStateMerge(state_names(self.robot))
        subscribe_joint_states(self, self.robot, load_driver_profile(self.robot, p["driver"]), self._on_joint_state)
        self.create_subscription(String, NAMES.instruction, lambda m: self.runner.set_instruction(m.data), COMMAND)
        self.create_timer(1.0 / p["status_rate_hz"], lambda: self._publish_status(self.runner.status))
        self._reload_timer = None  # a pending reload after parameter changes
        self.add_on_set_parameters_callback(self._on_parameters)
        self.runner.start()
        self._load()
        if p["instruction"]:
            self.runner.set_instruction(p["instruction"])

    def _now(self) -> float:
        return self.get_clock().now().nanoseconds * 1e-9

    def _load(self) -> None:
        get = lambda name: self.get_parameter(name).value  # noqa: E731
        opts = LoadOptions(
            model=get("model"),
            device=get("device"),
            quantization=get("quantization"),
            unnorm_key=get("unnorm_key"),
            server=get("server"),
            api_key=get("api_key"),
            openpi_preset=get("openpi_preset"),
            rtc=get("rtc"),
        )
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
        self._add_frame(
            camera,
            msg.header.stamp,
            lambda: decode_raw(msg.data, msg.encoding, msg.height, msg.width, msg.step, msg.is_bigendian),
        )

    def _on_compressed(self, camera: str, msg: CompressedImage) -> None:
        self._add_frame(camera, msg.header.stamp, lambda: decode_compressed(msg.data, msg.format))

    def _add_frame(self, camera: str, stamp, decode) -> None:
        try:
            self.runner.add_frame(camera, time_to_sec(stamp), decode())
        except PolicyError as exc:
            self._publish_status(
                RunnerStatus(
                    PolicyCode.OBSERVATION_REFUSED,
                    f"camera {camera}: {exc}",
                    self.runner.status.policy,
                    self.runner.status.instruction,
                    self.runner.status.sequence,
                )
            )
            self.get_logger().warning(f"camera {camera}: {exc}", throttle_duration_sec=2.0)

    def _on_joint_state(self, msg: JointState, names: list[str], positions: list[float]) -> None:
        merged = self._merge.update(time_to_sec(msg.header.stamp) or self._now(), names, positions)
        if merged is not None:
            self.runner.add_joint_state(*merged)

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
        msg.code = getattr(PolicyStatus, PolicyCode(s.code).name)
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
