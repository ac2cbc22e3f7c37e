"""`ros2-vla`: run a robot's node graph and talk to it, with or without a ROS 2 distro.

    ros2-vla launch franka --sim           # = ros2 launch ros2_vla franka.launch.py sim:=true
    ros2-vla instruct "pick up the red cube"
    ros2-vla status [--once]
    ros2-vla enable | disable
    ros2-vla graph franka --sim            # print the node graph the launch would start
    ros2-vla demo [franka] [--episodes 3]  # the closed-loop sim demo, with a video
    ros2-vla record franka OUT --sim --expert --episodes 20   # demos as rosbag2 episodes
    ros2-vla teleop franka                 # keyboard end-effector deltas through the bridge
    ros2-vla convert OUT/episode_* --to lerobot DATASET
    ros2-vla train DATASET MODEL_DIR       # fine-tune the flow backend (or OpenVLA LoRA)
    ros2-vla eval franka --policy flow --model MODEL_DIR --episodes 50
    ros2-vla serve franka --policy flow --port 8000   # a backend behind openpi's policy-server protocol

Errors the user can fix print one line and exit non-zero; they are never stack traces.
"""

from __future__ import annotations

import argparse
import importlib
import sys

from ros2_vla.errors import Ros2VlaError

# Commands that live in their own module: command -> (module, help). Each module has
# `add_arguments(parser)` (cheap imports only) and `run(args) -> int` (heavy imports inside).
MODULE_COMMANDS = {
    "record": ("ros2_vla.ros.record_cli", "record episodes as rosbag2 (MCAP) bags, one per episode"),
    "latency": ("ros2_vla.ros.latency_cli", "listen to a running graph: its latency budget, stage by stage"),
    "teleop": ("ros2_vla.ros.teleop_cli", "drive the arm with the keyboard (end-effector deltas as ActionChunks)"),
    "convert": ("ros2_vla.data.convert_cli", "convert recorded episodes to a LeRobot v3.0 dataset"),
    "train": ("ros2_vla.training.cli", "train a policy on a converted dataset"),
    "eval": ("ros2_vla.evaluation.cli", "closed-loop success rate of a policy in the sim, on held-out seeds"),
    "serve": ("ros2_vla.serving.cli", "serve a backend over openpi's policy-server protocol (WebSocket)"),
    "security": ("ros2_vla.security.cli", "SROS2: create a keystore with an enclave per node of the graph"),
}


def _add_launch_options(p: argparse.ArgumentParser) -> None:
    """The launch arguments as flags (`policy:=flow` is `--policy flow`, `sim:=true` is `--sim`), from the
    parameter schema, and `--param node.name:=value` for every other node parameter."""
    from ros2_vla.parameters import LAUNCH_ARGUMENTS, NODE_PARAMETERS

    p.add_argument("robot", help="robot config name (config/<robot>.yaml), e.g. franka, widowx, aloha")
    for arg in LAUNCH_ARGUMENTS:
        # Markdown backquotes read as noise in a terminal.
        text = arg.description.replace("`", "")
        if isinstance(arg.default, bool):  # every boolean launch argument is off by default: a switch
            p.add_argument(arg.flag, dest=arg.name, action="store_true", help=text)
        else:
            p.add_argument(arg.flag, dest=arg.name, default=str(arg.default), metavar=arg.name.upper(), help=text)
    nodes = ", ".join(NODE_PARAMETERS)
    p.add_argument(
        "--param",
        action="append",
        default=[],
        metavar="NODE.NAME:=VALUE",
        help=f"any other node parameter (nodes: {nodes}), e.g. --param bridge.blend_steps:=3; repeatable",
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="ros2-vla", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("launch", help="start a robot's node graph (Ctrl-C stops every node)")
    _add_launch_options(p)
    p = sub.add_parser("graph", help="print the node graph `launch` would start")
    _add_launch_options(p)

    p = sub.add_parser("instruct", help="send an instruction on /vla/instruction (empty string: stop)")
    p.add_argument("text")
    p.add_argument("--timeout", type=float, default=5.0, help="seconds to wait for a subscriber")

    p = sub.add_parser("status", help="print /vla/status and /vla/bridge/status")
    p.add_argument("--once", action="store_true", help="print one message of each and exit")
    p.add_argument("--timeout", type=float, default=10.0, help="with --once: seconds to wait")

    from ros2_vla.evaluation.seeds import HELD_OUT_SEED
    from ros2_vla.sim.phrasings import (
        DEFAULT_PHRASING,
        PHRASINGS,
    )  # numpy: build_parser runs where a missing one is reported

    p = sub.add_parser("demo", help="the closed-loop sim demo: episodes, a video and a summary table")
    p.add_argument("robot", nargs="?", default="franka", help="robot config name (default franka)")
    p.add_argument("--episodes", type=int, default=3)
    p.add_argument(
        "--seed",
        type=int,
        default=HELD_OUT_SEED,
        help=f"seed of the first episode's scene and task (default {HELD_OUT_SEED}: held out from training)",
    )
    p.add_argument("--out", default="out/demo", help="folder for the video, GIF and summary")
    p.add_argument("--timeout", type=float, default=45.0, help="[s] per episode")
    p.add_argument(
        "--policy",
        default="",
        help="a vla_node backend (flow, openpi with --server), expert (the sim's scripted expert) or "
        "external (a vla_node already running, e.g. on another machine: the demo starts only the sim and "
        "the bridge); default: flow with the policy shipped for the robot, the expert where none is",
    )
    p.add_argument("--model", default="", help="model directory (default: the policy shipped for the robot)")
    p.add_argument("--server", default="", help="with --policy openpi: host:port of the policy server")
    p.add_argument(
        "--phrasing",
        default=DEFAULT_PHRASING,
        choices=PHRASINGS,
        help="how the sim words each task; heldout: wording no training demo used",
    )
    p.add_argument(
        "--driver",
        default="",
        help="driver profile the sim plays and the bridge drives (config/<robot>.yaml, drivers:, e.g. "
        "franka_ros2, xs_sdk, aloha); default: the config's own JointTrajectory topics",
    )

    for name, (module, help_text) in MODULE_COMMANDS.items():
        p = sub.add_parser(name, help=help_text)
        importlib.import_module(module).add_arguments(p)
    for name, help_text in (("enable", "arm the bridge (/vla/enable true)"), ("disable", "disarm the bridge")):
        p = sub.add_parser(name, help=help_text)
        p.add_argument("--timeout", type=float, default=5.0, help="seconds to wait for the service")
    return parser


def _launch_options(args: argparse.Namespace):
    from ros2_vla.bringup import launch_options
    from ros2_vla.errors import ConfigError
    from ros2_vla.parameters import LAUNCH_ARGUMENTS, launch_arg_text

    values = {a.name: launch_arg_text(getattr(args, a.name)) for a in LAUNCH_ARGUMENTS}
    for text in args.param:
        key, sep, value = text.partition(":=")
        if not sep or "." not in key:
            raise ConfigError(f"--param takes node.name:=value (e.g. bridge.blend_steps:=3); got {text!r}")
        values[key] = value
    return launch_options(args.robot, values)


def run_command(args: argparse.Namespace) -> int:
    if args.command in MODULE_COMMANDS:
        return int(importlib.import_module(MODULE_COMMANDS[args.command][0]).run(args))
    if args.command in ("launch", "graph"):
        from ros2_vla.bringup import describe_graph

        specs = describe_graph(_launch_options(args))
        if args.command == "graph":
            for s in specs:
                secure = f" enclave={s.enclave}" if s.enclave else ""
                print(f"{s.name}: {s.executable} parameters={s.parameters} remappings={list(s.remappings)}{secure}")
            return 0
        if any(s.enclave for s in specs):
            from ros2_vla.dds_env import security_support

            why = security_support()
            if why:  # with Enforce every node would fail to start; say why once, start none
                print(f"ros2-vla launch: secure launch refused: {why} (ROS distros' Fast DDS has it)", file=sys.stderr)
                return 2
        from ros2_vla.launcher import run

        return run(specs)

    from ros2_vla.ros import tools  # needs rclpy: imported only for the commands that talk ROS

    if args.command == "demo":
        from pathlib import Path

        from ros2_vla.ros.demo import run_demo

        run_demo(
            args.robot,
            args.episodes,
            args.seed,
            Path(args.out),
            args.timeout,
            args.policy,
            args.model,
            args.phrasing,
            args.server,
            args.driver,
        )
        return 0  # it ran to its summary, which says what succeeded; errors raise
    if args.command == "instruct":
        return tools.instruct(args.text, timeout=args.timeout)
    if args.command == "status":
        return tools.status(once=args.once, timeout=args.timeout)
    if args.command in ("enable", "disable"):
        return tools.set_enabled(args.command == "enable", timeout=args.timeout)
    raise AssertionError(args.command)  # argparse rejects unknown commands first


def main(argv: list[str] | None = None) -> int:
    try:
        return run_command(build_parser().parse_args(argv))
    except Ros2VlaError as exc:
        print(f"ros2-vla: {exc}", file=sys.stderr)
        return 2
    except ModuleNotFoundError as exc:
        print(
            f"ros2-vla: missing requirement: {exc.name} is not installed; run scripts/setup and "
            f"`source scripts/env.sh` (or source your ROS 2 distro)",
            file=sys.stderr,
        )
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
