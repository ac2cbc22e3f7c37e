"""The DDS environment per distro: the Fast DDS profile reaches the Fast DDS that runs (2.x and 3.x read
different variables), checked on the shared-memory segment a real participant maps; host-only
discovery spelled for Humble too."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
from helpers import ROOT

from ros2_vla.dds_env import PROFILE_VARIABLES, profile_file, profile_variable, set_localhost_only, set_profile

LARGE_SEGMENT = 16 * 1024 * 1024  # config/fastdds_large_shm.xml
DEFAULT_SEGMENT = 512 * 1024  # Fast DDS's own

# A participant of this process, then the sizes of the shared-memory segments it mapped (its data
# segment; not the port queues or the lock files).
PROBE = """
import os, rclpy
from pathlib import Path
rclpy.init()
node = rclpy.create_node("shm_probe")
maps = {line.split()[5] for line in Path("/proc/self/maps").read_text().splitlines() if len(line.split()) >= 6}
segments = [p for p in maps if p.startswith(("/dev/shm/fastdds_", "/dev/shm/fastrtps_"))]
print(max(os.path.getsize(p) for p in segments if "_port" not in p and not p.endswith("_el")))
"""


def _segment_size(env: dict[str, str]) -> int:
    out = subprocess.run([sys.executable, "-c", PROBE], env=env, capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert "deprecated" not in out.stderr, out.stderr  # the variable this Fast DDS reads, not an old name
    return int(out.stdout.split()[-1])


def test_the_profile_variable_follows_the_fast_dds_of_the_prefix(tmp_path):
    fastdds_2, fastdds_3 = tmp_path / "jazzy", tmp_path / "kilted"
    (fastdds_2 / "lib").mkdir(parents=True)
    (fastdds_2 / "lib" / "libfastrtps.so").touch()
    (fastdds_3 / "lib").mkdir(parents=True)
    (fastdds_3 / "lib" / "libfastdds.so").touch()
    assert profile_variable({"AMENT_PREFIX_PATH": str(fastdds_3)}) == "FASTDDS_DEFAULT_PROFILES_FILE"
    assert profile_variable({"AMENT_PREFIX_PATH": f"{tmp_path}/ws:{fastdds_2}"}) == "FASTRTPS_DEFAULT_PROFILES_FILE"
    env = {"AMENT_PREFIX_PATH": str(fastdds_2), "FASTDDS_DEFAULT_PROFILES_FILE": "/old.xml"}
    set_profile(env, "/p.xml")
    assert env == {"AMENT_PREFIX_PATH": str(fastdds_2), "FASTRTPS_DEFAULT_PROFILES_FILE": "/p.xml"}
    assert profile_file(env) == "/p.xml"
    set_profile(env, None)
    assert profile_file(env) is None and not set(PROFILE_VARIABLES) & set(env)


def test_host_only_discovery_is_spelled_for_the_distro():
    for distro in (None, "jazzy", "kilted"):
        env = {"ROS_DISTRO": distro} if distro else {}
        set_localhost_only(env)
        assert env.get("ROS_AUTOMATIC_DISCOVERY_RANGE") == "LOCALHOST" and "ROS_LOCALHOST_ONLY" not in env
    humble = {"ROS_DISTRO": "humble"}
    set_localhost_only(humble)
    assert humble["ROS_LOCALHOST_ONLY"] == "1"
    subnet = {"ROS_DISTRO": "humble", "ROS_AUTOMATIC_DISCOVERY_RANGE": "SUBNET"}
    set_localhost_only(subnet)  # what the user set stands
    assert subnet == {"ROS_DISTRO": "humble", "ROS_AUTOMATIC_DISCOVERY_RANGE": "SUBNET"}


def test_env_sh_sets_the_variable_python_would():
    out = subprocess.run(
        ["bash", "-c", f"source {ROOT}/scripts/env.sh && env"], capture_output=True, text=True, timeout=60, cwd=ROOT
    )
    shell = dict(line.split("=", 1) for line in out.stdout.splitlines() if "=" in line)
    variable = profile_variable(shell)
    assert shell.get(variable) == str(ROOT / "config" / "fastdds_large_shm.xml")
    assert not (set(PROFILE_VARIABLES) - {variable}) & set(shell)


def test_the_shipped_profile_gives_this_distros_participants_the_large_segment():
    pytest.importorskip("rclpy")
    env = dict(os.environ)
    set_profile(env, ROOT / "config" / "fastdds_large_shm.xml")
    assert _segment_size(env) >= LARGE_SEGMENT
    set_profile(env, None)
    assert _segment_size(env) < 2 * DEFAULT_SEGMENT  # so the check above can tell the difference
