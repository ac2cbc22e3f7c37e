"""The bringup description, the launch files, CMakeLists.txt and setup.py agree."""

from __future__ import annotations

import ast
import importlib
import importlib.util
import re

import pytest
from helpers import ROOT

from ros2_vla.bringup import (
    NODE_EXECUTABLES,
    LaunchOptions,
    describe_graph,
    launch_argument_defaults,
    parse_bool,
    parse_reset_answer,
    reset_answer,
)
from ros2_vla.config import available_robots
from ros2_vla.errors import ConfigError

ROBOTS = ("franka", "widowx", "aloha")


def test_every_robot_has_a_config_and_a_launch_file():
    assert set(ROBOTS) <= set(available_robots())
    for robot in ROBOTS:
        assert (ROOT / "launch" / f"{robot}.launch.py").is_file()


def test_cmake_and_setup_install_exactly_the_bringup_executables():
    cmake = (ROOT / "CMakeLists.txt").read_text()
    listed = re.search(r"set\(ROS2_VLA_NODES ([^)]*)\)", cmake).group(1).split()
    assert tuple(listed) == NODE_EXECUTABLES
    setup_nodes = re.search(r"^NODES = (\(.*\))$", (ROOT / "setup.py").read_text(), re.M).group(1)
    assert ast.literal_eval(setup_nodes) == NODE_EXECUTABLES


@pytest.mark.parametrize("executable", NODE_EXECUTABLES)
def test_every_executable_has_a_main(executable):
    module = importlib.import_module(f"ros2_vla.nodes.{executable}")
    assert callable(module.main)


@pytest.mark.parametrize("robot", ROBOTS)
def test_graph_names_only_known_executables_and_the_robot(robot):
    for opts in (LaunchOptions(robot), LaunchOptions(robot, enable=True)):
        specs = describe_graph(opts)
        assert {s.executable for s in specs} <= set(NODE_EXECUTABLES)
        assert all(s.parameters["robot"] == robot for s in specs)
        assert len({s.name for s in specs}) == len(specs), "node names must be unique"


def test_bridge_declares_every_parameter_the_bringup_sets(rclpy_context):
    from ros2_vla.nodes.bridge_node import BridgeNode

    node = BridgeNode()
    try:
        for spec in describe_graph(LaunchOptions("franka", enable=True)):
            if spec.executable == "bridge_node":
                missing = [p for p in spec.parameters if not node.has_parameter(p)]
                assert not missing, f"bridge_node does not declare {missing}"
    finally:
        node.destroy_node()


def test_unknown_robot_and_variant_are_config_errors():
    with pytest.raises(ConfigError, match="Did you mean 'franka'"):
        describe_graph(LaunchOptions("frank"))
    with pytest.raises(ConfigError, match="variant"):
        describe_graph(LaunchOptions("franka", variant="ur5"))


def test_reset_answer_reads_back_and_other_text_is_refused():
    assert parse_reset_answer(reset_answer(100001, "put the red cube in the bowl: now")) == (
        100001,
        "put the red cube in the bowl: now",
    )
    for text in ("", "seed: pick", "seed x: pick", "reset 5: pick", "seed 5 pick"):
        with pytest.raises(ConfigError, match="not a /sim/reset answer"):
            parse_reset_answer(text)


def test_parse_bool():
    assert parse_bool("true") and parse_bool("1") and not parse_bool("false") and not parse_bool("")
    with pytest.raises(ConfigError):
        parse_bool("maybe")


@pytest.mark.parametrize("robot", ROBOTS)
def test_launch_file_matches_bringup(robot):
    path = ROOT / "launch" / f"{robot}.launch.py"
    if importlib.util.find_spec("launch") and importlib.util.find_spec("launch_ros"):
        # A ROS distro: build the real LaunchDescription and compare the declared arguments.
        spec = importlib.util.spec_from_file_location(f"{robot}_launch", path)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        description = module.generate_launch_description()
        declared = {a.name for a in description.get_launch_arguments()}
        assert declared == set(launch_argument_defaults())
        return
    # No ROS launch here: check statically that the file delegates to the bringup for its robot.
    tree = ast.parse(path.read_text())
    calls = [n for n in ast.walk(tree) if isinstance(n, ast.Call) and getattr(n.func, "id", "") == "generate_for"]
    assert len(calls) == 1 and ast.literal_eval(calls[0].args[0]) == robot
    imports = [n for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)]
    assert any(n.module == "ros2_vla.launch_description" for n in imports)


def test_launch_adapter_declares_and_reads_the_bringups_launch_arguments():
    """Without ROS launch here, statically: the adapter declares `launch_arguments()` and reads them back
    through `launch_options()` (test_parameters checks those against the schema)."""
    tree = ast.parse((ROOT / "ros2_vla" / "launch_description.py").read_text())
    imported = {
        a.name
        for n in ast.walk(tree)
        if isinstance(n, ast.ImportFrom) and n.module == "ros2_vla.bringup"
        for a in n.names
    }
    assert {"launch_arguments", "launch_options", "describe_graph"} <= imported
    called = {n.func.id for n in ast.walk(tree) if isinstance(n, ast.Call) and isinstance(n.func, ast.Name)}
    assert {"launch_arguments", "launch_options", "describe_graph", "DeclareLaunchArgument"} <= called
