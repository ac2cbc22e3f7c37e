"""A URDF document built from a `ChainSpec`, so every robot model comes from `config/<robot>.yaml`.

Links get simple shapes (a cylinder from each joint to the next, a sphere where two joints
share an origin) and the inertia of that solid: enough for pinocchio, RViz and a MuJoCo
import, not a dynamics identification.
"""

from __future__ import annotations

import math
import xml.etree.ElementTree as ET

import numpy as np

from ros2_vla.config import ChainSpec
from ros2_vla.errors import KinematicsError

DENSITY = 1200.0  # [kg/m^3] a solid cylinder this dense weighs about what a real arm link does
MIN_MASS = 0.05  # [kg] keeps tiny links from making the inertia matrix ill-conditioned
EFFORT = 100.0  # [N m] urdfdom requires an effort limit; the package never reads it back


def chain_to_urdf(chain: ChainSpec, name: str, radius: float | None = None) -> str:
    """The chain as a URDF string.

    Links: `chain.link_names` (base, one child per joint, then the TCP). Joints: the chain's revolute
    joints with their limits, then a fixed joint `<ee_link>_joint` placing the TCP at ee_xyz/ee_rpy.
    radius: [m] of the link cylinders; default scales with the arm's reach.
    """
    if not name:
        raise KinematicsError("chain_to_urdf: the robot needs a non-empty name")
    _check_unique(chain)
    r = radius if radius is not None else _default_radius(chain)
    robot = ET.Element("robot", name=name)
    ET.SubElement(robot, "material", name="link_grey").append(ET.Element("color", rgba="0.75 0.75 0.78 1"))
    # Each link's shape runs from its own origin to the next joint's origin (or the TCP).
    tips = [np.asarray(j.xyz, float) for j in chain.joints[1:]] + [np.asarray(chain.ee_xyz, float)]
    robot.append(_link(chain.base_link, np.asarray(chain.joints[0].xyz, float), r))
    parent = chain.base_link
    for joint, tip in zip(chain.joints, tips):
        robot.append(_link(joint.link, tip, r))
        robot.append(_revolute(joint, parent))
        parent = joint.link
    robot.append(ET.Element("link", name=chain.ee_link))
    tcp = ET.SubElement(robot, "joint", name=f"{chain.ee_link}_joint", type="fixed")
    tcp.append(_origin(chain.ee_xyz, chain.ee_rpy))
    ET.SubElement(tcp, "parent", link=parent)
    ET.SubElement(tcp, "child", link=chain.ee_link)
    ET.indent(robot)
    return ET.tostring(robot, encoding="unicode")


def _check_unique(chain: ChainSpec) -> None:
    names = [*chain.link_names, *chain.joint_names, f"{chain.ee_link}_joint"]
    twice = sorted({n for n in names if names.count(n) > 1})
    if twice:
        raise KinematicsError(f"chain {chain.base_link}: names {twice} are used twice; give each joint its own `link`")


def _default_radius(chain: ChainSpec) -> float:
    reach = sum(float(np.linalg.norm(j.xyz)) for j in chain.joints) + float(np.linalg.norm(chain.ee_xyz))
    return min(max(0.04 * reach, 0.015), 0.06)


def _fmt(values) -> str:
    return " ".join(f"{float(v):.10g}" for v in values)


def _origin(xyz, rpy) -> ET.Element:
    return ET.Element("origin", xyz=_fmt(xyz), rpy=_fmt(rpy))


def _rpy_z_to(direction: np.ndarray) -> tuple[float, float, float]:
    """URDF rpy of a frame whose z axis points along `direction` (a cylinder's axis)."""
    d = direction / np.linalg.norm(direction)
    # R = Rz(yaw) Ry(pitch) has z axis (cos yaw sin pitch, sin yaw sin pitch, cos pitch).
    pitch = math.acos(max(-1.0, min(1.0, float(d[2]))))
    yaw = math.atan2(float(d[1]), float(d[0])) if math.hypot(d[0], d[1]) > 1e-12 else 0.0
    return (0.0, pitch, yaw)


def _link(name: str, tip: np.ndarray, radius: float) -> ET.Element:
    """A link whose body spans its origin to `tip` [m] (in its own frame)."""
    link = ET.Element("link", name=name)
    length = float(np.linalg.norm(tip))
    if length < radius:  # two joints at one point (Franka joints 2 and 6): a sphere there
        mass = max(DENSITY * 4.0 / 3.0 * math.pi * radius**3, MIN_MASS)
        i = 0.4 * mass * radius**2
        geometry, origin, inertia = (
            ET.Element("sphere", radius=f"{radius:.6g}"),
            _origin((0, 0, 0), (0, 0, 0)),
            (i, i, i),
        )
    else:
        mass = max(DENSITY * math.pi * radius**2 * length, MIN_MASS)
        side = mass * (3.0 * radius**2 + length**2) / 12.0
        geometry = ET.Element("cylinder", radius=f"{radius:.6g}", length=f"{length:.6g}")
        origin = _origin(tip / 2.0, _rpy_z_to(tip))
        inertia = (side, side, 0.5 * mass * radius**2)
    inertial = ET.SubElement(link, "inertial")
    inertial.append(origin)
    ET.SubElement(inertial, "mass", value=f"{mass:.6g}")
    ET.SubElement(
        inertial,
        "inertia",
        ixx=f"{inertia[0]:.6g}",
        iyy=f"{inertia[1]:.6g}",
        izz=f"{inertia[2]:.6g}",
        ixy="0",
        ixz="0",
        iyz="0",
    )
    visual = ET.SubElement(link, "visual")
    visual.append(origin)
    ET.SubElement(visual, "geometry").append(geometry)
    ET.SubElement(visual, "material", name="link_grey")
    return link


def _revolute(joint, parent: str) -> ET.Element:
    axis = np.asarray(joint.axis, float)
    el = ET.Element("joint", name=joint.name, type="revolute")
    el.append(_origin(joint.xyz, joint.rpy))
    ET.SubElement(el, "parent", link=parent)
    ET.SubElement(el, "child", link=joint.link)
    ET.SubElement(el, "axis", xyz=_fmt(axis / np.linalg.norm(axis)))
    ET.SubElement(
        el,
        "limit",
        lower=f"{joint.lower:.10g}",
        upper=f"{joint.upper:.10g}",
        velocity=f"{joint.velocity:.10g}",
        effort=f"{EFFORT:g}",
    )
    return el
