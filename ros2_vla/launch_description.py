"""ROS `launch` adapter over the bringup: `launch/<robot>.launch.py` calls `generate_for(robot)`.

Only importable where ROS's `launch` and `launch_ros` are installed (a ROS 2 distro); elsewhere
`ros2-vla launch` runs the same graph from the same `describe_graph()`. Every argument is declared from
`bringup.launch_arguments()` (the parameter schema) and read back through `bringup.launch_options()`,
as `ros2-vla launch` reads its flags.
"""

from __future__ import annotations

from launch.actions import DeclareLaunchArgument, OpaqueFunction
from launch.substitutions import LaunchConfiguration
from launch_ros.actions import Node

from launch import LaunchContext, LaunchDescription
from ros2_vla.bringup import describe_graph, launch_arguments, launch_options


def _nodes(context: LaunchContext, robot: str) -> list[Node]:
    values = {name: LaunchConfiguration(name).perform(context) for name, _, _ in launch_arguments()}
    return [
        Node(
            package="ros2_vla",
            executable=spec.executable,
            name=spec.name,
            parameters=[spec.parameters],
            remappings=list(spec.remappings),
            ros_arguments=["--enclave", spec.enclave] if spec.enclave else [],
            additional_env=dict(spec.env),
            output="screen",
            emulate_tty=True,
        )
        for spec in describe_graph(launch_options(robot, values))
    ]


def generate_for(robot: str) -> LaunchDescription:
    args = [
        DeclareLaunchArgument(name, default_value=default, description=description)
        for name, default, description in launch_arguments()
    ]
    return LaunchDescription([*args, OpaqueFunction(function=_nodes, kwargs={"robot": robot})])
