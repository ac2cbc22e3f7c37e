"""`ros2-vla eval ROBOT --policy flow|openvla|expert [--model DIR] [--episodes N] ...`

Closed-loop episodes in the MuJoCo sim, in one process and faster than real time, through the same
bridge core and the same observation/chunk conversion as vla_node. Prints one line per episode and
the summary; writes results.json, summary.md and a video of the first episodes to --out.
Exit 0 when the evaluation ran (whatever the success rate), 2 with one line on bad input.
"""

from __future__ import annotations

import argparse

from ros2_vla.evaluation.seeds import HELD_OUT_SEED


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from ros2_vla.sim.phrasings import PHRASINGS
    from ros2_vla.trajectory.blend_config import BLEND_MODES, BlendConfig

    parser.add_argument("robot", help="robot config name (config/<robot>.yaml), e.g. franka, widowx, aloha")
    parser.add_argument("--policy", required=True,
                        help="flow | openvla (a vla_node backend, needs --model) | expert (the scripted expert: a baseline)")
    parser.add_argument("--model", default="", help="checkpoint folder for flow / openvla")
    parser.add_argument("--episodes", type=int, default=50, help="episodes, one per seed (default 50)")
    parser.add_argument("--seed", type=int, default=HELD_OUT_SEED,
                        help=f"first seed (default {HELD_OUT_SEED}: training demos use seeds below it)")
    parser.add_argument("--kind", default="", help="task kind for every episode: pick | place | bimanual_pick "
                                                    "(default: drawn from each seed)")
    parser.add_argument("--phrasing", default="template", choices=PHRASINGS,
                        help="instruction wording: the template, training paraphrases, or held-out paraphrases")
    parser.add_argument("--out", default="out/eval", help="folder for results.json, summary.md and the video")
    parser.add_argument("--video-episodes", type=int, default=3, help="film the first N episodes (0: no video)")
    parser.add_argument("--time-limit", type=float, default=30.0, help="[s] sim time per episode")
    parser.add_argument("--policy-period", type=float, default=None,
                        help="[s] sim time between chunk requests (default: one per frame of the fastest camera, "
                             "0.1 s for franka; vla_node asks at least that often)")
    parser.add_argument("--chunk-delay", type=float, default=None,
                        help="[s] from an observation to its chunk reaching the bridge, the arm moving on meanwhile "
                             "(`ros2-vla demo` prints what the graph gives; default: DDS delivery only)")
    parser.add_argument("--blend-mode", default=BlendConfig.mode, choices=BLEND_MODES,
                        help=f"how the bridge takes over each new chunk (bridge_node's blend_mode; default {BlendConfig.mode})")
    parser.add_argument("--variant", default="", help="kinematic variant, e.g. panda for franka")
    parser.add_argument("--device", default="auto", help="auto | cpu | cuda")
    parser.add_argument("--quantization", default="", help="openvla: 4bit | 8bit | bf16 | fp32; flow: bf16 | fp32")
    parser.add_argument("--unnorm-key", default="", help="openvla: dataset statistics that un-normalize actions")
    parser.add_argument("--rtc", action="store_true",
                        help="flow: real-time chunking, each chunk continuing the one the arm is playing (vla_node's rtc)")


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from ros2_vla.config import load_robot_config
    from ros2_vla.evaluation.adapter import load_eval_policy
    from ros2_vla.evaluation.evaluate import EvalConfig, evaluate
    from ros2_vla.trajectory.blend_config import BlendConfig

    robot = load_robot_config(args.robot, variant=args.variant or None)
    config = EvalConfig(episodes=args.episodes, seed=args.seed, kind=args.kind, phrasing=args.phrasing,
                        time_limit=args.time_limit, policy_period=args.policy_period,
                        video_episodes=args.video_episodes, blend=BlendConfig(mode=args.blend_mode),
                        chunk_delay=EvalConfig.chunk_delay if args.chunk_delay is None else args.chunk_delay)
    policy = load_eval_policy(robot, args.policy, args.model, args.device, args.quantization, args.unnorm_key, args.rtc)
    report = evaluate(robot, policy, config, Path(args.out), log=lambda line: print(line, flush=True))
    print("\n" + report.markdown(), flush=True)
    return 0
