"""`ros2-vla serve ROBOT --policy flow|openvla [--model DIR] [--port 8000]`: a backend behind openpi's protocol.

Loads the backend as vla_node would (same robot config, same loading), then answers openpi-protocol
clients until Ctrl-C: vla_node's `openpi` backend on another machine, or openpi's own
`WebsocketClientPolicy`. One server serves several robots' clients in arrival order.
"""

from __future__ import annotations

import argparse
import signal


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from ros2_vla.policies.registry import LoadOptions
    from ros2_vla.serving.protocol import DEFAULT_PORT

    parser.add_argument("robot", help="robot config name (config/<robot>.yaml): cameras, state and action layout")
    parser.add_argument("--policy", default="flow", help="in-process backend to serve: flow | openvla")
    parser.add_argument(
        "--model", default="", help="checkpoint folder (flow: default the policy shipped for the robot)"
    )
    parser.add_argument("--variant", default="", help="kinematic variant, e.g. panda for franka")
    parser.add_argument("--device", default=LoadOptions.device, help="auto | cpu | cuda | cuda:N")
    parser.add_argument(
        "--quantization",
        default=LoadOptions.quantization,
        help="openvla: 4bit | 8bit | bf16 | fp32; flow: fp32 | bf16 (default: the device's)",
    )
    parser.add_argument(
        "--unnorm-key", default=LoadOptions.unnorm_key, help="openvla: the dataset statistics that un-normalize actions"
    )
    parser.add_argument("--host", default="0.0.0.0", help="address to listen on (default every interface)")
    parser.add_argument("--port", type=int, default=DEFAULT_PORT, help=f"port (default {DEFAULT_PORT}, openpi's)")
    parser.add_argument("--api-key", default="", help="require `Authorization: Api-Key KEY` from clients")


def run(args: argparse.Namespace) -> int:
    from ros2_vla.config import load_robot_config
    from ros2_vla.policies.registry import LoadOptions, load_policy
    from ros2_vla.serving.policy_service import PolicyService
    from ros2_vla.serving.server import PolicyServer

    robot = load_robot_config(args.robot, variant=args.variant or None)
    opts = LoadOptions(model=args.model, device=args.device, quantization=args.quantization, unnorm_key=args.unnorm_key)
    service = PolicyService(robot, load_policy(args.policy, robot, opts))
    server = PolicyServer(
        service,
        service.metadata,
        host=args.host,
        port=args.port,
        api_key=args.api_key,
        log=lambda line: print(f"[serve] {line}", flush=True),
    )
    print(
        f"[serve] {service.metadata['policy']} for {robot.name} on ws://{args.host}:{args.port} "
        f"(health: http://{args.host}:{args.port}/healthz); Ctrl-C stops",
        flush=True,
    )
    # Ctrl-C and `kill` take the same way out, set here rather than inherited: a shell that started the
    # server in the background may have left SIGINT ignored, and asyncio's own Ctrl-C path (cancelling
    # the main task) once outlasted 30 s on a loaded test machine where this one did not.
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: server.stop())
    server.serve_forever()
    print(f"[serve] stopped after {server.requests} request(s)", flush=True)
    return 0
