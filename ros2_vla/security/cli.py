"""`ros2-vla security init KEYSTORE`: an SROS2 keystore for a robot's graph (no ROS needed to make one).

    ros2-vla security init ~/vla_keystore --robot franka --driver franka_ros2 --domain 7
    ros2-vla launch franka --driver franka_ros2 --secure ~/vla_keystore

Writes the CA, the signed governance of the domain, and one enclave per node of the graph
(/ros2_vla/sim, bridge, vla, recorder), one for the operator's tools (/ros2_vla/operator: `ros2-vla
instruct|enable|status|demo|record|teleop|latency`, run with ROS_SECURITY_ENCLAVE_OVERRIDE=/ros2_vla/operator)
and one for the robot's driver (/ros2_vla/driver), each allowed exactly its endpoints.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from ros2_vla.config import load_robot_config
from ros2_vla.driver_profile import load_driver_profile
from ros2_vla.security.graph_policy import graph_rules
from ros2_vla.security.keystore import create_enclave, create_keystore


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="action", required=True)
    p = sub.add_parser("init", help="create a keystore with an enclave per node of the graph")
    p.add_argument("keystore", help="folder to create (ROS_SECURITY_KEYSTORE)")
    p.add_argument("--robot", default="franka", help="robot config name (default franka)")
    p.add_argument(
        "--driver", default="", help="driver profile (config/<robot>.yaml, drivers:); default: its own topics"
    )
    p.add_argument(
        "--domain",
        type=int,
        default=int(os.environ.get("ROS_DOMAIN_ID", "0") or 0),
        help="ROS_DOMAIN_ID the permissions are for (default: $ROS_DOMAIN_ID, else 0)",
    )


def init_keystore(root: Path, robot: str, driver: str, domain_id: int) -> list[str]:
    """Create the keystore and every enclave of the graph; returns the enclave names."""
    cfg = load_robot_config(robot)
    rules = graph_rules(cfg, load_driver_profile(cfg, driver))
    create_keystore(root, domain_id)
    for name, r in rules.items():
        create_enclave(root, name, r, domain_id)
    return sorted(rules)


def run(args: argparse.Namespace) -> int:
    names = init_keystore(Path(args.keystore), args.robot, args.driver, args.domain)
    print(f"keystore {args.keystore} (domain {args.domain}): enclaves {', '.join(names)}")
    return 0
