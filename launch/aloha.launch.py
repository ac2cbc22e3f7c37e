"""ros2 launch ros2_vla aloha.launch.py [sim:=true] [policy:=flow] [model:=DIR] [enable:=true]

The node graph comes from ros2_vla.bringup (config/aloha.yaml); `ros2-vla launch aloha` runs the same.
"""

from ros2_vla.launch_description import generate_for


def generate_launch_description():
    return generate_for("aloha")
