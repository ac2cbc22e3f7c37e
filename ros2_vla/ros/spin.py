"""Spinning nodes: the `main()` every node shares (init, build, spin, a clean exit on Ctrl-C or SIGTERM),
and `spinning()` for scripts, tests and benchmarks that talk to a graph from a background thread."""

from __future__ import annotations

import signal
import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import rclpy
from rclpy.executors import ExternalShutdownException
from rclpy.node import Node

from ros2_vla.errors import Ros2VlaError


def run_node(make: Callable[[], Node], args: list[str] | None = None) -> int:
    """Spin the node `make()` builds until shutdown. A package error while building it (unknown
    robot, missing model...) is one line on stderr and exit code 2, not a stack trace."""
    rclpy.init(args=args if args is not None else sys.argv)
    # SIGTERM (a launcher's second attempt, `kill`) shuts down as cleanly as SIGINT.
    signal.signal(signal.SIGTERM, lambda *_: rclpy.try_shutdown())
    node = None
    try:
        node = make()
        rclpy.spin(node)
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    except Ros2VlaError as exc:
        print(f"[{getattr(node, 'get_name', lambda: 'ros2_vla')()}] error: {exc}", file=sys.stderr, flush=True)
        return 2
    except Exception:
        if rclpy.ok():
            raise
        # A signal shut the context down while a callback was publishing or the executor was building
        # its wait set (rclpy raises RCLError then, not ExternalShutdownException): a clean exit.
    finally:
        if node is not None:
            node.destroy_node()
        rclpy.try_shutdown()
    return 0


@contextmanager
def spinning(node: Node, period: float = 0.02) -> Iterator[Node]:
    """Spin `node` on its own executor in a background thread while the block runs (tools, tests and
    benchmarks that talk to a graph from a script); the node is removed from it, not destroyed, after."""
    from rclpy.executors import SingleThreadedExecutor

    executor = SingleThreadedExecutor()
    executor.add_node(node)
    stop = threading.Event()

    def spin() -> None:
        while not stop.is_set():
            executor.spin_once(timeout_sec=period)

    thread = threading.Thread(target=spin, name=f"spin {node.get_name()}", daemon=True)
    thread.start()
    try:
        yield node
    finally:
        stop.set()
        thread.join(timeout=2)
        executor.remove_node(node)
