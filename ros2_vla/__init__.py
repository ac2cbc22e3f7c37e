"""Vision-Language-Action policies on ROS 2 robot arms."""

# The generated interfaces (ros2_vla.msg) live in the colcon install space while the sources
# may be imported from a checkout (python run from the repo root): let `ros2_vla` span both.
from pkgutil import extend_path

__path__ = extend_path(__path__, __name__)
