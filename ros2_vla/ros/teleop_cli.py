"""`ros2-vla teleop ROBOT`: drive the arm with the keyboard, through the bridge like any policy.

Keys become ee_delta `ActionChunk`s on /vla/action_chunk (ros2_vla.teleop.keyboard holds the mapping),
so a teleoperated demo and a policy run take the same path: bridge_node's IK, limits and blending.

On a terminal the keys are read one by one (cbreak mode: no Enter, no echo; the terminal is restored
on any exit, Ctrl-C included). When stdin is not a terminal, every character of each line is a key, so
a script can drive it through a pipe, one line per chunk at most: `printf 'w\\nw\\n \\n' | ros2-vla teleop
franka` moves forward for two ticks, then toggles the gripper. End of input quits.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import time
from typing import TYPE_CHECKING

from ros2_vla.terminal import KeySource, cbreak, no_terminal_mode

if TYPE_CHECKING:  # rclpy is imported when teleop runs, not for --help
    from rclpy.node import Node

MATCH_SETTLE_S = 0.5  # [s] after the bridge's reader is matched, before the first chunk


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("robot", help="robot config name (config/<robot>.yaml), e.g. franka, widowx")
    parser.add_argument(
        "--speed",
        type=float,
        default=0.25,
        help="fraction (0, 1] of the config's safety maximum per step (default 0.25); +/- change it live",
    )
    parser.add_argument(
        "--hz",
        type=float,
        default=10.0,
        help="[Hz] at most this many chunks a second; keys in between are merged (default 10)",
    )
    parser.add_argument(
        "--key-duration", type=float, default=0.3, help="[s] of motion one key press asks for (default 0.3)"
    )
    parser.add_argument(
        "--instruction", default="", help="text for the chunks' instruction field (recorded with the demo)"
    )
    parser.add_argument("--timeout", type=float, default=10.0, help="[s] to wait for bridge_node to subscribe")


def run(args: argparse.Namespace) -> int:
    import rclpy
    from rclpy.node import Node

    from ros2_vla.actions.chunk import Chunk
    from ros2_vla.bringup import NAMES
    from ros2_vla.config import load_robot_config
    from ros2_vla.errors import ConfigError, Ros2VlaError
    from ros2_vla.msg import ActionChunk, BridgeStatus
    from ros2_vla.ros.convert import chunk_to_msg
    from ros2_vla.ros.qos import COMMAND, STATUS
    from ros2_vla.ros.tools import code_name
    from ros2_vla.teleop.keyboard import HELP, KeyboardTeleop, TeleopSettings

    if not args.hz > 0:
        raise ConfigError(f"--hz must be > 0, got {args.hz}")
    robot = load_robot_config(args.robot)
    teleop = KeyboardTeleop(robot, TeleopSettings(speed=args.speed, key_duration=args.key_duration))
    fd = sys.stdin.fileno()
    is_tty = os.isatty(fd)
    keys = KeySource(fd, is_tty)
    signal.signal(signal.SIGTERM, _interrupt)  # `kill` restores the terminal too, like Ctrl-C

    rclpy.init()
    node = Node("teleop")
    try:
        pub = node.create_publisher(ActionChunk, NAMES.action_chunk, COMMAND)
        last_code: list[int | None] = [None]

        def on_status(msg: BridgeStatus) -> None:  # tell the operator when the bridge will not move
            if msg.code != last_code[0]:
                last_code[0] = msg.code
                print(f"[bridge] {code_name(msg)} {msg.message}", flush=True)

        status = node.create_subscription(BridgeStatus, NAMES.bridge_status, on_status, STATUS)
        deadline = time.monotonic() + args.timeout
        while not _bridge_listens(node, pub.topic_name, status.topic_name, pub.get_subscription_count()):
            if time.monotonic() > deadline:
                raise Ros2VlaError(
                    f"nobody subscribes to {NAMES.action_chunk} after {args.timeout:.0f} s: is bridge_node "
                    f"running (ros2-vla launch {robot.name})?"
                )
            rclpy.spin_once(node, timeout_sec=0.05)
        # Matching is two-sided: the readers may not know this writer yet, and would drop what it sends now.
        settle = time.monotonic() + MATCH_SETTLE_S
        while time.monotonic() < settle:
            rclpy.spin_once(node, timeout_sec=0.05)

        sequence = 0

        def publish(values) -> None:
            nonlocal sequence
            sequence += 1
            chunk = Chunk(
                stamp=node.get_clock().now().nanoseconds * 1e-9,
                embodiment=robot.name,
                action_space=robot.action.space,
                dimension_names=teleop.names,
                dt=robot.action.dt,
                horizon=values.shape[0],
                values=values,
                instruction=args.instruction,
                policy="teleop:keyboard",
                sequence=sequence,
            )
            pub.publish(chunk_to_msg(chunk))

        print(HELP if is_tty else f"teleop {robot.name}: reading keys from stdin", flush=True)
        with cbreak(fd) if is_tty else no_terminal_mode():
            _key_loop(keys, teleop, publish, lambda: rclpy.spin_once(node, timeout_sec=0.0), 1.0 / args.hz)
        end = time.monotonic() + 0.3  # reliable delivery of the last chunk before the writer goes away
        while time.monotonic() < end:
            rclpy.spin_once(node, timeout_sec=0.05)
        print(f"teleop: sent {sequence} chunks", flush=True)
        return 0
    finally:
        node.destroy_node()
        rclpy.try_shutdown()


def _bridge_listens(node: Node, chunk_topic: str, status_topic: str, matched: int) -> bool:
    """A node that publishes the bridge status reads the chunk topic, and every reader of it is matched.
    Any subscriber is not enough: a recorder or a test's node may read chunks before the bridge does,
    and chunks sent then would never reach the bridge (volatile QoS)."""
    bridges = {(i.node_namespace, i.node_name) for i in node.get_publishers_info_by_topic(status_topic)}
    readers = node.get_subscriptions_info_by_topic(chunk_topic)
    return any((i.node_namespace, i.node_name) in bridges for i in readers) and matched >= len(readers)


def _key_loop(keys: KeySource, teleop, publish, spin, period: float) -> None:
    """Read keys until quit or end of input; once per `period` [s], publish the chunk they ask for."""
    from ros2_vla.teleop.keyboard import is_quit

    next_tick = time.monotonic()
    took = False  # pipe: a line was taken since the last tick
    while True:
        if took and not keys.is_tty:
            time.sleep(max(0.0, next_tick - time.monotonic()))
            got: list[str] | None = []
        else:
            got = keys.read(next_tick - time.monotonic())
        if got is None or any(is_quit(k) for k in got):
            break
        took = took or bool(got)
        for k in got:
            line = teleop.press(k)
            if line:
                print(line, flush=True)
        spin()
        if time.monotonic() >= next_tick:
            next_tick = max(next_tick + period, time.monotonic())
            took = False
            values = teleop.tick()
            if values is not None:
                publish(values)
    values = teleop.tick()  # keys that came with the end of input
    if values is not None:
        publish(values)


def _interrupt(signum, frame) -> None:
    raise KeyboardInterrupt
