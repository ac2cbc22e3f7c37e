"""`ros2-vla record ROBOT OUT`: demos as rosbag2 (MCAP) episodes, one folder per episode.

    ros2-vla record franka out/demos --sim --expert --episodes 20    # the sim's scripted expert demonstrates
    ros2-vla record franka out/demos                                 # real robot or teleop: keys below

With `--sim --expert` it launches the sim graph (sim_node with the scripted expert, bridge_node) and
recorder_node, and for each episode: /sim/reset (a new scene, the next seed), start, arm the bridge,
wait for /sim/success (plus `--hold` seconds of the finished task) or `--timeout`, stop with the
sim's verdict as the label. Without `--expert` it starts recorder_node only (the robot's graph runs
elsewhere: `ros2 launch ros2_vla franka.launch.py`, or `ros2-vla launch franka --sim` with
`ros2-vla teleop franka`) and reads keys: r start, s stop (success), f stop (failure), d discard,
n new sim scene (--sim), q quit. Ctrl-C, SIGTERM or q while recording close the episode unlabelled.

Each OUT/episode_NNNN is a rosbag2 bag that `ros2 bag info`, `ros2 bag play` and the `rosbags`
library read, with the episode's metadata (EpisodeMeta) in metadata.yaml's custom_data. With a ROS 2
distro, `ros2 bag record` writes the same topics (franka, sim), without the per-episode metadata and
drop counts (`ros2-vla convert` needs the metadata: record with this command or recorder_node):

    ros2 bag record -s mcap -o out/demos/episode_0000 \\
        /camera/scene/image_raw /camera/wrist/image_raw /joint_states /vla/instruction \\
        /vla/action_chunk /vla/bridge/status /fr3_arm_controller/joint_trajectory \\
        /fr3_gripper_controller/joint_trajectory /sim/task /sim/success

(`ros2-vla record ROBOT OUT --print-topics [--sim]` prints the topic list for any robot.)

`--in-process` (with `--sim --expert`) records the same episodes without DDS, as fast as the CPU allows,
`--jobs N` processes at once: ros2_vla.ros.record_in_process.
"""

from __future__ import annotations

import argparse
import re
import sys
from dataclasses import replace
from pathlib import Path

KEYS_HELP = "keys: r start | s stop, success | f stop, failure | d discard | n new sim scene (--sim) | q quit"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from ros2_vla.sim.phrasings import DEFAULT_PHRASING, PHRASINGS

    parser.add_argument("robot", help="robot config name (config/<robot>.yaml), e.g. franka, widowx, aloha")
    parser.add_argument("out", help="folder for the episodes (OUT/episode_NNNN, numbered on from what is there)")
    parser.add_argument("--sim", action="store_true", help="record the sim's /sim/task and /sim/success too")
    parser.add_argument(
        "--expert", action="store_true", help="with --sim: launch the sim graph, the scripted expert demonstrates"
    )
    parser.add_argument("--episodes", type=int, default=10, help="with --expert: episodes to record (default 10)")
    parser.add_argument(
        "--seed", type=int, default=0, help="with --expert: seed of the first scene (then +1 per episode)"
    )
    parser.add_argument(
        "--timeout", type=float, default=60.0, help="[s] with --expert: an episode without success ends as a failure"
    )
    parser.add_argument(
        "--hold", type=float, default=1.0, help="[s] with --expert: recorded after success, the finished task"
    )
    parser.add_argument(
        "--expert-period",
        type=float,
        default=None,
        help="[s] with --expert: between the expert's chunks (default: sim_node's expert_period; "
        "a policy in vla_node sends one per camera frame)",
    )
    parser.add_argument(
        "--start-jitter",
        type=float,
        default=0.0,
        help="[rad] with --expert: each arm joint starts up to this far from home (default 0: at home), "
        "so the demos show reaching the cube from varied poses",
    )
    parser.add_argument(
        "--disturbance",
        type=float,
        default=0.0,
        help="[rad] with --expert: the arm's servos track off by a wandering offset of this std "
        "(default 0), so the demos show the expert correcting (DART-style)",
    )
    parser.add_argument(
        "--slip",
        type=float,
        default=0.0,
        help="with --expert: chance [0, 1] that an episode's first grasp is made to fail, a cube missed or "
        "dropped (default 0), so the demos show the expert going back for it",
    )
    parser.add_argument(
        "--task-kind", default="", help="with --expert: pick | place | bimanual_pick (default: drawn per seed)"
    )
    parser.add_argument(
        "--phrasing",
        default=DEFAULT_PHRASING,
        choices=PHRASINGS,
        help="with --expert: how the sim words instructions (train: training paraphrases)",
    )
    parser.add_argument("--variant", default="", help="kinematic variant, e.g. panda for franka")
    parser.add_argument("--task", default="", help="task label stored with every episode (default: --task-kind)")
    parser.add_argument("--notes", default="", help="free text stored with every episode")
    parser.add_argument(
        "--queue-size", type=int, default=256, help="messages waiting for the disk before drops (counted)"
    )
    parser.add_argument("--print-topics", action="store_true", help="print the recorded topics and types, and exit")
    parser.add_argument(
        "--in-process",
        action="store_true",
        help="with --sim --expert: sim, expert and bridge core in this process, no DDS, as fast as the CPU "
        "allows; the same episodes (ros2_vla.ros.record_in_process)",
    )
    parser.add_argument(
        "--jobs", type=int, default=1, help="with --in-process: processes recording in parallel (default 1)"
    )


def run(args: argparse.Namespace) -> int:
    from ros2_vla.config import load_robot_config
    from ros2_vla.data.episode import episode_topics
    from ros2_vla.errors import ConfigError

    robot = load_robot_config(args.robot, variant=args.variant or None)
    if args.print_topics:
        for topic, msgtype in episode_topics(robot, args.sim).items():
            print(f"{topic} {msgtype}")
        return 0
    if args.expert and not args.sim:
        raise ConfigError("--expert needs the sim: add --sim")
    if args.expert and not args.start_jitter >= 0:
        raise ConfigError(f"--start-jitter must be >= 0 [rad], got {args.start_jitter}")
    if args.expert and not args.disturbance >= 0:
        raise ConfigError(f"--disturbance must be >= 0 [rad], got {args.disturbance}")
    if args.expert and not 0.0 <= args.slip <= 1.0:
        raise ConfigError(f"--slip must be a chance in [0, 1], got {args.slip}")
    if args.expert and args.expert_period is not None and not args.expert_period > 0:
        raise ConfigError(f"--expert-period must be > 0 [s], got {args.expert_period}")
    if args.expert and args.episodes < 1:
        raise ConfigError(f"--episodes must be >= 1, got {args.episodes}")
    if args.in_process and not args.expert:
        raise ConfigError("--in-process records the sim's scripted expert: add --sim --expert")
    if args.jobs < 1 or (args.jobs > 1 and not args.in_process):
        raise ConfigError(f"--jobs {args.jobs}: give 1 or more, with --in-process")
    if args.task_kind:
        from ros2_vla.sim.tasks import task_kinds

        if args.task_kind not in task_kinds(robot):
            raise ConfigError(
                f"--task-kind {args.task_kind!r} is not one {robot.name} does; kinds: {task_kinds(robot)}"
            )
    out = Path(args.out).expanduser().resolve()  # nodes run in other processes, maybe another cwd
    if args.in_process:
        return _record_in_process(args, out)
    return _record_expert(args, out) if args.expert else _record_interactive(args, out)


def _graph(args: argparse.Namespace, out: Path, expert: bool):
    """The nodes to launch: the sim graph plus the recorder (expert), or the recorder alone."""
    from ros2_vla.bringup import LaunchOptions, NodeSpec, describe_graph

    metadata = {
        "task": args.task or args.task_kind,
        "notes": args.notes,
        "demonstrator": "expert" if expert else "",
        "queue_size": args.queue_size,
    }
    if not expert:
        return [
            NodeSpec(
                "recorder",
                "recorder_node",
                {"robot": args.robot, "variant": args.variant, "sim": args.sim, "output_dir": str(out), **metadata},
            )
        ]
    opts = LaunchOptions(
        args.robot, sim=True, expert=True, variant=args.variant, seed=args.seed, phrasing=args.phrasing, record=str(out)
    )
    specs = []
    for spec in describe_graph(opts):
        period = {} if args.expert_period is None else {"expert_period": args.expert_period}
        extra = {
            "sim_node": {
                "task_kind": args.task_kind,
                "start_jitter": args.start_jitter,
                "disturbance": args.disturbance,
                "slip": args.slip,
                **period,
            },
            "bridge_node": {"enabled": False},  # armed per episode, once recording runs
            "recorder_node": metadata,
        }.get(spec.executable, {})
        specs.append(replace(spec, parameters={**spec.parameters, **extra}))
    return specs


def _record_expert(args: argparse.Namespace, out: Path) -> int:
    import time

    import rclpy
    from std_srvs.srv import SetBool

    from ros2_vla.errors import Ros2VlaError
    from ros2_vla.launcher import Launcher
    from ros2_vla.ros.demo import DemoWatcher
    from ros2_vla.ros.recorder_client import RecorderClient

    start = time.perf_counter()
    launcher = Launcher(_graph(args, out, expert=True))
    launcher.start()
    rclpy.init()
    watcher = DemoWatcher(args.robot)  # the demo's view of the sim: task, success, enable and reset
    recorder = RecorderClient(watcher)
    episodes: list[dict] = []
    try:
        recorder.wait(30.0)
        if not watcher.spin_until(lambda: watcher.task, 30.0):
            raise Ros2VlaError("the sim published no task within 30 s")
        # bridge_node loads its compiled planning loop before it offers /vla/enable: after an install that
        # did not warm numba's cache, that is a compile of 15-20 s.
        if not watcher.enable.wait_for_service(timeout_sec=60.0):
            raise Ros2VlaError(f"bridge_node offered no {watcher.enable.srv_name} within 60 s")
        seed = args.seed
        for i in range(args.episodes):
            if i > 0:  # a new scene: disarm, reset, let the last scene's success messages drain
                seed, watcher.task = _parse_reset(watcher.new_scene(), seed + 1)
            recorder.set_metadata(seed=seed)
            recorder.start()
            watcher.call(watcher.enable, SetBool.Request(data=True))
            died = lambda: _dead(launcher)  # noqa: E731
            watcher.spin_until(lambda: watcher.success or died(), args.timeout)
            if died():
                raise Ros2VlaError(f"{died()} exited during episode {i}; see its log above")
            watcher.spin_until(died, args.hold)
            episodes.append(recorder.stop(watcher.success))
            print(_episode_line(len(episodes) - 1, args.episodes, episodes[-1]), flush=True)
    except KeyboardInterrupt:
        print(f"\ninterrupted: the open episode is closed unlabelled ({len(episodes)} finished)", flush=True)
        raise
    finally:
        watcher.destroy_node()
        rclpy.try_shutdown()
        launcher.shutdown()
    _print_summary(episodes, out, time.perf_counter() - start)
    return 0 if len(episodes) == args.episodes else 1


def _record_in_process(args: argparse.Namespace, out: Path) -> int:
    import time

    from ros2_vla.ros.record_in_process import DemoSettings, record_demos

    start = time.perf_counter()
    seeds = list(range(args.seed, args.seed + args.episodes))
    done = 0

    def report(index: int, summary: dict) -> None:
        nonlocal done
        done += 1
        print(_episode_line(done - 1, args.episodes, summary) + f" (seed {seeds[index]})", flush=True)

    episodes = record_demos(DemoSettings.from_args(args, out), seeds, args.jobs, report)
    _print_summary(episodes, out, time.perf_counter() - start)
    return 0


def _record_interactive(args: argparse.Namespace, out: Path) -> int:
    import os

    import rclpy
    from rclpy.node import Node
    from std_srvs.srv import Trigger

    from ros2_vla.bringup import NAMES
    from ros2_vla.errors import RecordingError, Ros2VlaError
    from ros2_vla.launcher import Launcher
    from ros2_vla.ros.recorder_client import RecorderClient
    from ros2_vla.terminal import KeySource, cbreak, no_terminal_mode

    fd = sys.stdin.fileno()
    keys = KeySource(fd, os.isatty(fd))
    launcher = Launcher(_graph(args, out, expert=False))
    launcher.start()
    rclpy.init()
    node = Node("ros2_vla_record")
    recorder = RecorderClient(node)
    reset = node.create_client(Trigger, NAMES.sim_reset) if args.sim else None
    episodes: list[dict] = []
    recording = False
    try:
        recorder.wait(30.0)
        print(f"recording {args.robot} into {out}\n{KEYS_HELP}", flush=True)
        with cbreak(fd) if keys.is_tty else no_terminal_mode():
            quit_ = False
            while not quit_ and (got := keys.read(0.1)) is not None:
                if _dead(launcher):
                    raise Ros2VlaError("recorder_node exited; see its log above")
                for key in got:
                    if key == "q":
                        quit_ = True
                        break
                    try:
                        recording, line = _on_key(key, recording, recorder, reset, node, episodes)
                    except RecordingError as exc:
                        line = f"recorder: {exc}"
                    if line:
                        print(line, flush=True)
    except KeyboardInterrupt:
        print(f"\ninterrupted{': the open episode is closed unlabelled' if recording else ''}", flush=True)
        raise
    finally:
        node.destroy_node()
        rclpy.try_shutdown()
        launcher.shutdown()  # SIGINT: recorder_node closes an open episode, unlabelled
    if recording:
        print("quit while recording: the episode was closed unlabelled", flush=True)
    _print_summary(episodes, out)
    return 0


def _on_key(key: str, recording: bool, recorder, reset, node, episodes: list[dict]) -> tuple[bool, str]:
    """Act on one key; returns (recording now, line to print)."""
    from std_srvs.srv import Trigger

    from ros2_vla.errors import Ros2VlaError
    from ros2_vla.ros.services import call_service

    if key == "r":
        return True, f"recording {recorder.start()}"
    if key in ("s", "f"):
        episodes.append(recorder.stop(key == "s"))
        return False, _episode_line(len(episodes) - 1, None, episodes[-1])
    if key == "d":
        return False, recorder.discard()
    if key == "n" and reset is not None:
        if recording:
            return True, "stop or discard the episode before a new scene"
        try:
            return (
                False,
                f"new scene: {call_service(node, reset, Trigger.Request(), 10.0, ': is the sim running?').message}",
            )
        except Ros2VlaError as exc:
            return False, str(exc)
    if key in ("h", "?"):
        return recording, KEYS_HELP
    return recording, ""


def _parse_reset(message: str, fallback_seed: int) -> tuple[int, str]:
    """sim_node's /sim/reset answer "seed N: instruction" -> (N, instruction)."""
    m = re.match(r"seed (\d+): (.*)", message, re.S)
    return (int(m.group(1)), m.group(2)) if m else (fallback_seed, message)


def _dead(launcher) -> str:
    """The name of a launched node that exited, or ""."""
    return next((r.spec.name for r in launcher.running if r.process.poll() is not None), "")


def _episode_line(index: int, total: int | None, s: dict) -> str:
    label = {True: "success", False: "failure", None: "unlabelled"}[s["success"]]
    count = f"{index + 1}/{total}" if total else f"{index + 1}"
    return (
        f"episode {count} {Path(s['episode']).name}: {s['instruction']!r} {label} in {s['seconds']:.1f} s, "
        f"{s['messages']} messages, {s['dropped']} dropped"
    )


def _print_summary(episodes: list[dict], out: Path, seconds: float | None = None) -> None:
    ok = sum(bool(s["success"]) for s in episodes)
    pace = f", {len(episodes) / seconds * 60:.1f} per minute ({seconds:.0f} s)" if seconds and episodes else ""
    print(
        f"recorded {len(episodes)} episodes in {out}: {ok} successful, "
        f"{sum(s['messages'] for s in episodes)} messages, "
        f"{sum(s['dropped'] for s in episodes)} dropped{pace}",
        flush=True,
    )
