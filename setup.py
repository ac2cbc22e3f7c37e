"""pip install of the ros2_vla Python package (core, nodes, CLI) without colcon.

The generated interfaces (ros2_vla.msg) come only from `colcon build` (CMakeLists.txt); a pip
install alone gives the ROS-free core (actions, kinematics, policies, sim, data) and the CLI.
"""

import os
from glob import glob

from setuptools import find_packages, setup

package_name = "ros2_vla"
# Node executables: the same list as CMakeLists.txt and ros2_vla.bringup.NODE_EXECUTABLES (test_bringup checks).
NODES = ("bridge_node", "sim_node", "vla_node", "recorder_node")

setup(
    name=package_name,
    version="0.1.0",
    packages=find_packages(include=[package_name, f"{package_name}.*"]),
    data_files=[
        ("share/ament_index/resource_index/packages", [f"resource/{package_name}"]),
        (f"share/{package_name}", ["package.xml"]),
        (f"share/{package_name}/launch", glob("launch/*.launch.py")),
        (f"share/{package_name}/config", [p for p in glob("config/*") if os.path.isfile(p)]),
        (f"share/{package_name}/config/openpi", glob("config/openpi/*.yaml")),  # openpi server presets
        (f"share/{package_name}/msg", glob("msg/*.msg")),  # bag type definitions (ros2_vla.data.typestore)
        *[(f"share/{package_name}/{d}", glob(f"{d}/*")) for d in sorted(glob("models/*_default"))],
    ],
    install_requires=["numpy", "PyYAML"],
    python_requires=">=3.10",
    zip_safe=False,
    entry_points={
        "console_scripts": [
            "ros2-vla = ros2_vla.cli:main",
            *[f"{n} = ros2_vla.nodes.{n}:main" for n in NODES],
        ],
    },
)
