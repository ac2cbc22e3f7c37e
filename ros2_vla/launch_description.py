"""ROS `launch` adapter over the bringup: `launch/<robot>.launch.py` calls `generate_for(robot)`.

Only importable where ROS's `launch` and `launch_ros` are installed (a ROS 2 distro); elsewhere
`ros2-vla launch` runs the same graph from the same `describe_graph()`.
"""

from __future__ import annotations

from launch import LaunchContext, LaunchDescription
from launch.actions import DeclareLaunchArgument, OpaqueFunction
from launch.substitutions import LaunchConfiguration
from launch_ros.actions import Node

from ros2_vla.bringup import LaunchOptions, describe_graph, launch_argument_defaults, parse_bool

_DESCRIPTIONS = {
    "sim": "run the MuJoCo stand-in instead of the hardware drivers",
    "policy": "vla_node backend (openvla | flow | openpi); empty: no vla_node",
    "model": "model directory for the policy backend",
    "device": "where vla_node runs the model: auto | cpu | cuda | cuda:N",
    "quantization": "openvla: 4bit | 8bit | bf16 | fp32; flow: fp32 | bf16 (empty: the device's default)",
    "unnorm_key": "openvla: which dataset statistics un-normalize actions (e.g. bridge_orig)",
    "server": "openpi: host:port of the policy server (openpi's serve_policy.py or ros2-vla serve)",
    "openpi_preset": "openpi: droid | libero | aloha | a YAML path (empty: the server is ros2-vla serve)",
    "rtc": "flow: real-time chunking, each chunk continuing the one the arm is playing (true | false)",
    "variant": "kinematic variant of the robot (franka: fr3 | panda)",
    "enable": "arm the bridge at start instead of waiting for /vla/enable",
    "expert": "with sim:=true, the scripted expert sends chunks through the bridge",
    "seed": "with sim:=true, the seed of the first scene and task",
    "phrasing": "with sim:=true, how tasks are worded: template | train (training paraphrases) | heldout",
    "record": "folder for recorder_node's rosbag2 episodes (empty: no recorder); start with /recorder/start",
}


def _nodes(context: LaunchContext, robot: str) -> list[Node]:
    arg = lambda name: LaunchConfiguration(name).perform(context)  # noqa: E731
    opts = LaunchOptions(
        robot=robot,
        sim=parse_bool(arg("sim")),
        policy=arg("policy"),
        model=arg("model"),
        device=arg("device"),
        quantization=arg("quantization"),
        unnorm_key=arg("unnorm_key"),
        server=arg("server"),
        openpi_preset=arg("openpi_preset"),
        rtc=parse_bool(arg("rtc")),
        variant=arg("variant"),
        enable=parse_bool(arg("enable")),
        expert=parse_bool(arg("expert")),
        seed=int(arg("seed")),
        phrasing=arg("phrasing"),
        record=arg("record"),
    )
    return [
        Node(
            package="ros2_vla",
            executable=spec.executable,
            name=spec.name,
            parameters=[spec.parameters],
            remappings=list(spec.remappings),
            output="screen",
            emulate_tty=True,
        )
        for spec in describe_graph(opts)
    ]


def generate_for(robot: str) -> LaunchDescription:
    args = [
        DeclareLaunchArgument(name, default_value=default, description=_DESCRIPTIONS[name])
        for name, default in launch_argument_defaults().items()
    ]
    return LaunchDescription([*args, OpaqueFunction(function=_nodes, kwargs={"robot": robot})])
