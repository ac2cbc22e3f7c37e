"""MJCF of the simulated workspace, built from the same `RobotConfig` the bridge uses.

Each arm is a chain of nested bodies, one per configured joint, placed at the joint's URDF origin
(xyz/rpy in the parent link frame) with a hinge about the configured axis and limits. Links are
capsules from one joint origin to the next, so the kinematics match the config exactly while the
shape is only a stand-in. A body named after `chain.ee_link` sits at the TCP (`ee_xyz/ee_rpy`), with
a site of the same name and a simple parallel gripper (body `<ee_link>_gripper`, axes from
`scene.gripper_frame`): a palm and two pads sliding apart, the TCP between the pads near their tips.
Cameras take the config's MuJoCo-style euler (`scene.camera_rotation`).

Joints are held by MuJoCo position servos (`kp`, `kv`) tuned from the arm's joint-space inertia at
home to a common natural frequency (`SceneSpec.servo_hz`, critically damped), with gravity
compensation on every arm body, so a commanded joint position is reached without droop. Names:
hinge joints and their actuators carry the config's joint names; the finger named by the gripper
spec is the configured gripper joint, its twin is `<joint>_mirror` (both driven together).

Collision groups: arm links touch objects only; palm and pads touch objects and the table;
objects touch everything. Arms never collide with each other or themselves (a stand-in geometry
would only invent contacts the real arm does not have).
"""

from __future__ import annotations

import math
import xml.etree.ElementTree as ET

import numpy as np

from ros2_vla.actions.rotations import rpy_to_matrix
from ros2_vla.config import ArmSpec, ChainSpec, RobotConfig
from ros2_vla.errors import ConfigError
from ros2_vla.sim.backend import mujoco
from ros2_vla.sim.scene import (
    BOWL,
    COLORS,
    SceneSpec,
    arm_spawn_box,
    camera_rotation,
    cube_name,
    gripper_frame,
    table_box,
)

# contype / conaffinity bits: see the module docstring.
_ARM, _HAND, _OBJECT, _TABLE = (2, 0), (4, 0), (1, 7), (1, 5)
_ARMATURE = 0.05  # [kg m^2] reflected rotor inertia of each arm joint; keeps light wrists stable
_FINGER_ARMATURE = 0.2  # [kg] lets the stiff finger servo run at the 2 ms step
_MAX_OMEGA_DT = 0.3  # servo natural frequency times timestep stays below this
# Stand-in gripper [m], gripper frame (z = approach): pads span z in [-PAD_BACK, PAD_TIP], the palm sits behind.
PAD_TIP, PAD_BACK, PAD_THICK, PAD_WIDTH, PALM_DEPTH = 0.015, 0.035, 0.012, 0.022, 0.024
MIRROR_SUFFIX = "_mirror"


def build_scene_xml(robot: RobotConfig, scene: SceneSpec | None = None) -> str:
    """The whole scene as an MJCF string: arms, grippers, table, cubes, bowl, lights, cameras.

    Servo gains come from a first compile of the same scene (joint-space inertia at home).
    """
    scene = scene or SceneSpec()
    _check_names(robot)
    draft = _scene(robot, scene, gains=None)
    return _scene(robot, scene, gains=_servo_gains(draft, robot, scene))


def finger_joint_names(arm: ArmSpec) -> tuple[str, str]:
    """MJCF slide joints (and actuators) of one arm's two pads: the gripper joint, then its mirror."""
    if arm.gripper is None:
        raise ConfigError(f"arm {arm.name} has no gripper")
    return arm.gripper.joint, arm.gripper.joint + MIRROR_SUFFIX


def _check_names(robot: RobotConfig) -> None:
    names = [*robot.joint_names]
    for arm in robot.arms:
        names += list(arm.chain.link_names)
        if arm.gripper is not None:
            names += list(finger_joint_names(arm))
    twice = sorted({n for n in names if names.count(n) > 1})
    if twice:
        raise ConfigError(f"robot {robot.name}: names {twice} are used twice; joints and links need unique names")


def _fmt(values) -> str:
    return " ".join(f"{float(v):.9g}" for v in np.atleast_1d(values))


def _quat(rpy) -> str:
    """MJCF quaternion of URDF fixed-axis rpy [rad]."""
    return _mat_quat(rpy_to_matrix(np.asarray(rpy, dtype=float)))


def _mat_quat(R: np.ndarray) -> str:
    q = np.empty(4)
    mujoco.mju_mat2Quat(q, np.ascontiguousarray(R, dtype=float).ravel())
    return _fmt(q)


def _reach(chain: ChainSpec) -> float:
    """[m] sum of the link lengths: an upper bound of how far the TCP gets from the base."""
    return sum(float(np.linalg.norm(j.xyz)) for j in chain.joints) + float(np.linalg.norm(chain.ee_xyz))


def _scene(robot: RobotConfig, scene: SceneSpec, gains: dict[str, tuple[float, float]] | None) -> str:
    root = ET.Element("mujoco", model=f"ros2_vla_{robot.name}")
    ET.SubElement(root, "compiler", angle="radian", autolimits="true")
    ET.SubElement(
        root, "option", timestep=_fmt(scene.timestep), integrator="implicitfast", cone="elliptic", impratio="10"
    )
    _visual(root, robot)
    _assets(root)
    world = ET.SubElement(root, "worldbody")
    _lights(world, robot, scene)
    _table(world, robot, scene)
    links: dict[str, ET.Element] = {"world": world}
    actuators = ET.SubElement(root, "actuator")
    for arm in robot.arms:
        links.update(_arm(world, actuators, arm, scene, gains))
    _objects(world, robot, scene)
    for cam in robot.cameras:
        if cam.mount not in links:
            raise ConfigError(
                f"camera {cam.name} is mounted on {cam.mount!r}, not 'world' or a link of {sorted(links)}"
            )
        ET.SubElement(
            links[cam.mount],
            "camera",
            name=cam.name,
            pos=_fmt(cam.xyz),
            quat=_mat_quat(camera_rotation(cam.rpy)),
            fovy=_fmt(cam.fovy),
        )
    ET.indent(root)
    return ET.tostring(root, encoding="unicode")


def _visual(root: ET.Element, robot: RobotConfig) -> None:
    visual = ET.SubElement(root, "visual")
    w = max([640, *(c.width for c in robot.cameras)])
    h = max([480, *(c.height for c in robot.cameras)])
    ET.SubElement(visual, "global", offwidth=str(w), offheight=str(h))
    ET.SubElement(visual, "headlight", ambient="0.35 0.35 0.35", diffuse="0.4 0.4 0.4", specular="0.1 0.1 0.1")
    ET.SubElement(visual, "quality", shadowsize="2048")


def _assets(root: ET.Element) -> None:
    asset = ET.SubElement(root, "asset")
    ET.SubElement(
        asset,
        "texture",
        name="sky",
        type="skybox",
        builtin="gradient",
        width="64",
        height="64",
        rgb1="0.75 0.8 0.85",
        rgb2="0.35 0.38 0.42",
    )
    ET.SubElement(
        asset,
        "texture",
        name="floor",
        type="2d",
        builtin="checker",
        width="256",
        height="256",
        rgb1="0.32 0.34 0.36",
        rgb2="0.26 0.28 0.30",
    )
    ET.SubElement(asset, "material", name="floor", texture="floor", texrepeat="8 8")
    ET.SubElement(asset, "material", name="table", rgba="0.62 0.5 0.38 1", specular="0.1")
    ET.SubElement(asset, "material", name="link", rgba="0.88 0.88 0.9 1", specular="0.3")
    ET.SubElement(asset, "material", name="joint", rgba="0.25 0.25 0.28 1")
    ET.SubElement(asset, "material", name="pad", rgba="0.15 0.15 0.15 1")
    ET.SubElement(asset, "material", name="bowl", rgba="0.92 0.92 0.88 1", specular="0.4")


def _lights(world: ET.Element, robot: RobotConfig, scene: SceneSpec) -> None:
    box = table_box(robot, scene)
    cx, cy = (box.lo + box.hi) / 2
    top = scene.table_height
    ET.SubElement(
        world,
        "light",
        name="key",
        pos=_fmt([cx, cy, top + 2.5]),
        dir="0 0 -1",
        directional="true",
        diffuse="0.55 0.55 0.55",
        castshadow=str(scene.shadows).lower(),
    )
    ET.SubElement(
        world,
        "light",
        name="fill",
        pos=_fmt([cx + 1, cy + 1, top + 2]),
        dir="-0.4 -0.4 -1",
        directional="true",
        diffuse="0.25 0.25 0.25",
        castshadow="false",
    )


def _table(world: ET.Element, robot: RobotConfig, scene: SceneSpec) -> None:
    box = table_box(robot, scene)
    centre, half = (box.lo + box.hi) / 2, (box.hi - box.lo) / 2
    thick = 0.025
    ET.SubElement(
        world,
        "geom",
        name="floor",
        type="plane",
        size="0 0 0.05",
        material="floor",
        pos=_fmt([centre[0], centre[1], scene.table_height - 0.75]),
        contype="1",
        conaffinity="1",
    )
    ET.SubElement(
        world,
        "geom",
        name="table",
        type="box",
        material="table",
        size=_fmt([half[0], half[1], thick]),
        pos=_fmt([centre[0], centre[1], scene.table_height - thick]),
        contype=str(_TABLE[0]),
        conaffinity=str(_TABLE[1]),
        friction=_fmt([1.0, 0.005, 0.0001]),
    )


def _contact(kind: tuple[int, int]) -> dict[str, str]:
    return {"contype": str(kind[0]), "conaffinity": str(kind[1])}


def _arm(world, actuators, arm: ArmSpec, scene: SceneSpec, gains) -> dict[str, ET.Element]:
    """Bodies of one arm under the world body; returns link name -> body element (camera mounts)."""
    chain = arm.chain
    radius = min(max(0.03 * _reach(chain), 0.015), 0.05)
    base = ET.SubElement(world, "body", name=chain.base_link, pos=_fmt(arm.base_xyz), quat=_quat(arm.base_rpy))
    ET.SubElement(
        base,
        "geom",
        type="capsule",
        fromto=_fmt([0, 0, 0, *chain.joints[0].xyz]),
        size=_fmt(radius * 1.2),
        material="link",
        contype="0",
        conaffinity="0",
    )
    links = {chain.base_link: base}
    # The last link ends behind the palm, inset by its radius so it never reaches past the pads.
    R_ee_gripper = rpy_to_matrix(np.asarray(chain.ee_rpy)) @ gripper_frame(chain)
    n = len(chain.joints)
    parent = base
    for i, joint in enumerate(chain.joints):
        r = radius * (1.0 - 0.45 * i / max(n - 1, 1))
        body = ET.SubElement(parent, "body", name=joint.link, pos=_fmt(joint.xyz), quat=_quat(joint.rpy), gravcomp="1")
        ET.SubElement(
            body,
            "joint",
            name=joint.name,
            type="hinge",
            axis=_fmt(joint.axis),
            range=_fmt([joint.lower, joint.upper]),
            armature=_fmt(_ARMATURE),
        )
        ET.SubElement(body, "geom", type="sphere", size=_fmt(r * 1.1), material="joint", **_contact(_ARM))
        if i + 1 < n:
            tip = np.asarray(chain.joints[i + 1].xyz, dtype=float)
        else:
            tip = np.asarray(chain.ee_xyz) + R_ee_gripper @ np.array([0.0, 0.0, -(PAD_BACK + PALM_DEPTH + r)])
        if np.linalg.norm(tip) > 1e-3:
            ET.SubElement(
                body,
                "geom",
                type="capsule",
                fromto=_fmt([0, 0, 0, *tip]),
                size=_fmt(r),
                material="link",
                **_contact(_ARM),
            )
        kp, kv = gains.get(joint.name, (1.0, 0.1)) if gains else (1.0, 0.1)
        ET.SubElement(
            actuators,
            "position",
            name=joint.name,
            joint=joint.name,
            kp=_fmt(kp),
            kv=_fmt(kv),
            ctrlrange=_fmt([joint.lower, joint.upper]),
        )
        links[joint.link] = body
        parent = body
    tcp = ET.SubElement(
        parent, "body", name=chain.ee_link, pos=_fmt(chain.ee_xyz), quat=_quat(chain.ee_rpy), gravcomp="1"
    )
    ET.SubElement(tcp, "site", name=chain.ee_link, size="0.006", rgba="1 0.5 0 0.6", group="3")
    links[chain.ee_link] = tcp
    if arm.gripper is not None:
        _gripper(tcp, actuators, arm, scene)
    return links


def _gripper(tcp: ET.Element, actuators: ET.Element, arm: ArmSpec, scene: SceneSpec) -> None:
    """Palm and two pads in the gripper frame (z approach, y pad motion; see `gripper_frame`)."""
    quat = _mat_quat(gripper_frame(arm.chain))
    tcp = ET.SubElement(tcp, "body", name=f"{arm.chain.ee_link}_gripper", quat=quat, gravcomp="1")
    travel = scene.finger_travel
    half_span = travel + PAD_THICK
    ET.SubElement(
        tcp,
        "geom",
        name=f"{arm.chain.ee_link}_palm",
        type="box",
        material="joint",
        pos=_fmt([0, 0, -PAD_BACK - PALM_DEPTH / 2]),
        size=_fmt([PAD_WIDTH / 2, half_span, PALM_DEPTH / 2]),
        **_contact(_HAND),
    )
    pad_len = (PAD_TIP + PAD_BACK) / 2
    pad_z = (PAD_TIP - PAD_BACK) / 2
    kp = scene.finger_force / (0.25 * travel)  # full force once a pad lags a quarter travel behind its target
    kv = 2.0 * math.sqrt(kp * _FINGER_ARMATURE)
    for name, sign in zip(finger_joint_names(arm), (1.0, -1.0)):
        finger = ET.SubElement(tcp, "body", name=name, gravcomp="1")
        ET.SubElement(
            finger,
            "joint",
            name=name,
            type="slide",
            axis=_fmt([0, sign, 0]),
            range=_fmt([0, travel]),
            armature=_fmt(_FINGER_ARMATURE),
        )
        ET.SubElement(
            finger,
            "geom",
            name=f"{name}_pad",
            type="box",
            material="pad",
            mass="0.02",
            pos=_fmt([0, sign * PAD_THICK / 2, pad_z]),
            size=_fmt([PAD_WIDTH / 2, PAD_THICK / 2, pad_len]),
            condim="4",
            friction=_fmt([scene.friction, 0.02, 0.0001]),
            **_contact(_HAND),
        )
        ET.SubElement(
            actuators,
            "position",
            name=name,
            joint=name,
            kp=_fmt(kp),
            kv=_fmt(kv),
            ctrlrange=_fmt([0, travel]),
            forcerange=_fmt([-scene.finger_force, scene.finger_force]),
        )


def _objects(world: ET.Element, robot: RobotConfig, scene: SceneSpec) -> None:
    """Cubes and bowl at parking spots in a row; `Simulation.reset` places them for real."""
    box = arm_spawn_box(robot, robot.arms[0], scene)
    x0, y0 = (box.lo + box.hi) / 2
    half = scene.cube_size / 2
    friction = _fmt([scene.friction, 0.02, 0.0001])
    for k, color in enumerate(scene.cube_colors):
        body = ET.SubElement(
            world, "body", name=cube_name(color), pos=_fmt([x0, y0 + 0.12 * k, scene.table_height + half])
        )
        ET.SubElement(body, "freejoint", name=cube_name(color))
        ET.SubElement(
            body,
            "geom",
            name=cube_name(color),
            type="box",
            size=_fmt([half] * 3),
            mass=_fmt(scene.cube_mass),
            rgba=_fmt(COLORS[color]),
            condim="4",
            friction=friction,
            **_contact(_OBJECT),
        )
    _bowl(world, scene, [x0, y0 - 0.2, scene.table_height])


def _bowl(world: ET.Element, scene: SceneSpec, pos) -> None:
    """A flat floor disc ringed by eight wall boxes; body origin at the floor's underside centre."""
    wall, floor, n = 0.01, 0.008, 8
    outer = scene.bowl_radius + wall
    body = ET.SubElement(world, "body", name=BOWL, pos=_fmt(pos))
    ET.SubElement(body, "freejoint", name=BOWL)
    mass = scene.bowl_mass / (n + 1)
    ET.SubElement(
        body,
        "geom",
        name=f"{BOWL}_floor",
        type="cylinder",
        size=_fmt([outer, floor / 2]),
        pos=_fmt([0, 0, floor / 2]),
        mass=_fmt(mass),
        material="bowl",
        **_contact(_OBJECT),
    )
    seg = math.pi * 2 * outer / n / 2 * 1.08  # half length; overlap closes the gaps
    ring = scene.bowl_radius + wall / 2
    for k in range(n):
        a = 2 * math.pi * k / n
        ET.SubElement(
            body,
            "geom",
            name=f"{BOWL}_wall{k}",
            type="box",
            size=_fmt([wall / 2, seg, scene.bowl_wall_height / 2]),
            pos=_fmt([ring * math.cos(a), ring * math.sin(a), scene.bowl_wall_height / 2]),
            quat=_quat([0, 0, a]),
            mass=_fmt(mass),
            material="bowl",
            **_contact(_OBJECT),
        )


def _servo_gains(xml: str, robot: RobotConfig, scene: SceneSpec) -> dict[str, tuple[float, float]]:
    """Joint name -> (kp [N m/rad], kv [N m s/rad]) giving every arm joint the same natural frequency.

    kp = M_ii w^2 and kv = 2 M_ii w (damping ratio 1), M_ii the joint's diagonal of the joint-space
    inertia at home; w is capped so that w * timestep stays in the stable range.
    """
    model = mujoco.MjModel.from_xml_string(xml)
    data = mujoco.MjData(model)
    for arm in robot.arms:
        for joint, q in zip(arm.chain.joints, arm.chain.home):
            data.qpos[model.joint(joint.name).qposadr[0]] = q
    mujoco.mj_forward(model, data)
    M = np.zeros((model.nv, model.nv))
    mujoco.mj_fullM(model, data, M)
    omega = min(2.0 * math.pi * scene.servo_hz, _MAX_OMEGA_DT / scene.timestep)
    gains = {}
    for name in robot.joint_names:
        dof = model.joint(name).dofadr[0]
        m = M[dof, dof]
        gains[name] = (m * omega**2, 2.0 * m * omega)
    return gains
