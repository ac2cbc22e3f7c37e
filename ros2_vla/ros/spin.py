"""The `main()` every node shares: init, build, spin, and a clean exit on Ctrl-C or SIGTERM."""

from __future__ import annotations

import signal
import sys
from collections.abc import Callable

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
