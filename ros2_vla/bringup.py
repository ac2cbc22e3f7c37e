"""The node graph of a robot, described once.

`launch/<robot>.launch.py` (ROS `launch`) and `ros2-vla launch` (the package's own launcher,
for machines without ROS `launch`) both turn `describe_graph()` into processes, so the two
can never disagree. Default topic and service names live here too; every one is remappable.
No ROS import: this is data.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ros2_vla.config import load_robot_config
from ros2_vla.errors import ConfigError

# Every executable the package installs under lib/ros2_vla (CMakeLists.txt writes one entry
# script per name; the module is ros2_vla.nodes.<name> with a main()).
NODE_EXECUTABLES = ("bridge_node", "sim_node", "vla_node", "recorder_node")


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

    def __post_init__(self) -> None:
        if self.executable not in NODE_EXECUTABLES:
            raise ConfigError(f"node {self.name}: unknown executable {self.executable!r}; known: {NODE_EXECUTABLES}")


@dataclass(frozen=True)
class LaunchOptions:
    """The launch arguments: `sim:=`, `policy:=`, `model:=`, `device:=`, `quantization:=`, `unnorm_key:=`,
    `server:=`, `openpi_preset:=`, `rtc:=`, `variant:=`, `enable:=`, `expert:=`, `seed:=`, `phrasing:=`, `record:=`."""

    robot: str  # config/<robot>.yaml
    sim: bool = False  # run the MuJoCo stand-in instead of talking to hardware
    policy: str = ""  # policy backend for vla_node ("" = no vla_node: chunks come from elsewhere)
    model: str = ""  # model path (or id) for the backend
    device: str = "auto"  # vla_node: auto | cpu | cuda[:N]
    quantization: str = ""  # vla_node: openvla 4bit | 8bit | bf16 | fp32; flow fp32 | bf16 ("" = the device's default)
    unnorm_key: str = ""  # vla_node, openvla: the dataset statistics that un-normalize actions (e.g. bridge_orig)
    server: str = ""  # vla_node, openpi: host:port of the policy server
    openpi_preset: str = ""  # vla_node, openpi: droid | libero | aloha | a YAML path ("": a `ros2-vla serve` server)
    rtc: bool = False  # vla_node, flow: real-time chunking
    variant: str = ""  # kinematic variant, e.g. "panda" for franka
    enable: bool = False  # arm the bridge at start (otherwise /vla/enable arms it)
    expert: bool = False  # sim only: the scripted expert sends chunks through the bridge
    seed: int = 0  # sim only: scene and task of the first episode
    phrasing: str = "template"  # sim only: how /sim/task words tasks: template | train | heldout (sim/phrasings.py)
    record: str = ""  # folder for recorder_node's episodes ("" = no recorder); started idle: call /recorder/start

    def __post_init__(self) -> None:
        if self.expert and not self.sim:
            raise ConfigError("the scripted expert needs the sim: add sim:=true (--sim)")


def describe_graph(opts: LaunchOptions) -> list[NodeSpec]:
    """The nodes to start for `opts`, in start order. Raises ConfigError for an unknown robot."""
    robot = load_robot_config(opts.robot, variant=opts.variant or None)  # fail early, clearly
    common: dict[str, Any] = {"robot": robot.name, "variant": opts.variant}
    nodes: list[NodeSpec] = []
    if opts.sim:
        nodes.append(NodeSpec("sim", "sim_node", {**common, "expert": opts.expert, "seed": opts.seed,
                                                   "phrasing": opts.phrasing}))
    nodes.append(NodeSpec("bridge", "bridge_node", {**common, "enabled": opts.enable or opts.sim}))
    if opts.policy:
        nodes.append(NodeSpec("vla", "vla_node", {**common, "policy": opts.policy, "model": opts.model,
                                                   "device": opts.device, "quantization": opts.quantization,
                                                   "unnorm_key": opts.unnorm_key, "server": opts.server,
                                                   "openpi_preset": opts.openpi_preset, "rtc": opts.rtc}))
    if opts.record:
        nodes.append(NodeSpec("recorder", "recorder_node", {**common, "sim": opts.sim, "output_dir": opts.record}))
    return nodes


def launch_argument_defaults() -> dict[str, str]:
    """Launch-argument defaults as strings, as `ros2 launch` declares them."""
    d = LaunchOptions(robot="")
    return {"sim": str(d.sim).lower(), "policy": d.policy, "model": d.model, "device": d.device,
            "quantization": d.quantization, "unnorm_key": d.unnorm_key, "server": d.server,
            "openpi_preset": d.openpi_preset, "rtc": str(d.rtc).lower(), "variant": d.variant,
            "enable": str(d.enable).lower(), "expert": str(d.expert).lower(), "seed": str(d.seed),
            "phrasing": d.phrasing, "record": d.record}


def parse_bool(text: str) -> bool:
    """`true`/`false` (and 1/0, yes/no) as launch arguments spell them."""
    t = str(text).strip().lower()
    if t in ("true", "1", "yes", "on"):
        return True
    if t in ("false", "0", "no", "off", ""):
        return False
    raise ConfigError(f"expected true or false, got {text!r}")
