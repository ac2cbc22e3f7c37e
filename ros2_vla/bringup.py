"""The node graph of a robot, described once.

`launch/<robot>.launch.py` (ROS `launch`) and `ros2-vla launch` (the package's own launcher,
for machines without ROS `launch`) both turn `describe_graph()` into processes, so the two
can never disagree. Default topic and service names live here too; every one is remappable.
No ROS import: this is data.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ros2_vla.config import load_robot_config
from ros2_vla.driver_profile import load_driver_profile
from ros2_vla.errors import ConfigError
from ros2_vla.parameters import (
    EXECUTABLES,
    LAUNCH_ARGS,
    LAUNCH_ARGUMENTS,
    NODE_PARAMETERS,
    Value,
    launch_arg_text,
    param,
    parse_bool,  # noqa: F401  (the launch adapter's and the tests' name for it)
    parse_launch_arg,
    parse_override,
    shown,
)

# Every executable the package installs under lib/ros2_vla (CMakeLists.txt writes one entry
# script per name; the module is ros2_vla.nodes.<name> with a main()).
NODE_EXECUTABLES = tuple(EXECUTABLES.values())


@dataclass(frozen=True)
class Names:
    """Default topic and service names (README: "Topics, services, parameters"), shared by nodes, CLI and docs."""

    instruction: str = "/vla/instruction"  # std_msgs/String
    action_chunk: str = "/vla/action_chunk"  # ros2_vla/ActionChunk
    policy_status: str = "/vla/status"  # ros2_vla/PolicyStatus
    bridge_status: str = "/vla/bridge/status"  # ros2_vla/BridgeStatus
    predicted_path: str = "/vla/bridge/predicted_path"  # nav_msgs/Path
    enable: str = "/vla/enable"  # std_srvs/SetBool service
    sim_reset: str = "/sim/reset"  # std_srvs/Trigger service
    sim_task: str = "/sim/task"  # std_msgs/String, latched
    sim_success: str = "/sim/success"  # std_msgs/Bool


NAMES = Names()


def reset_answer(seed: int, instruction: str) -> str:
    """The message of a successful /sim/reset call: the new scene's seed and instruction."""
    return f"seed {seed}: {instruction}"


def parse_reset_answer(message: str) -> tuple[int, str]:
    """(seed, instruction) from `reset_answer`'s text; ConfigError on any other text."""
    head, sep, instruction = message.partition(": ")
    word, _, number = head.partition(" ")
    if not (sep and word == "seed" and number.lstrip("-").isdigit()):
        raise ConfigError(f"not a /sim/reset answer: {message!r}")
    return int(number), instruction


@dataclass(frozen=True)
class NodeSpec:
    """One node of the graph: what to run and how to configure it."""

    name: str  # ROS node name
    executable: str  # one of NODE_EXECUTABLES
    parameters: dict[str, Any] = field(default_factory=dict)
    remappings: tuple[tuple[str, str], ...] = ()
    enclave: str = ""  # SROS2 enclave (`--enclave`); "" without security
    env: tuple[tuple[str, str], ...] = ()  # environment variables the node needs (ROS_SECURITY_*)

    def __post_init__(self) -> None:
        if self.executable not in NODE_EXECUTABLES:
            raise ConfigError(f"node {self.name}: unknown executable {self.executable!r}; known: {NODE_EXECUTABLES}")


def _default(name: str):
    return LAUNCH_ARGS[name].default


@dataclass(frozen=True)
class LaunchOptions:
    """The launch arguments (`ros2_vla.parameters.LAUNCH_ARGUMENTS` says what each means and which node
    parameters it sets; the defaults are theirs), and any other node parameter in `params`."""

    robot: str  # config/<robot>.yaml
    sim: bool = _default("sim")
    policy: str = _default("policy")  # "" = no vla_node: chunks come from elsewhere
    model: str = _default("model")
    device: str = _default("device")
    quantization: str = _default("quantization")
    unnorm_key: str = _default("unnorm_key")
    server: str = _default("server")
    openpi_preset: str = _default("openpi_preset")
    rtc: bool = _default("rtc")
    variant: str = _default("variant")
    driver: str = _default("driver")
    enable: bool = _default("enable")
    expert: bool = _default("expert")
    seed: int = _default("seed")
    phrasing: str = _default("phrasing")
    record: str = _default("record")  # "" = no recorder_node
    secure: str = _default("secure")  # SROS2 keystore; "" = no security
    params: tuple[tuple[str, str, Value], ...] = ()  # (node, parameter, value): `node.name:=value`, set last

    def __post_init__(self) -> None:
        if self.expert and not self.sim:
            raise ConfigError("the scripted expert needs the sim: add sim:=true (--sim)")


def describe_graph(opts: LaunchOptions) -> list[NodeSpec]:
    """The nodes to start for `opts`, in start order, each with the parameters the launch sets (the rest
    keep the defaults they declare). Raises ConfigError for an unknown robot or a bad parameter value."""
    robot = load_robot_config(opts.robot, variant=opts.variant or None)  # fail early, clearly
    load_driver_profile(robot, opts.driver)
    started = (
        (["sim"] if opts.sim else [])
        + ["bridge"]
        + (["vla"] if opts.policy else [])
        + (["recorder"] if opts.record else [])
    )
    params: dict[str, dict[str, Any]] = {node: {"robot": robot.name} for node in started}
    for arg in LAUNCH_ARGUMENTS:
        for target in arg.sets:
            node, _, name = target.partition(".")
            if node in params:
                params[node][name] = getattr(opts, arg.name)
    params["bridge"]["enabled"] = opts.enable or opts.sim  # the sim's graph arms the bridge on its first states
    if "recorder" in params:
        params["recorder"]["sim"] = opts.sim
    for node, name, value in opts.params:
        if node not in params:
            raise ConfigError(
                f"{node}.{name}: this launch starts no {EXECUTABLES.get(node, node)} "
                f"(it starts {', '.join(EXECUTABLES[n] for n in started)})"
            )
        params[node][name] = value
    for node, values in params.items():
        for name, value in values.items():
            p = param(node, name)
            values[name] = p.check(value, enforce_choices=not p.reloads)
    if not opts.secure:
        return [NodeSpec(node, EXECUTABLES[node], params[node]) for node in started]
    keystore = Path(opts.secure).expanduser().resolve()
    env = (
        ("ROS_SECURITY_KEYSTORE", str(keystore)),
        ("ROS_SECURITY_ENABLE", "true"),
        ("ROS_SECURITY_STRATEGY", "Enforce"),
    )
    specs = [NodeSpec(node, EXECUTABLES[node], params[node], enclave=enclave(node), env=env) for node in started]
    for spec in specs:  # refuse before any process starts: rcl would fail them one by one
        missing = missing_enclave_files(keystore, spec.enclave)
        if missing:
            raise ConfigError(
                f"secure launch refused: enclave {spec.enclave} of {spec.name} is incomplete in {keystore} "
                f"(missing {', '.join(missing)}); make the keystore with `ros2-vla security init {opts.secure} "
                f"--robot {opts.robot}{' --driver ' + opts.driver if opts.driver else ''}`"
            )
    return specs


# What rmw reads from an enclave folder (rmw_dds_common's security files); links are followed.
ENCLAVE_FILES = (
    "identity_ca.cert.pem",
    "cert.pem",
    "key.pem",
    "permissions_ca.cert.pem",
    "governance.p7s",
    "permissions.p7s",
)


def enclave(node: str) -> str:
    """The SROS2 enclave a node of the graph runs in."""
    return f"/ros2_vla/{node}"


def missing_enclave_files(keystore: Path, name: str) -> list[str]:
    """The files of enclave `name` that `keystore` lacks (all of them when the folder is missing)."""
    folder = Path(keystore) / "enclaves" / name.lstrip("/")
    return [f for f in ENCLAVE_FILES if not (folder / f).is_file()]


def launch_arguments() -> list[tuple[str, str, str]]:
    """(name, default, description) of every launch argument, as `ros2 launch` declares them: the named
    ones, then `node.parameter` for every node parameter (empty: the node's default)."""
    named = [(a.name, launch_arg_text(a.default), a.description) for a in LAUNCH_ARGUMENTS]
    dotted = [
        (f"{node}.{p.name}", "", f"{EXECUTABLES[node]}: {p.description} (empty: {shown(p.default)})")
        for node, table in NODE_PARAMETERS.items()
        for p in table.values()
    ]
    return named + dotted


def launch_argument_defaults() -> dict[str, str]:
    """Launch-argument defaults as strings, as `ros2 launch` declares them."""
    return {name: default for name, default, _ in launch_arguments()}


def launch_options(robot: str, values: dict[str, str]) -> LaunchOptions:
    """LaunchOptions from launch-argument text (`ros2 launch` and `ros2-vla launch` both come here): the
    named arguments given, and each non-empty `node.parameter`."""
    known = launch_argument_defaults()
    unknown = sorted(set(values) - set(known))
    if unknown:
        raise ConfigError(f"unknown launch arguments {unknown}; see `ros2-vla launch --help`")
    named = {name: parse_launch_arg(name, text) for name, text in values.items() if name in LAUNCH_ARGS}
    overrides = tuple(
        parse_override(f"{name}:={text}") for name, text in values.items() if name not in LAUNCH_ARGS and text != ""
    )
    return LaunchOptions(robot=robot, **named, params=overrides)
