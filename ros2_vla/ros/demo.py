"""The closed-loop demo: the sim robot does a few tasks from language, every message over DDS.

It launches the bringup graph, runs episodes back to back, records the scene camera with the
bridge's predicted end-effector path drawn on it (the instruction along the top; episode, seed and
time, then the verdict, along the bottom), and writes a video, a GIF and a summary table.
- `policy="flow"` (or another vla_node backend): vla_node runs the model (`model` "" = the one
  shipped for the robot in models/) and, per episode, the demo stops it (empty instruction),
  resets the scene and sends the task's instruction on /vla/instruction.
- `policy="expert"`: sim_node's scripted expert sends the chunks, over DDS and through the bridge
  like any policy (per episode: disarm, /sim/reset, arm).
- `policy=""` (the default): flow with the shipped policy where the robot has one, else the expert.
Scenes start at the first held-out seed, so a learned policy is shown scenes no demo it learned from had.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import rclpy
from nav_msgs.msg import Path as PathMsg
from rclpy.node import Node
from sensor_msgs.msg import CameraInfo, Image
from std_msgs.msg import Bool, String
from std_srvs.srv import SetBool, Trigger

from ros2_vla.bringup import NAMES, LaunchOptions, describe_graph, parse_reset_answer
from ros2_vla.config import load_robot_config
from ros2_vla.errors import Ros2VlaError
from ros2_vla.evaluation.seeds import HELD_OUT_SEED
from ros2_vla.evaluation.video import captioned, episode_status, title_lines, write_film
from ros2_vla.launcher import Launcher
from ros2_vla.msg import ActionChunk, BridgeStatus, PolicyStatus
from ros2_vla.policies.defaults import DEFAULT_BACKEND, default_model, has_default_model
from ros2_vla.ros.convert import time_to_sec
from ros2_vla.ros.qos import COMMAND, LATCHED, SENSOR, STATUS
from ros2_vla.ros.services import call_service
from ros2_vla.sim.phrasings import DEFAULT_PHRASING
from ros2_vla.sim.scene import base_transform
from ros2_vla.viz import draw_polyline, project, world_camera_pose

HOLD_DELIVERY = 0.2  # [s] for the bridge's disarm hold to reach the controllers before a reset
MODEL_LOAD_TIMEOUT = 120.0  # [s] for vla_node to load its model (MiniLM and the policy, on a cold CPU)


@dataclass
class DemoEpisode:
    """How one demo episode went: its seed and instruction, success, wall time, chunks and their delay."""

    episode: int
    seed: int  # of the episode's scene and task
    instruction: str
    success: bool
    seconds: float  # [s] wall time to success (or to the timeout)
    chunks: int  # chunks the bridge planned
    chunk_delay_ms: float  # median time from a chunk's observation (its stamp) to its receipt here [ms]


class DemoWatcher(Node):
    """Listens to the graph, records frames, and calls its services."""

    def __init__(self, robot_name: str) -> None:
        super().__init__("ros2_vla_demo")
        self.robot = load_robot_config(robot_name)
        self.camera = next(c for c in self.robot.cameras if c.mount == "world")
        self.T_world_base = base_transform(self.robot.arms[0])
        self.task, self.success, self.sequences = "", False, set()
        self.chunk_delays: list[float] = []  # [s] receipt time minus stamp of each chunk this episode
        self.path_world = np.zeros((0, 3))
        self.policy_status: PolicyStatus | None = None
        self.frames: list[np.ndarray] = []  # captioned (evaluation.video), larger than the camera's
        self.frame_stamps: list[float] = []  # [s] camera stamps of `frames`
        self.recording = False
        self.title: list[str] = []
        self.header = ""
        self.verdict: bool | None = None  # shown once an episode is over
        self.start = 0.0
        self._info: CameraInfo | None = None
        self.create_subscription(String, NAMES.sim_task, lambda m: setattr(self, "task", m.data), LATCHED)
        self.create_subscription(Bool, NAMES.sim_success, self._on_success, STATUS)
        self.create_subscription(BridgeStatus, NAMES.bridge_status, self._on_bridge, STATUS)
        self.create_subscription(PathMsg, NAMES.predicted_path, self._on_path, STATUS)
        self.create_subscription(ActionChunk, NAMES.action_chunk, self._on_chunk, COMMAND)
        self.create_subscription(PolicyStatus, NAMES.policy_status, lambda m: setattr(self, "policy_status", m), STATUS)
        self.create_subscription(Image, self.camera.topic, self._on_image, SENSOR)
        self.create_subscription(CameraInfo, self.camera.info_topic, lambda m: setattr(self, "_info", m), SENSOR)
        self.instruction_pub = self.create_publisher(String, NAMES.instruction, COMMAND)
        self.enable = self.create_client(SetBool, NAMES.enable)
        self.reset = self.create_client(Trigger, NAMES.sim_reset)

    def _on_success(self, msg: Bool) -> None:
        self.success = self.success or msg.data

    def _on_bridge(self, msg: BridgeStatus) -> None:
        if msg.chunk_sequence:
            self.sequences.add(msg.chunk_sequence)

    def _on_chunk(self, msg: ActionChunk) -> None:
        # The bridge gets the chunk as this node does: how old its observation is then is the latency
        # the bridge makes up for (policy time, frame age, transport).
        self.chunk_delays.append(self.get_clock().now().nanoseconds * 1e-9 - time_to_sec(msg.header.stamp))

    def _on_path(self, msg: PathMsg) -> None:
        p = np.array([[q.pose.position.x, q.pose.position.y, q.pose.position.z] for q in msg.poses]).reshape(-1, 3)
        self.path_world = p @ self.T_world_base[:3, :3].T + self.T_world_base[:3, 3]

    def _on_image(self, msg: Image) -> None:
        if not self.recording or msg.encoding != "rgb8":
            return
        rgb = np.frombuffer(bytes(msg.data), dtype=np.uint8).reshape(msg.height, msg.width, 3)
        if self._info is not None and len(self.path_world):
            k = self._info.k
            uv = project(world_camera_pose(self.robot, self.camera.name), k[0], k[4], k[2], k[5], self.path_world)
            rgb = draw_polyline(rgb, uv)
        status = episode_status(self.header, time.monotonic() - self.start, self.verdict)
        self.frames.append(captioned(rgb, self.title, *status))
        self.frame_stamps.append(time_to_sec(msg.header.stamp))

    def film(self, episode: int, seed: int, instruction: str) -> None:
        """Start recording an episode: its captions, and the clock its time is counted from."""
        self.title = title_lines(instruction, self.camera.width)
        self.chunk_delays = []
        self.header, self.verdict = f"episode {episode} seed {seed}", None
        self.start, self.recording = time.monotonic(), True

    def call(self, client, request, timeout: float = 10.0):
        return call_service(self, client, request, timeout)

    def instruct(self, text: str) -> None:
        """Tell vla_node `text` once its model has loaded, and see it taken: an instruction sent while
        it loads (or before it subscribes) would be lost, and the arm would never move."""

        def loaded() -> bool:
            s = self.policy_status
            return s is not None and (
                s.code == PolicyStatus.ERROR or (s.code != PolicyStatus.LOADING and bool(s.policy))
            )

        if not self.spin_until(loaded, MODEL_LOAD_TIMEOUT):
            raise Ros2VlaError(f"vla_node did not load its model within {MODEL_LOAD_TIMEOUT:.0f} s")
        if self.policy_status.code == PolicyStatus.ERROR:
            raise Ros2VlaError(f"vla_node: {self.policy_status.message}")
        for _ in range(5):
            self.instruction_pub.publish(String(data=text))
            if self.spin_until(lambda: self.policy_status.instruction == text, 1.0):
                return
        raise Ros2VlaError(f"vla_node did not take the instruction {text!r}: {self.policy_status.message}")

    def new_scene(self) -> str:
        """Disarm, reset the sim (the next seed), and return /sim/reset's answer (`bringup.reset_answer`).

        The bridge's hold on disarm starts on receipt (zero stamp) and travels on another topic than the
        reset request: arriving after the reset, it drove the arm from home back to the last episode's
        pose (one demo in seven started there). So the hold gets time to land first."""
        self.call(self.enable, SetBool.Request(data=False))
        self.spin_until(lambda: False, HOLD_DELIVERY)
        answer = self.call(self.reset, Trigger.Request()).message
        self.success, self.sequences = False, set()
        self.spin_until(lambda: False, 0.3)  # let the last pre-reset success messages drain
        self.success = False
        return answer

    def spin_until(self, predicate, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            rclpy.spin_once(self, timeout_sec=0.05)
            if predicate():
                return True
        return False


def demo_policy(robot: str) -> str:
    """The policy the demo runs when none is named: the learned default where one is shipped."""
    return DEFAULT_BACKEND if has_default_model(robot) else "expert"


EXTERNAL = "external"  # the demo's policy when vla_node runs elsewhere (another machine)


def demo_graph(
    robot: str, seed: int, policy: str, model: str, phrasing: str, server: str = "", driver: str = ""
) -> list:
    """The demo's nodes: the sim with the scripted expert (`policy` "expert"), the sim alone (EXTERNAL:
    vla_node runs elsewhere), or the sim plus vla_node running `policy` (a backend) with `model` (openpi:
    the policy server at `server`); the bridge always. `driver`: the profile the sim plays and the bridge
    and vla_node use."""
    common = dict(sim=True, enable=True, seed=seed, phrasing=phrasing, driver=driver)
    if policy in ("expert", EXTERNAL):
        return describe_graph(LaunchOptions(robot, expert=policy == "expert", **common))
    return describe_graph(LaunchOptions(robot, policy=policy, model=model, server=server, **common))


def run_demo(
    robot: str = "franka",
    episodes: int = 3,
    seed: int = HELD_OUT_SEED,
    out: Path = Path("out/demo"),
    timeout: float = 45.0,
    policy: str = "",
    model: str = "",
    phrasing: str = DEFAULT_PHRASING,
    server: str = "",
    driver: str = "",
) -> list[DemoEpisode]:
    """Launch the graph, run `episodes` episodes, write the video and summary to `out`.

    policy: "expert", a vla_node backend ("flow": the shipped default policy unless `model` is given),
    EXTERNAL (a vla_node running elsewhere, found over DDS), or "" for `demo_policy(robot)`; "openpi"
    with `server` (host:port): a policy server, e.g. `ros2-vla serve`. driver: the driver profile the sim
    plays and the bridge drives ("" the config's own topics).
    phrasing: how the sim words each task (sim/phrasings.py); the instruction sent is the sim's."""
    policy = policy or demo_policy(robot)
    learned = policy != "expert"
    if policy == "openpi":
        if not server:
            raise Ros2VlaError("--policy openpi needs --server HOST:PORT (e.g. a `ros2-vla serve` on localhost:8000)")
    elif learned and policy != EXTERNAL and not model:
        model = str(default_model(robot))  # fails here, in one line, when none is shipped
    label = (
        f"openpi:{server}" if policy == "openpi" else f"{policy}:{model}" if learned and policy != EXTERNAL else policy
    )
    label += f", driver profile {driver}" if driver else ""
    print(f"demo: {robot}, policy {label}, {episodes} episode(s) from seed {seed}", flush=True)
    launcher = Launcher(demo_graph(robot, seed, policy, model, phrasing, server, driver))
    launcher.start()
    rclpy.init()
    watcher = DemoWatcher(robot)
    results: list[DemoEpisode] = []
    scene_seed = seed
    try:
        for ep in range(episodes):
            if ep > 0:  # a new scene: stop the policy, disarm, reset, arm again from where the arm really is
                if learned:
                    watcher.instruct("")
                scene_seed, watcher.task = parse_reset_answer(watcher.new_scene())
                watcher.call(watcher.enable, SetBool.Request(data=True))
            elif not watcher.spin_until(lambda: watcher.task, 30.0):
                raise Ros2VlaError("the sim published no task within 30 s")
            if learned:
                watcher.instruct(watcher.task)
            watcher.film(ep, scene_seed, watcher.task)
            done = watcher.spin_until(lambda: watcher.success, timeout)
            seconds = round(time.monotonic() - watcher.start, 1)
            watcher.verdict = done
            watcher.spin_until(lambda: False, 1.0)  # a second of the finished task on video, with the verdict
            watcher.recording = False
            delay = round(1e3 * float(np.median(watcher.chunk_delays)), 1) if watcher.chunk_delays else float("nan")
            results.append(DemoEpisode(ep, scene_seed, watcher.task, done, seconds, len(watcher.sequences), delay))
            print(
                f"episode {ep} (seed {scene_seed}): {watcher.task!r}: "
                f"{'success' if done else 'FAILED'} in {seconds:.1f} s, "
                f"chunks {delay:.0f} ms after their observation",
                flush=True,
            )
    finally:
        frames, stamps = watcher.frames, watcher.frame_stamps
        watcher.destroy_node()
        rclpy.try_shutdown()
        launcher.shutdown()
    _write_outputs(results, frames, stamps, out, robot, label)
    return results


def _write_outputs(
    results: list[DemoEpisode], frames: list[np.ndarray], stamps: list[float], out: Path, robot: str, policy: str
) -> None:
    out.mkdir(parents=True, exist_ok=True)
    table = [
        f"{robot}, policy {policy}",
        "",
        "| episode | seed | instruction | success | seconds | chunks | chunk delay p50 [ms] |",
        "|---|---|---|---|---|---|---|",
    ]
    table += [
        f"| {r.episode} | {r.seed} | {r.instruction} | {'yes' if r.success else 'no'} | {r.seconds:.1f} | {r.chunks} "
        f"| {r.chunk_delay_ms:.0f} |"
        for r in results
    ]
    rate = sum(r.success for r in results) / max(len(results), 1)
    table.append(f"\n{sum(r.success for r in results)}/{len(results)} episodes succeeded ({rate:.0%}).")
    (out / "summary.md").write_text("\n".join(table) + "\n")
    (out / "summary.json").write_text(json.dumps([asdict(r) for r in results], indent=2))
    write_film(frames, out, f"{robot}_demo")
    print("\n" + "\n".join(table))
    span = stamps[-1] - stamps[0] if stamps else 0.0
    print(
        f"\nvideo: {out / f'{robot}_demo.mp4'} ({len(frames)} frames, {span:.1f} s from first to last), "
        f"GIF: {out / f'{robot}_demo.gif'}"
    )
