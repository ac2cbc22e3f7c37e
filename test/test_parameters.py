"""One parameter schema: the nodes declare from it, the launch arguments, the `ros2-vla launch` flags and the
README's tables come from it, and rclpy enforces its bounds over DDS."""

from __future__ import annotations

import argparse
import dataclasses
import math

import pytest
from helpers import ROOT, launched, wait_for

from ros2_vla.bringup import LaunchOptions, describe_graph, launch_argument_defaults, launch_arguments, launch_options
from ros2_vla.cli import build_parser
from ros2_vla.errors import ConfigError
from ros2_vla.parameters import (
    LAUNCH_ARGS,
    LAUNCH_ARGUMENTS,
    NODE_PARAMETERS,
    README_BLOCKS,
    parse_override,
    render_readme,
)

ALL = [(node, name) for node, table in NODE_PARAMETERS.items() for name in table]


@pytest.mark.parametrize(("node", "name"), ALL)
def test_every_default_passes_its_own_checks(node, name):
    p = NODE_PARAMETERS[node][name]
    assert p.check(p.default) == p.default
    assert p.description and not p.description.endswith(".")
    if p.low is not None:
        assert p.low <= p.default <= p.high and p.type in (int, float)


def test_bounds_and_choices_are_enforced_by_check_and_parse():
    blend_steps = NODE_PARAMETERS["bridge"]["blend_steps"]
    with pytest.raises(ConfigError, match=r"blend_steps must be in \[0, 100\]; got -3"):
        blend_steps.parse("-3")
    with pytest.raises(ConfigError, match="blend_steps takes an integer"):
        blend_steps.parse("2.5")
    with pytest.raises(ConfigError, match="unknown blend_mode 'blend'"):
        NODE_PARAMETERS["bridge"]["blend_mode"].parse("blend")
    assert NODE_PARAMETERS["bridge"]["control_rate_hz"].parse("100") == 100.0  # an int is taken for a float
    with pytest.raises(ConfigError, match="sync_slop must be in"):
        NODE_PARAMETERS["vla"]["sync_slop"].check(math.nan)
    # A parameter that reloads the policy is checked by the loader (a typo gets a suggestion there), not here.
    assert NODE_PARAMETERS["vla"]["policy"].parse("flwo") == "flwo"
    with pytest.raises(ConfigError, match="expected node.parameter:=value"):
        parse_override("blend_steps:=3")
    with pytest.raises(ConfigError, match="bridge has no parameter 'blend_step'"):
        parse_override("bridge.blend_step:=3")


def test_launch_options_take_their_defaults_from_the_schema():
    fields = {f.name: f.default for f in dataclasses.fields(LaunchOptions)}
    assert set(fields) == {"robot", "params", *LAUNCH_ARGS}
    for arg in LAUNCH_ARGUMENTS:
        assert fields[arg.name] == arg.default, arg.name
        for target in arg.sets:
            node, _, name = target.partition(".")
            assert name in NODE_PARAMETERS[node], target


def test_every_node_parameter_is_a_launch_argument_and_a_flag():
    dotted = {f"{node}.{name}" for node, name in ALL}
    assert set(launch_argument_defaults()) == set(LAUNCH_ARGS) | dotted
    assert all(description for _, _, description in launch_arguments())
    commands = next(a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction))
    launch = commands.choices["launch"]
    flags = {a.dest: a for a in launch._actions if a.dest != "help"}
    assert set(flags) == {"robot", "param", *LAUNCH_ARGS}
    for arg in LAUNCH_ARGUMENTS:
        assert arg.flag in flags[arg.name].option_strings


def test_launch_arguments_and_flags_reach_the_nodes_the_same_way():
    """`ros2 launch ... policy:=openvla unnorm_key:=bridge_orig quantization:=4bit bridge.blend_steps:=3` and
    `ros2-vla launch ... --unnorm-key bridge_orig --quantization 4bit --param bridge.blend_steps:=3`."""
    from_launch = launch_options(
        "franka",
        {
            "policy": "openvla",
            "unnorm_key": "bridge_orig",
            "quantization": "4bit",
            "bridge.blend_steps": "3",
            "sim.seed": "",
        },
    )
    args = build_parser().parse_args(
        [
            "launch",
            "franka",
            "--policy",
            "openvla",
            "--unnorm-key",
            "bridge_orig",
            "--quantization",
            "4bit",
            "--param",
            "bridge.blend_steps:=3",
        ]
    )
    from ros2_vla.cli import _launch_options

    assert _launch_options(args) == from_launch
    graph = {s.name: s.parameters for s in describe_graph(from_launch)}
    assert graph["vla"]["unnorm_key"] == "bridge_orig" and graph["vla"]["quantization"] == "4bit"
    assert graph["bridge"]["blend_steps"] == 3 and "sim" not in graph
    with pytest.raises(ConfigError, match="starts no recorder_node"):
        describe_graph(launch_options("franka", {"recorder.notes": "x"}))
    with pytest.raises(ConfigError, match="unknown launch arguments"):
        launch_options("franka", {"blend_steps": "3"})
    with pytest.raises(ConfigError, match="control_rate_hz must be in"):
        describe_graph(launch_options("franka", {"bridge.control_rate_hz": "1e6"}))


def test_readme_tables_are_the_generated_ones():
    text = (ROOT / "README.md").read_text()
    assert render_readme(text) == text, "README tables drifted: run `python -m ros2_vla.parameters README.md`"
    for name, make in README_BLOCKS.items():
        assert make() in text, name


def _descriptors(ros_node, node: str, names: list[str]):
    from rcl_interfaces.srv import DescribeParameters, GetParameters

    describe = ros_node.create_client(DescribeParameters, f"/{node}/describe_parameters")
    get = ros_node.create_client(GetParameters, f"/{node}/get_parameters")
    wait_for(lambda: describe.service_is_ready() and get.service_is_ready(), 30, f"/{node}'s parameter services")
    d = describe.call_async(DescribeParameters.Request(names=names))
    v = get.call_async(GetParameters.Request(names=names))
    wait_for(lambda: d.done() and v.done(), 10, f"/{node}/describe_parameters")
    return d.result().descriptors, v.result().values


def _set(ros_node, node: str, name: str, value):
    from rcl_interfaces.srv import SetParameters
    from rclpy.parameter import Parameter

    client = ros_node.create_client(SetParameters, f"/{node}/set_parameters")
    wait_for(client.service_is_ready, 10, f"/{node}/set_parameters")
    future = client.call_async(SetParameters.Request(parameters=[Parameter(name, value=value).to_parameter_msg()]))
    wait_for(future.done, 10, f"/{node}/set_parameters answer")
    return future.result().results[0]


def test_running_nodes_declare_the_schema_and_rclpy_enforces_it(ros_node, tmp_path):
    """All four nodes over DDS: what `ros2 param describe` and `ros2 param set` see."""
    from rcl_interfaces.msg import ParameterType

    types = {
        bool: ParameterType.PARAMETER_BOOL,
        int: ParameterType.PARAMETER_INTEGER,
        float: ParameterType.PARAMETER_DOUBLE,
        str: ParameterType.PARAMETER_STRING,
    }
    with launched(
        "franka",
        "--sim",
        "--policy",
        "flow",
        "--record",
        str(tmp_path / "episodes"),
        "--param",
        "bridge.blend_steps:=4",
    ) as proc:
        for node, table in NODE_PARAMETERS.items():
            descriptors, values = _descriptors(ros_node, node, list(table))
            for p, d, v in zip(table.values(), descriptors, values):
                assert (d.name, d.type, d.read_only, d.description) == (
                    p.name,
                    types[p.type],
                    not p.settable,
                    p.description,
                )
                assert d.additional_constraints == p.constraints()
                ranges = list(d.integer_range) + list(d.floating_point_range)
                assert [(r.from_value, r.to_value) for r in ranges] == ([(p.low, p.high)] if p.low is not None else [])
                assert v.type == types[p.type], f"{node}.{p.name} holds a value of another type"
        _, values = _descriptors(ros_node, "bridge", ["blend_steps"])
        assert values[0].integer_value == 4  # --param reached the node

        refused = _set(ros_node, "bridge", "blend_steps", -3)  # `ros2 param set /bridge blend_steps -3`
        assert not refused.successful and "out of range" in refused.reason and "Min: 0, Max: 100" in refused.reason
        refused = _set(ros_node, "bridge", "blend_mode", "blend")
        assert not refused.successful and all(mode in refused.reason for mode in ("replace", "skip", "ensemble"))
        refused = _set(ros_node, "bridge", "control_rate_hz", 50.0)
        assert not refused.successful and "read-only" in refused.reason
        refused = _set(ros_node, "bridge", "blend_steps", "3")
        assert not refused.successful and "type" in refused.reason.lower()
        assert _set(ros_node, "bridge", "blend_mode", "ensemble").successful
        assert _set(ros_node, "recorder", "notes", "set while running").successful
        assert proc.poll() is None
    assert "blending from the next chunk: ensemble, blend_steps 4" in proc.stdout.read()


def test_a_bad_value_at_start_is_one_line_naming_the_parameter():
    import subprocess
    import sys

    out = subprocess.run(
        [sys.executable, "-m", "ros2_vla.nodes.bridge_node", "--ros-args", "-p", "blend_steps:=-3"],
        capture_output=True,
        text=True,
        timeout=60,
        cwd="/",
    )
    assert out.returncode == 2 and "Traceback" not in out.stderr, out.stderr
    assert "blend_steps" in out.stderr and "0 to 100" in out.stderr, out.stderr


def test_train_and_eval_options_are_the_config_fields():
    """`ros2-vla train` and `ros2-vla eval` take their options' types, defaults and help from TrainConfig and
    EvalConfig: an option left out is the field's default, one given is typed by the field."""
    from ros2_vla.evaluation import cli as eval_cli
    from ros2_vla.evaluation.eval_config import EvalConfig
    from ros2_vla.training import cli as train_cli
    from ros2_vla.training.run_config import TrainConfig

    parser = build_parser()
    args = parser.parse_args(["train", "data", "out"])
    assert train_cli.given_options(args) == {}
    args = parser.parse_args(
        [
            "train",
            "data",
            "out",
            "--steps",
            "5",
            "--lr",
            "1e-3",
            "--image-size",
            "64",
            "96",
            "--no-progress",
            "--override",
            "horizon=4",
        ]
    )
    assert TrainConfig(**train_cli.given_options(args)) == TrainConfig(
        steps=5, lr=1e-3, image_size=(64, 96), progress=False, overrides={"horizon": 4}
    )
    with pytest.raises(SystemExit):
        parser.parse_args(["train", "data", "out", "--steps", "five"])
    args = parser.parse_args(["eval", "franka", "--policy", "flow", "--chunk-delay", "0.3", "--phrasing", "heldout"])
    from ros2_vla.config_args import given

    assert EvalConfig(**given(args, eval_cli.CONFIG_OPTIONS)) == EvalConfig(chunk_delay=0.3, phrasing="heldout")
    assert args.device == NODE_PARAMETERS["vla"]["device"].default and args.rtc is False
    fields = {f.name: f for f in dataclasses.fields(EvalConfig)}
    commands = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    help_of = {a.dest: a.help for a in commands.choices["eval"]._actions}
    for name in eval_cli.CONFIG_OPTIONS:
        assert help_of[name].startswith(fields[name].metadata["help"].replace("%", "%%")), name
    help_of = {a.dest: a.help for a in commands.choices["train"]._actions}
    assert help_of["steps"] == f"optimizer steps in all (default {TrainConfig.steps})"
