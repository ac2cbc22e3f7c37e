"""sim_node: the MuJoCo stand-in for a robot, on the same topics as the hardware.

Publishes /joint_states and the configured cameras (Image rgb8 + CameraInfo), takes
JointTrajectory commands on the configured controller topics (JointTrajectoryController
behaviour), or with `driver:=NAME` plays that driver profile's interfaces instead (action servers,
Interbotix commands, split joint state topics: ros2_vla.ros.driver_sim), runs physics in real time,
and offers /sim/reset with the current task and its
success on /sim/task and /sim/success. With `expert:=true` it also plays the scripted expert:
privileged chunks that go to bridge_node over DDS like any policy's, never around the bridge.
`phrasing:=train` words each task with a training paraphrase (ros2_vla.sim.phrasings), so
recorded demos carry varied language; the scene and task of a seed stay the same.
"""

from __future__ import annotations

import sys
import threading
import time

import numpy as np
from rclpy.node import Node
from rclpy.parameter import Parameter
from sensor_msgs.msg import CameraInfo, Image
from std_msgs.msg import Bool, String
from std_srvs.srv import Trigger

from ros2_vla.actions.chunk import Chunk
from ros2_vla.bridge.bridge import CLOCK_JUMP
from ros2_vla.bringup import NAMES, reset_answer
from ros2_vla.config import load_robot_config
from ros2_vla.driver_profile import load_driver_profile
from ros2_vla.errors import ConfigError, Ros2VlaError
from ros2_vla.msg import ActionChunk
from ros2_vla.ros.convert import camera_info_msg, chunk_to_msg, image_msg
from ros2_vla.ros.driver_sim import DriverPlay
from ros2_vla.ros.parameters import declare_parameters
from ros2_vla.ros.qos import COMMAND, LATCHED, SENSOR_DRIVER, STATUS
from ros2_vla.ros.spin import run_node
from ros2_vla.sim import controller as jtc
from ros2_vla.sim.cameras import camera_sets
from ros2_vla.sim.expert import ExpertObservation, ScriptedExpert
from ros2_vla.sim.phrasings import instruction_for
from ros2_vla.sim.tasks import Task, check_success, sample_task
from ros2_vla.sim.world import Simulation

RESET_GRACE = 1.0  # [s] after a reset, trajectories that cannot start where the arm now is are dropped


class SimNode(Node):
    """The `sim` node: the MuJoCo simulation on the hardware's topics, with reset, task, success and optional expert."""

    def __init__(self) -> None:
        super().__init__("sim")
        p = declare_parameters(self, "sim")
        self.robot = load_robot_config(p["robot"], variant=p["variant"] or None)
        self.rtf = p["realtime_factor"]
        self.instruction = ""  # the task in the words of `phrasing`, as /sim/task carries it
        self.sim = Simulation(self.robot, seed=p["seed"])
        self._lock = threading.Lock()  # sim state: physics (executor) vs scene copies (render thread)
        self._stop = threading.Event()
        self.task: Task | None = None
        self.expert: ScriptedExpert | None = None
        self.expert_enabled = p["expert"]
        self._sequence = 0
        self._success = False
        self._velocity_limits = {j.name: j.velocity for a in self.robot.arms for j in a.chain.joints}
        self._clock_seen = float("-inf")  # [s] the latest ROS time seen (a jump back from it re-maps the clock)

        self.task_pub = self.create_publisher(String, NAMES.sim_task, LATCHED)
        self.success_pub = self.create_publisher(Bool, NAMES.sim_success, STATUS)
        self.chunk_pub = (
            self.create_publisher(ActionChunk, NAMES.action_chunk, COMMAND) if self.expert_enabled else None
        )
        self.profile = load_driver_profile(self.robot, p["driver"])
        self.driver = DriverPlay(self, self.sim, self.robot, self.profile, self.accept_trajectory)
        self.create_service(Trigger, NAMES.sim_reset, self._on_reset)

        self._reset(p["seed"])
        self.create_timer(1.0 / self.robot.joint_state_rate_hz, self._on_physics)
        self._camera_pubs = {
            cam.name: (
                self.create_publisher(Image, cam.topic, SENSOR_DRIVER),
                self.create_publisher(CameraInfo, cam.info_topic, SENSOR_DRIVER),
            )
            for cam in (self.robot.cameras if p["cameras"] else ())
        }
        # Rendering (~10-15 ms a frame on the CPU) runs on its own thread, so it never delays the
        # physics and /joint_states timer; MuJoCo releases the GIL while it draws.
        self._render_thread = threading.Thread(target=self._render_loop, name="render", daemon=True)
        self._render_thread.start()
        if self.expert_enabled:
            self.create_timer(p["expert_period"], self._on_expert)
        self.create_timer(0.1, self._publish_success)
        self.get_logger().info(
            f"{self.robot.name} sim ({self.profile.name or 'default'} driver profile): "
            f"state on {[s.topic for s in self.profile.joint_states]}, "
            f"{len(self.robot.cameras) if p['cameras'] else 0} cameras, expert {'on' if self.expert_enabled else 'off'}"
        )

    # --- time ---------------------------------------------------------------------------------
    def _ros_now(self) -> float:
        return self.get_clock().now().nanoseconds * 1e-9

    def sim_time_at(self, ros_time: float) -> float:
        """Sim time [s] of a ROS time [s] (a trajectory's header stamp)."""
        return self._sim_t0 + (ros_time - self._ros_t0) * self.rtf

    # --- reset and task -----------------------------------------------------------------------
    def _reset(self, seed: int) -> Task:
        with self._lock:
            self.sim.reset(
                seed,
                start_jitter=self.get_parameter("start_jitter").value,
                disturbance=self.get_parameter("disturbance").value,
                slip=self.get_parameter("slip").value,
            )
        task = sample_task(
            self.robot, np.random.default_rng(seed), sim=self.sim, kind=self.get_parameter("task_kind").value
        )
        self.task = task
        self.instruction = instruction_for(task, self.get_parameter("phrasing").value, seed)
        self.expert = ScriptedExpert(self.robot, task) if self.expert_enabled else None
        self._ros_t0, self._sim_t0 = self._ros_now(), self.sim.time  # the mapping from ROS time to sim time
        self._reset_ros, self._reset_sim = self._ros_t0, self._sim_t0  # when the episode began, on each clock
        self._success = False
        self._slip_told = False
        self.task_pub.publish(String(data=self.instruction))
        self.get_logger().info(f"reset with seed {seed}: {self.instruction!r}")
        return task

    def _on_reset(self, request: Trigger.Request, response: Trigger.Response) -> Trigger.Response:
        seed = self.get_parameter("seed").value + 1
        try:  # task_kind, start_jitter, disturbance and slip are re-read here: a bad one fails the call, not the node
            self._reset(seed)
        except ConfigError as exc:
            response.success, response.message = False, str(exc)
            return response
        self.set_parameters([Parameter("seed", Parameter.Type.INTEGER, seed)])
        response.success, response.message = True, reset_answer(seed, self.instruction)
        return response

    # --- loops --------------------------------------------------------------------------------
    def _follow_clock(self, now: float) -> None:
        """Map ROS time `now` [s] onto the sim's time from where the physics is, when there was no clock at
        the reset (use_sim_time before the first /clock) or the clock stepped back (a stepped system clock,
        a looping /clock): the physics goes on. Called before any use of the mapping."""
        jumped = now < self._clock_seen - CLOCK_JUMP
        if jumped:
            self.get_logger().warning(f"the clock jumped back {self._clock_seen - now:.2f} s: the physics goes on")
        if jumped or self._ros_t0 == 0.0:
            self._ros_t0, self._sim_t0 = now, self.sim.time
        self._clock_seen = now if jumped else max(self._clock_seen, now)

    def _on_physics(self) -> None:
        clock = self.get_clock().now()
        now = clock.nanoseconds * 1e-9
        self._follow_clock(now)
        with self._lock:  # the render thread copies the scene out of the same MuJoCo data
            self.sim.step_until(self.sim_time_at(now))
        self.driver.step()  # action goals whose motion is over finish now
        state = self.sim.joint_state()
        # Stamped with the instant the physics was stepped to, not when stepping ended: stepping takes a
        # varying few ms, and a stamp after it would make the positions look earlier (and speeds wrong).
        self.driver.publish_joint_states(
            state.names, state.positions.tolist(), state.velocities.tolist(), clock.to_msg()
        )

    def _render_loop(self) -> None:
        # Cameras of one rate form a set captured at one instant, with one stamp (camera_sets).
        sets = camera_sets(tuple(c for c in self.robot.cameras if c.name in self._camera_pubs))
        due = dict.fromkeys(sets, time.monotonic())
        try:
            while not self._stop.is_set() and sets:
                period = min(due, key=due.get)
                if self._stop.wait(max(0.0, due[period] - time.monotonic())):
                    return
                due[period] = max(due[period] + period, time.monotonic())  # no burst after a stall
                self._publish_cameras(sets[period])
        finally:
            self.sim.cameras.close()  # GL contexts belong to this thread: free them here, not in a finalizer

    def _publish_cameras(self, names: tuple[str, ...]) -> None:
        stamp = self.get_clock().now().to_msg()  # capture time: the state is copied right now
        images = self.sim.render_set(names, self._lock)
        try:
            for name, rgb in images.items():
                frame = f"{name}_optical_frame"
                image_pub, info_pub = self._camera_pubs[name]
                k = self.sim.camera_intrinsics(name)
                image_pub.publish(image_msg(rgb, stamp, frame))
                info_pub.publish(camera_info_msg(k.width, k.height, k.fx, k.fy, k.cx, k.cy, stamp, frame))
        except Exception:
            # Ctrl-C shuts the context down before this thread is stopped: drop the frame, not the thread.
            if self.context.ok():
                raise
            self._stop.set()

    def destroy_node(self) -> None:
        self._stop.set()
        self._render_thread.join(timeout=2.0)
        super().destroy_node()

    def _on_expert(self) -> None:
        if self.expert is None or self._success:
            return
        stamp = self._ros_now()
        actions = self.expert.act(ExpertObservation.from_sim(self.sim)).astype(np.float32)
        self._sequence += 1
        chunk = Chunk(
            stamp=stamp,
            embodiment=self.robot.name,
            action_space=self.robot.action.space,
            dimension_names=self.robot.action.dimension_names,
            dt=self.robot.action.dt,
            horizon=actions.shape[0],
            values=actions,
            instruction=self.instruction,
            policy="scripted_expert",
            sequence=self._sequence,
        )
        self.chunk_pub.publish(chunk_to_msg(chunk))

    def _publish_success(self) -> None:
        if self.sim.slip.happened and not self._slip_told:
            self._slip_told = True
            self.get_logger().info(
                f"grasp slip: the cube was {'missed' if self.sim.slip.happened == 'miss' else 'dropped'}"
            )
        if self.task is not None:
            self._success = self._success or check_success(self.sim, self.task)
            self.success_pub.publish(Bool(data=bool(self._success)))

    # --- commands ---------------------------------------------------------------------------------
    def accept_trajectory(self, key: str, trajectory: jtc.SimTrajectory, what: str) -> str:
        """Hand `trajectory` to the controller `key` (a config topic); "" when taken, else why not (logged).
        Every driver interface ends here, so the guards below hold for each."""
        self._follow_clock(self._ros_now())  # a stamp on a clock that just jumped back is read on the new one
        if 0.0 < trajectory.start_time < self._reset_sim or trajectory.start_time < 0.0:
            # Planned before the last /sim/reset, from the old scene: obeying it would drive the arm from
            # home back to where the last episode ended. (Zero-stamped ones, "start on receipt" as the
            # bridge sends them, cannot be told apart: the demo and recorder let those land first.)
            self.get_logger().info(f"trajectory on {what} stamped before the last reset: ignored")
            return "stamped before the last reset"
        if 0.0 <= self._ros_now() - self._reset_ros < RESET_GRACE:
            # A zero-stamped plan (or a streamed position) from before the reset, still in flight, starts at
            # the old pose: it would yank the arm back there until the bridge sees the reset and holds (0.1 s
            # or more on a busy CPU). Told apart by where it starts, it is dropped.
            state = self.sim.joint_state()
            far = jtc.unreachable_start(
                trajectory,
                self.sim.time,
                dict(zip(state.names, state.positions)),
                self._velocity_limits,
                self.robot.safety.max_tracking_error,
            )
            if far:
                self.get_logger().info(f"trajectory on {what} just after a reset ignored: {far}")
                return f"just after a reset: {far}"
        try:
            self.sim.command(key, trajectory)
        except Ros2VlaError as exc:
            self.get_logger().warning(f"trajectory on {what} rejected, holding: {exc}", throttle_duration_sec=1.0)
            return str(exc)
        return ""


def main(args: list[str] | None = None) -> int:
    return run_node(SimNode, args)


if __name__ == "__main__":
    sys.exit(main())
