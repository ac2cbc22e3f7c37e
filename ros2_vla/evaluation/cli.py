"""`ros2-vla eval ROBOT --policy flow|openvla|expert [--model DIR] [--episodes N] ...`

Closed-loop episodes in the MuJoCo sim, in one process and faster than real time, through the same
bridge core and the same observation/chunk conversion as vla_node. Prints one line per episode and
the summary; writes results.json, summary.md and a video of the first episodes to --out.
Exit 0 when the evaluation ran (whatever the success rate), 2 with one line on bad input.
"""

from __future__ import annotations

import argparse

# Options that are EvalConfig fields (type, default and help are the field's), and vla_node parameters.
CONFIG_OPTIONS = (
    "episodes",
    "seed",
    "kind",
    "phrasing",
    "time_limit",
    "policy_period",
    "chunk_delay",
    "video_episodes",
)
LOAD_OPTIONS = ("device", "quantization", "unnorm_key", "rtc")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from ros2_vla.config_args import add_config_arguments, add_parameter_arguments
    from ros2_vla.evaluation.eval_config import EvalConfig
    from ros2_vla.trajectory.blend_config import BLEND_MODES, BlendConfig

    parser.add_argument("robot", help="robot config name (config/<robot>.yaml), e.g. franka, widowx, aloha")
    parser.add_argument(
        "--policy",
        required=True,
        help="flow | openvla (a vla_node backend, needs --model) | expert (the scripted expert: a baseline)",
    )
    parser.add_argument("--model", default="", help="checkpoint folder for flow / openvla")
    add_config_arguments(parser, EvalConfig, CONFIG_OPTIONS)
    parser.add_argument("--out", default="out/eval", help="folder for results.json, summary.md and the video")
    parser.add_argument(
        "--blend-mode",
        default=BlendConfig.mode,
        choices=BLEND_MODES,
        help=f"how the bridge takes over each new chunk (bridge_node's blend_mode; default {BlendConfig.mode})",
    )
    parser.add_argument(
        "--no-collision-check",
        dest="check_collisions",
        action="store_false",
        help="the bridge does not check planned steps for collisions (bridge_node's check_collisions:=false)",
    )
    parser.add_argument("--variant", default="", help="kinematic variant, e.g. panda for franka")
    add_parameter_arguments(parser, "vla", LOAD_OPTIONS, what="as vla_node's: ")


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from ros2_vla.config import load_robot_config
    from ros2_vla.config_args import given
    from ros2_vla.evaluation.adapter import load_eval_policy
    from ros2_vla.evaluation.eval_config import EvalConfig
    from ros2_vla.evaluation.evaluate import evaluate
    from ros2_vla.trajectory.blend_config import BlendConfig

    robot = load_robot_config(args.robot, variant=args.variant or None)
    config = EvalConfig(
        **given(args, CONFIG_OPTIONS), blend=BlendConfig(mode=args.blend_mode), check_collisions=args.check_collisions
    )
    policy = load_eval_policy(robot, args.policy, args.model, args.device, args.quantization, args.unnorm_key, args.rtc)
    report = evaluate(robot, policy, config, Path(args.out), log=lambda line: print(line, flush=True))
    print("\n" + report.markdown(), flush=True)
    return 0
