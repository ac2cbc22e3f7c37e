"""Every node parameter, declared once: name, type, default, description, bounds or choices, and whether it
can change while the node runs (no ROS here: this is data).

The nodes declare their parameters from this table (`ros2_vla.ros.parameters` turns each entry into a
`ParameterDescriptor`: rclpy refuses a value out of range or of the wrong type, and a read-only one, with the
reason); the launch arguments of `launch/<robot>.launch.py` and the flags of `ros2-vla launch` are made
from `LAUNCH_ARGUMENTS`, which point into it; the README's parameter tables are printed from it
(`python -m ros2_vla.parameters`) and a test fails when they drift. The model is MoveIt Servo's
`servo_parameters.yaml` (one file: type, default, description, bounds), here as Python so a default that
is a fact of the core (the bridge's blend mode, the sim's phrasings) is referenced, not copied.

Kinds of parameter:
- read-only (`dynamic=False`): read once when the node starts; `ros2 param set` is refused as read-only;
- dynamic: read when used (the sim's at each `/sim/reset`, the recorder's metadata at each episode, the
  bridge's blending at the next chunk), settable any time within its bounds;
- reloading (`reloads=True`, vla_node): setting it reloads the policy. Its value is checked by the
  loader, which says what is wrong on `/vla/status` (a typo in a backend name gets a suggestion), so
  its choices are listed here but not enforced on set.
"""

from __future__ import annotations

import math
import sys
from dataclasses import dataclass, field
from typing import Union

from ros2_vla.collision_config import CHECK_COLLISIONS
from ros2_vla.errors import ConfigError
from ros2_vla.policies.base import MAX_INSTRUCTION_CHARS
from ros2_vla.policies.defaults import DEFAULT_BACKEND
from ros2_vla.policies.observation import DEFAULT_SYNC_SLOP
from ros2_vla.policies.registry import BACKENDS, LoadOptions
from ros2_vla.sim.phrasings import DEFAULT_PHRASING, PHRASINGS
from ros2_vla.trajectory.blend_config import BLEND_MODES, BlendConfig

Value = Union[bool, int, float, str]

EXPERT_PERIOD = 0.25  # [s] between the scripted expert's chunks (sim_node's expert_period, run_episode's policy_period)
RECORDER_QUEUE_SIZE = 256  # messages; two 640x480 rgb8 cameras at 30 Hz fill it in about 4 s


@dataclass(frozen=True)
class Param:
    """One node parameter."""

    name: str
    default: Value
    description: str
    # Inclusive bounds, both or neither, enforced by rclpy (IntegerRange / FloatingPointRange).
    low: float | None = None
    high: float | None = None
    choices: tuple[str, ...] = ()  # allowed strings (enforced on set unless `reloads`)
    dynamic: bool = False  # settable while the node runs; False: read-only, read at start
    reloads: bool = False  # vla_node: setting it reloads the policy (implies dynamic)

    def __post_init__(self) -> None:
        if (self.low is None) != (self.high is None):
            raise ConfigError(f"parameter {self.name}: give both bounds or neither")
        if self.choices and not isinstance(self.default, str):
            raise ConfigError(f"parameter {self.name}: choices are for strings")

    @property
    def type(self) -> type:
        return type(self.default)

    @property
    def settable(self) -> bool:
        return self.dynamic or self.reloads

    def check(self, value: Value, enforce_choices: bool = True) -> Value:
        """`value` if it has this parameter's type and is within its bounds and choices; ConfigError saying
        why not. An int is taken for a float parameter (YAML and launch arguments write 100 for 100.0)."""
        if self.type is float and isinstance(value, int) and not isinstance(value, bool):
            value = float(value)
        if type(value) is not self.type:
            raise ConfigError(f"parameter {self.name} takes {_KINDS[self.type]}; got {value!r}")
        if self.low is not None and not (self.low <= value <= self.high and not _nan(value)):
            raise ConfigError(f"parameter {self.name} must be in [{_fmt(self.low)}, {_fmt(self.high)}]; got {value!r}")
        if self.choices and enforce_choices and value not in self.choices:
            raise ConfigError(f"unknown {self.name} {value!r}; use one of {list(self.choices)}")
        return value

    def parse(self, text: str) -> Value:
        """A launch argument's text as this parameter's type (then checked)."""
        try:
            if self.type is bool:
                value: Value = parse_bool(text)
            elif self.type is int:
                value = int(text)
            elif self.type is float:
                value = float(text)
            else:
                value = str(text)
        except (ValueError, ConfigError):
            raise ConfigError(f"parameter {self.name} takes {_KINDS[self.type]}; got {text!r}") from None
        return self.check(value, enforce_choices=not self.reloads)

    def constraints(self) -> str:
        """The bounds or choices in words ("" when there are none)."""
        if self.choices:
            return "one of " + ", ".join(self.choices)
        if self.low is not None:
            return f"{_fmt(self.low)} to {_fmt(self.high)}"
        return ""


_KINDS = {bool: "true or false", int: "an integer", float: "a number", str: "a string"}


def _nan(value: Value) -> bool:
    return isinstance(value, float) and math.isnan(value)


def _fmt(x: float) -> str:
    return f"{x:g}"


def parse_bool(text: str) -> bool:
    """`true`/`false` (and 1/0, yes/no, on/off) as launch arguments spell them."""
    t = str(text).strip().lower()
    if t in ("true", "1", "yes", "on"):
        return True
    if t in ("false", "0", "no", "off", ""):
        return False
    raise ConfigError(f"expected true or false, got {text!r}")


ROBOT = Param("robot", "franka", "config name (`config/<robot>.yaml`): joints, cameras, topics, limits")
VARIANT = Param("variant", "", "kinematic variant (franka: `panda`; empty: the config's own)")
DRIVER = Param(
    "driver",
    "",
    "hardware profile under `drivers:` in `config/<robot>.yaml` (e.g. franka's `franka_ros2`, widowx's `xs_sdk`, "
    "aloha's `aloha`): the driver's command interfaces and joint state topics; empty: the config's own "
    "JointTrajectory topics and joint state topic",
)

BRIDGE = (
    ROBOT,
    VARIANT,
    DRIVER,
    Param("enabled", False, "arm as soon as joint states arrive (else wait for `/vla/enable`)"),
    Param(
        "blend_mode",
        BlendConfig.mode,
        "`replace`: play the new chunk from now; `skip`: drop steps already past given the chunk's observation "
        "stamp (latency compensation); `ensemble`: ACT temporal ensembling. In every mode a chunk with no step "
        "still ahead (a model slower than its dt) is played whole from now, from the pose commanded at its stamp, "
        "and `chunk_lateness` on `/vla/bridge/status` says how late it was; a chunk older than one already played "
        'is refused (`CHUNK_REJECTED`, "out of order"). Takes effect at the next chunk',
        choices=BLEND_MODES,
        dynamic=True,
    ),
    Param(
        "blend_steps",
        BlendConfig.blend_steps,
        "waypoints over which a new chunk takes over from the old path "
        "(0: switch at once); takes effect at the next chunk",
        low=0,
        high=100,
        dynamic=True,
    ),
    Param(
        "ensemble_m",
        BlendConfig.ensemble_m,
        "ACT ensemble weight decay `exp(-m*i)`, oldest chunk weighted most; takes effect at the next chunk",
        low=0.0,
        high=100.0,
        dynamic=True,
    ),
    Param(
        "joint_state_timeout",
        -1.0,
        "[s] older joint states: hold; <= 0 uses `safety.joint_state_timeout`",
        low=-1.0,
        high=60.0,
    ),
    Param(
        "control_rate_hz",
        -1.0,
        "[Hz] trajectory streaming rate; <= 0 uses `control_rate_hz` from config",
        low=-1.0,
        high=10000.0,
    ),
    Param("status_rate_hz", 10.0, "[Hz] `/vla/bridge/status`", low=0.1, high=1000.0),
    Param(
        "ik_backend",
        "pinocchio",
        "`pinocchio` (damped least squares on the shipped model) or `moveit` "
        "(MoveIt's `/compute_ik`, same seeds and targets, answers checked on our model)",
        choices=("pinocchio", "moveit"),
    ),
    Param(
        "check_collisions",
        CHECK_COLLISIONS,
        "check every planned step for self- and scene collision (the config's `collision:` model): slow down "
        "(`DECELERATE_FOR_COLLISION`) within its proximity thresholds, stop before a step nearer than its "
        "`halt_distance` (`HALT_FOR_COLLISION`)",
    ),
    Param(
        "collision_boxes",
        "",
        "more fixed boxes for the collision check, besides the config's table: `NAME X Y Z SX SY SZ` (centre and "
        "full sizes [m], world frame), several separated by `;` (e.g. `shelf 0.5 0.3 0.2 0.3 0.6 0.02`)",
    ),
    Param("moveit_group", "", "MoveIt planning group for `ik_backend:=moveit` (e.g. `fr3_arm`)"),
    Param("moveit_ik_timeout", 0.05, "[s] per `/compute_ik` call", low=0.001, high=10.0),
)

SIM = (
    Param("robot", "franka", "config name; the scene is built from the same chains as the bridge's IK"),
    VARIANT,
    DRIVER,
    Param(
        "seed",
        0,
        "scene and task of the first episode; each `/sim/reset` uses the next seed (the node sets it)",
        dynamic=True,
    ),
    Param(
        "task_kind",
        "",
        "`pick`, `place` (one-arm robots) or `bimanual_pick` (ALOHA); empty: drawn from the seed; read at each reset",
        dynamic=True,
    ),
    Param("realtime_factor", 1.0, "sim seconds per wall second", low=0.01, high=100.0),
    Param("cameras", True, "render and publish the configured cameras (`config/<robot>.yaml`)"),
    Param("expert", False, "play the scripted expert: privileged chunks sent to bridge_node on `/vla/action_chunk`"),
    Param("expert_period", EXPERT_PERIOD, "[s] between expert chunks", low=0.01, high=10.0),
    # The next three are checked at each reset, where a bad value fails the /sim/reset call with the reason.
    Param(
        "start_jitter",
        0.0,
        "[rad] at each reset, every arm joint starts up to this far from home (varied demo "
        "starts); >= 0, checked at reset",
        dynamic=True,
    ),
    Param(
        "disturbance",
        0.0,
        "[rad] std of a wandering offset between each arm joint's command and where its servo "
        "holds it (correlation time 1 s); >= 0, read at each reset (DART-style demos)",
        dynamic=True,
    ),
    Param(
        "slip",
        0.0,
        "chance [0, 1] that an episode's first grasp is made to fail once, the cube missed or dropped "
        "(`ros2_vla/sim/slip.py`); read at each reset (recovery demos)",
        dynamic=True,
    ),
    Param(
        "phrasing",
        DEFAULT_PHRASING,
        'how `/sim/task` words the task: `template` ("pick up the red cube"), `train` '
        '(a training paraphrase per reset, e.g. "lift the red cube"), `heldout` (wording kept out of training, '
        'e.g. "grab the red block"); `ros2_vla/sim/phrasings.py`. The scene and task of a seed do not change; '
        "read at each reset",
        choices=PHRASINGS,
        dynamic=True,
    ),
)

VLA = (
    Param("robot", "franka", "config name: cameras, joint names, action space"),
    VARIANT,
    DRIVER,
    Param(
        "policy",
        DEFAULT_BACKEND,
        "backend: `openvla`, `flow` or `openpi` (a policy server)",
        choices=tuple(BACKENDS),
        reloads=True,
    ),
    Param(
        "model",
        "",
        'local checkpoint directory (nothing is downloaded); with `policy:=flow`, `""` means the '
        "policy shipped for the robot in `models/<robot>_default` (Franka only: see `models/README.md`)",
        reloads=True,
    ),
    Param(
        "device",
        LoadOptions.device,
        "`auto`, `cpu`, `cuda` or `cuda:N` (asking for `cuda` without one is an error, not a fallback)",
        reloads=True,
    ),
    Param(
        "quantization",
        LoadOptions.quantization,
        "openvla: `4bit` (default on CUDA), `8bit`, `bf16`, `fp32` (default on CPU); flow: "
        "`fp32`, `bf16`; empty: the backend's default for the device",
        reloads=True,
    ),
    Param(
        "unnorm_key",
        LoadOptions.unnorm_key,
        "openvla: which dataset statistics un-normalize the actions (e.g. `bridge_orig`; "
        "required when the checkpoint has several)",
        reloads=True,
    ),
    Param(
        "server",
        LoadOptions.server,
        "openpi: `host:port` of the policy server (openpi's `serve_policy.py` or `ros2-vla serve`)",
        reloads=True,
    ),
    Param("api_key", LoadOptions.api_key, "openpi: sent as `Authorization: Api-Key <key>`", reloads=True),
    Param(
        "openpi_preset",
        LoadOptions.openpi_preset,
        "openpi: `droid`, `libero`, `aloha` or a YAML path mapping the robot to the server's "
        "keys; empty: the server is `ros2-vla serve`",
        reloads=True,
    ),
    Param(
        "rtc",
        LoadOptions.rtc,
        "flow: real-time chunking: the steps played while the model thinks are frozen to what the "
        'arm plays, the delay measured online (README: "Latency and real-time chunking")',
        reloads=True,
    ),
    Param("instruction", "", "instruction to start with; otherwise wait for `/vla/instruction`"),
    Param(
        "max_observation_age",
        0.5,
        "[s] older frames or joint states are refused (`OBSERVATION_REFUSED`)",
        low=0.001,
        high=60.0,
    ),
    Param(
        "sync_slop",
        DEFAULT_SYNC_SLOP,
        "[s] an observation's frames are the newest set taken within this of each "
        "other (approximate-time matching, as message_filters); none: `OBSERVATION_REFUSED` saying so. The sim's "
        "cameras of one rate share one stamp",
        low=0.0,
        high=10.0,
    ),
    Param("max_instruction_chars", MAX_INSTRUCTION_CHARS, "longer instructions are refused", low=1, high=1_000_000),
    Param("status_rate_hz", 2.0, "[Hz] `/vla/status`, also sent on every change", low=0.1, high=1000.0),
)

RECORDER = (
    Param("robot", "franka", "config name: cameras, joint states, controller topics"),
    Param(
        "variant", "", "kinematic variant (franka: `panda`), stored in the metadata; read at each episode", dynamic=True
    ),
    Param("sim", False, "also record `/sim/task` and `/sim/success`; store the sim's verdict (`sim_success`)"),
    Param("output_dir", "out/episodes", "episodes go to `<output_dir>/episode_NNNN`"),
    Param(
        "queue_size",
        RECORDER_QUEUE_SIZE,
        "messages waiting for the disk before new ones are dropped (and counted)",
        low=1,
        high=1_000_000,
    ),
    Param("task", "", "task kind or free text, stored in the metadata; read at each episode", dynamic=True),
    Param("notes", "", "free text, stored in the metadata; read at each episode", dynamic=True),
    Param("seed", -1, "sim scene seed, stored in the metadata (-1: unknown); read at each episode", dynamic=True),
    Param(
        "demonstrator",
        "",
        "`expert`, `teleop` or `policy:<name>`, stored in the metadata; read at each episode",
        dynamic=True,
    ),
    Param("status_rate_hz", 1.0, "[Hz] `~/status` (also sent on start, stop and discard)", low=0.1, high=1000.0),
)

# Keyed by the node's default name (bridge_node runs as /bridge, ...), as in a ROS parameters file.
NODE_PARAMETERS: dict[str, dict[str, Param]] = {
    node: {p.name: p for p in params}
    for node, params in (("bridge", BRIDGE), ("sim", SIM), ("vla", VLA), ("recorder", RECORDER))
}
EXECUTABLES = {"bridge": "bridge_node", "sim": "sim_node", "vla": "vla_node", "recorder": "recorder_node"}


def param(node: str, name: str) -> Param:
    """The declaration of `node`'s parameter `name`; ConfigError naming the known ones."""
    if node not in NODE_PARAMETERS:
        raise ConfigError(f"unknown node {node!r}; nodes: {list(NODE_PARAMETERS)}")
    if name not in NODE_PARAMETERS[node]:
        raise ConfigError(f"{node} has no parameter {name!r}; it has {list(NODE_PARAMETERS[node])}")
    return NODE_PARAMETERS[node][name]


def parse_override(text: str) -> tuple[str, str, Value]:
    """`node.name:=value` (a launch flag `--param`, or a dotted launch argument) -> (node, name, typed value)."""
    key, sep, raw = text.partition(":=")
    node, dot, name = key.partition(".")
    if not (sep and dot and node and name):
        raise ConfigError(f"expected node.parameter:=value (e.g. bridge.blend_steps:=3); got {text!r}")
    return node, name, param(node, name).parse(raw)


@dataclass(frozen=True)
class LaunchArg:
    """A launch argument (`name:=value`) and flag (`--name`): the node parameters it sets."""

    name: str
    default: Value
    description: str
    sets: tuple[str, ...] = field(default=())  # "node.parameter" set in each of those nodes that is started

    @property
    def flag(self) -> str:
        return "--" + self.name.replace("_", "-")


def _arg(target: str, name: str = "", description: str = "", every_node: bool = False) -> LaunchArg:
    """A launch argument that is one node parameter: its default and description are the parameter's."""
    node, _, pname = target.partition(".")
    p = param(node, pname)
    sets = tuple(f"{n}.{pname}" for n in NODE_PARAMETERS) if every_node else (target,)
    return LaunchArg(name or pname, p.default, description or p.description, sets)


LAUNCH_ARGUMENTS: tuple[LaunchArg, ...] = (
    LaunchArg("sim", False, "run the MuJoCo stand-in (sim_node) instead of the hardware drivers"),
    LaunchArg(
        "policy",
        "",
        "vla_node backend (`openvla`, `flow` or `openpi`); empty: no vla_node (chunks come from elsewhere)",
        ("vla.policy",),
    ),
    _arg("vla.model"),
    _arg("vla.device"),
    _arg("vla.quantization"),
    _arg("vla.unnorm_key"),
    _arg("vla.server"),
    _arg("vla.openpi_preset"),
    _arg("vla.rtc"),
    _arg("bridge.variant", every_node=True),
    LaunchArg(
        "driver",
        DRIVER.default,
        "hardware profile (`config/<robot>.yaml`, `drivers:`): the driver's interfaces for bridge_node and vla_node, "
        "and with the sim, what sim_node plays; empty: the config's own topics",
        ("bridge.driver", "sim.driver", "vla.driver"),
    ),
    LaunchArg(
        "enable",
        False,
        "arm the bridge at start instead of waiting for `/vla/enable` (always with the sim)",
        ("bridge.enabled",),
    ),
    _arg("sim.expert", description="with the sim: the scripted expert sends chunks through the bridge"),
    _arg("sim.seed", description="with the sim: the seed of the first scene and task"),
    _arg(
        "sim.phrasing",
        description="with the sim: how tasks are worded: `template`, `train` (training paraphrases) or `heldout`",
    ),
    LaunchArg(
        "secure",
        "",
        "SROS2 keystore (`ros2-vla security init`): every node runs in its enclave (`/ros2_vla/<node>`) with "
        "`ROS_SECURITY_ENABLE=true`, `ROS_SECURITY_STRATEGY=Enforce`; refused when an enclave is missing; "
        "empty: no security",
    ),
    LaunchArg(
        "record",
        "",
        "folder for recorder_node's rosbag2 episodes (empty: no recorder); start with `/recorder/start`",
        ("recorder.output_dir",),
    ),
)
LAUNCH_ARGS = {a.name: a for a in LAUNCH_ARGUMENTS}


def shown(value: Value) -> str:
    """A default as the docs and help texts write it: true/false, "" for empty, floats short."""
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, float):
        return f"{value:g}"
    return str(value) if value != "" else '""'


def launch_arg_text(value: Value) -> str:
    """A default as a launch argument writes it."""
    return str(value).lower() if isinstance(value, bool) else str(value)


def parse_launch_arg(name: str, text: str) -> Value:
    """A named launch argument's text as its type."""
    arg = LAUNCH_ARGS[name]
    if not arg.sets or name in ("policy", "record"):  # graph-level: sim, enable; or "" meaning "no such node"
        if isinstance(arg.default, bool):
            try:
                return parse_bool(text)
            except ConfigError as exc:
                raise ConfigError(f"launch argument {name}: {exc}") from None
        return str(text)
    node, _, pname = arg.sets[0].partition(".")
    return param(node, pname).parse(text)


# --- documentation ------------------------------------------------------------------------------
def markdown_table(node: str) -> str:
    """`node`'s parameters as the README's Markdown table."""
    lines = ["| parameter | default | bounds | set while running | meaning |", "|---|---|---|---|---|"]
    for p in NODE_PARAMETERS[node].values():
        when = "reloads the policy" if p.reloads else "yes" if p.dynamic else "no (read at start)"
        lines.append(f"| `{p.name}` | `{shown(p.default)}` | {p.constraints()} | {when} | {p.description} |")
    return "\n".join(lines)


def launch_table() -> str:
    """The launch arguments as a Markdown table."""
    lines = ["| launch argument | `ros2-vla launch` flag | default | sets | meaning |", "|---|---|---|---|---|"]
    for a in LAUNCH_ARGUMENTS:
        default = f"`{shown(a.default)}`"
        every = len(a.sets) == len(NODE_PARAMETERS)
        sets = f"every node's `{a.sets[0].partition('.')[2]}`" if every else ", ".join(f"`{s}`" for s in a.sets)
        lines.append(f"| `{a.name}:=` | `{a.flag}` | {default} | {sets or 'the graph'} | {a.description} |")
    return "\n".join(lines)


README_BLOCKS = {f"{node}_node parameters": lambda node=node: markdown_table(node) for node in NODE_PARAMETERS}
README_BLOCKS["launch arguments"] = launch_table


def render_readme(text: str) -> str:
    """`text` (the README) with each generated block between its markers replaced by a fresh one."""
    for name, make in README_BLOCKS.items():
        begin, end = f"<!-- BEGIN generated: {name} -->", f"<!-- END generated: {name} -->"
        head, found, rest = text.partition(begin)
        _, found_end, tail = rest.partition(end)
        if not (found and found_end):
            raise ConfigError(f"the README lacks the markers of the generated block {name!r}: {begin} ... {end}")
        text = f"{head}{begin}\n{make()}\n{end}{tail}"
    return text


def main(argv: list[str] | None = None) -> int:
    """`python -m ros2_vla.parameters [README.md]`: rewrite the README's generated tables in place
    (no argument: print them)."""
    argv = sys.argv[1:] if argv is None else argv
    if not argv:
        for name, make in README_BLOCKS.items():
            print(f"{name}:\n\n{make()}\n")
        return 0
    from pathlib import Path

    path = Path(argv[0])
    path.write_text(render_readme(path.read_text()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
