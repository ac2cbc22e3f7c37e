"""`ros2-vla latency ROBOT`: listen to a running graph and print its latency budget, stage by stage.

    ros2-vla latency franka [--duration 20] [--plot out/latency.png] [--json]

It subscribes to the robot's cameras, /vla/action_chunk and the arms' trajectory topics (from
config/<robot>.yaml; remap-free), records what arrives with this node's clock, and after --duration
seconds prints p50 / p95 of each stage (`ros2_vla.latency`): per camera capture -> receipt, waiting for
the other cameras, queueing before inference, inference, bridge planning -> first point out; and the
chunk delay against the model's own time. Works on a real robot's graph as on the sim's: run it on the
host of vla_node and bridge_node, or keep the hosts' clocks synchronized.
"""

from __future__ import annotations

import argparse
import json


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("robot", help="robot config name (config/<robot>.yaml): its camera and trajectory topics")
    parser.add_argument("--variant", default="", help="kinematic variant, e.g. panda for franka")
    parser.add_argument("--duration", type=float, default=20.0, help="[s] to listen (default 20)")
    from ros2_vla.policies.observation import DEFAULT_SYNC_SLOP

    parser.add_argument(
        "--slop",
        type=float,
        default=DEFAULT_SYNC_SLOP,
        help="[s] frames of one observation lie within this of its stamp (vla_node's sync_slop)",
    )
    parser.add_argument("--plot", default="", help="also draw the budget into this PNG")
    parser.add_argument("--json", action="store_true", help="print the summary as JSON instead of a table")


def run(args: argparse.Namespace) -> int:
    import time

    import rclpy
    from rclpy.node import Node
    from sensor_msgs.msg import Image
    from trajectory_msgs.msg import JointTrajectory

    from ros2_vla.bringup import NAMES
    from ros2_vla.config import load_robot_config
    from ros2_vla.errors import ConfigError
    from ros2_vla.latency import LatencyLog, chunk_latencies, plot, summary, table
    from ros2_vla.msg import ActionChunk
    from ros2_vla.ros.convert import time_to_sec
    from ros2_vla.ros.qos import COMMAND, SENSOR
    from ros2_vla.ros.spin import spinning

    if not args.duration > 0:
        raise ConfigError(f"--duration must be > 0 [s], got {args.duration}")
    robot = load_robot_config(args.robot, variant=args.variant or None)
    log = LatencyLog()
    rclpy.init()
    node = Node("latency")
    now = lambda: node.get_clock().now().nanoseconds * 1e-9  # noqa: E731
    for cam in robot.cameras:
        node.create_subscription(
            Image, cam.topic, lambda m, c=cam.name: log.add_frame(c, time_to_sec(m.header.stamp), now()), SENSOR
        )
    node.create_subscription(
        ActionChunk,
        NAMES.action_chunk,
        lambda m: log.add_chunk(time_to_sec(m.header.stamp), now(), m.inference_time),
        COMMAND,
    )
    for arm in robot.arms:
        node.create_subscription(JointTrajectory, arm.trajectory_topic, lambda m: log.add_trajectory(now()), COMMAND)
    try:
        with spinning(node):
            print(f"listening to {robot.name}'s graph for {args.duration:g} s ...", flush=True)
            time.sleep(args.duration)
    except KeyboardInterrupt:
        pass
    finally:
        node.destroy_node()
        rclpy.try_shutdown()
    s = summary(chunk_latencies(log, args.slop))
    print(json.dumps(s, indent=2) if args.json else table(s), flush=True)
    if args.plot and s.get("chunks"):
        plot(s, args.plot)
        print(f"plot: {args.plot}")
    return 0 if s.get("chunks") else 1
