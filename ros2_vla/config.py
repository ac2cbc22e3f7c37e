"""Robot facts, read from `config/<robot>.yaml`: the one source of truth for joint names,
kinematics, limits, topics, cameras, action space and safety bounds.

The bridge, the simulator, the policy node and the bringup all read these dataclasses;
none of them writes a joint name or a topic of its own.
"""

from __future__ import annotations

import difflib
import os
import sys
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import yaml

from ros2_vla.collision_config import ArmCollision, Capsule, CollisionSpec, SceneBox
from ros2_vla.errors import ConfigError

PACKAGE = "ros2_vla"
CONFIG_DIR_ENV = "ROS2_VLA_CONFIG_DIR"


@dataclass(frozen=True)
class JointSpec:
    """One revolute joint, URDF style: its origin is given in the parent link's frame."""

    name: str
    xyz: tuple[float, float, float]  # [m] joint origin in the parent link frame
    rpy: tuple[float, float, float]  # [rad] fixed-axis roll, pitch, yaw of the joint origin
    axis: tuple[float, float, float]  # unit rotation axis in the joint frame
    lower: float  # [rad] position limit
    upper: float  # [rad] position limit
    velocity: float  # [rad/s] velocity limit
    acceleration: float  # [rad/s^2] acceleration limit used for timing
    link: str = ""  # child link this joint moves; "" means "<name>_link"

    def __post_init__(self) -> None:
        if not self.lower < self.upper:
            raise ConfigError(f"joint {self.name}: lower limit {self.lower} must be below upper {self.upper}")
        if self.velocity <= 0 or self.acceleration <= 0:
            raise ConfigError(f"joint {self.name}: velocity and acceleration limits must be positive")
        if not any(self.axis):
            raise ConfigError(f"joint {self.name}: axis {self.axis} is zero; give a unit rotation axis")
        if not self.link:
            object.__setattr__(self, "link", f"{self.name}_link")  # frozen: set once, here


@dataclass(frozen=True)
class ChainSpec:
    """A serial arm from its base link to its tool centre point (TCP)."""

    base_link: str
    ee_link: str  # name of the TCP frame the actions refer to
    joints: tuple[JointSpec, ...]
    ee_xyz: tuple[float, float, float]  # [m] TCP in the last joint's frame
    ee_rpy: tuple[float, float, float]  # [rad] TCP orientation in the last joint's frame
    home: tuple[float, ...]  # [rad] home posture, one per joint

    def __post_init__(self) -> None:
        if len(self.home) != len(self.joints):
            raise ConfigError(f"chain {self.base_link}: home has {len(self.home)} values for {len(self.joints)} joints")
        for q, j in zip(self.home, self.joints):
            if not j.lower <= q <= j.upper:
                raise ConfigError(f"chain {self.base_link}: home {q} of {j.name} is outside [{j.lower}, {j.upper}]")

    @property
    def joint_names(self) -> tuple[str, ...]:
        return tuple(j.name for j in self.joints)

    @property
    def link_names(self) -> tuple[str, ...]:
        """Base link, each joint's child link, then the TCP frame, root to tip."""
        return (self.base_link, *(j.link for j in self.joints), self.ee_link)


@dataclass(frozen=True)
class GripperSpec:
    """How the gripper action dimension becomes a gripper joint command."""

    joint: str  # gripper joint as named in /joint_states
    open_position: float  # [m or rad] joint position when open
    closed_position: float  # [m or rad] joint position when closed
    velocity: float  # [unit/s] velocity limit
    mode: str  # "separate": own controller topic; "in_trajectory": extra joint in the arm trajectory
    topic: str  # controller topic when mode is "separate"
    binarize: bool  # threshold the action to fully open or closed (OpenVLA, BridgeData)
    threshold: float  # action value splitting closed from open when binarized
    invert: bool  # True when the policy's 1 means closed (OpenVLA RLDS convention is 1 = open)

    def __post_init__(self) -> None:
        if self.mode not in ("separate", "in_trajectory"):
            raise ConfigError(f"gripper {self.joint}: mode must be 'separate' or 'in_trajectory', not {self.mode!r}")


@dataclass(frozen=True)
class ArmSpec:
    """One arm of a robot: its chain, where it stands, its controller and gripper."""

    name: str  # "arm" for single-arm robots, "left"/"right" for ALOHA
    chain: ChainSpec
    base_xyz: tuple[float, float, float]  # [m] arm base in the world frame
    base_rpy: tuple[float, float, float]  # [rad] arm base orientation in the world frame
    trajectory_topic: str  # JointTrajectoryController command topic
    gripper: GripperSpec | None
    prefix: str = ""  # already applied to `chain`'s joint and link names (ALOHA: "left_", "right_")


@dataclass(frozen=True)
class CameraSpec:
    """A camera as on the real rig; the sim renders it, vla_node subscribes to it."""

    name: str
    topic: str  # sensor_msgs/Image topic
    info_topic: str  # sensor_msgs/CameraInfo topic
    width: int  # [px]
    height: int  # [px]
    rate_hz: float
    fovy: float  # [deg] vertical field of view
    mount: str  # "world" or the name of the link it is fixed to (wrist cameras)
    xyz: tuple[float, float, float]  # [m] position in the mount frame
    # [rad] orientation in the mount frame as MuJoCo euler (intrinsic x-y-z: R = Rx Ry Rz, unlike the
    # URDF fixed-axis rpy of joints); the camera looks along its -z axis with +y up
    rpy: tuple[float, float, float]


@dataclass(frozen=True)
class ActionSpec:
    """The robot's default action space, as a policy for it emits."""

    space: str  # ee_delta | ee_absolute | joint_position | joint_delta
    frame: str  # "base" or "ee": frame of translation/rotation deltas
    dimension_names: tuple[str, ...]
    dt: float  # [s] seconds between steps


@dataclass(frozen=True)
class SafetySpec:
    """Bounds the bridge enforces on every command."""

    workspace_min: tuple[float, float, float]  # [m] TCP box in the arm base frame
    workspace_max: tuple[float, float, float]
    max_translation_per_step: float  # [m]
    max_rotation_per_step: float  # [rad]
    joint_state_timeout: float  # [s] older /joint_states: hold
    singularity_decelerate: float  # Jacobian condition number where slowing starts
    singularity_halt: float  # condition number where motion stops
    max_tracking_error: float  # [rad] measured vs commanded joint position beyond which the bridge holds


@dataclass(frozen=True)
class RobotConfig:
    """One robot, as read from `config/<robot>.yaml`: arms, cameras, action space, safety bounds, topics and rates."""

    name: str
    description: str
    arms: tuple[ArmSpec, ...]
    cameras: tuple[CameraSpec, ...]
    action: ActionSpec
    safety: SafetySpec
    joint_states_topic: str
    control_rate_hz: float  # [Hz] bridge and simulated controller rate
    joint_state_rate_hz: float  # [Hz] sim publishing rate
    source: Path = field(compare=False)  # the YAML file it came from
    collision: CollisionSpec | None = None  # what the bridge checks each planned step against (`collision:`)

    @property
    def joint_names(self) -> tuple[str, ...]:
        """Every arm joint, arm by arm, in config order (grippers excluded)."""
        return tuple(n for arm in self.arms for n in arm.chain.joint_names)


def config_dir() -> Path:
    """Where the robot YAML files are: $ROS2_VLA_CONFIG_DIR, the ament share directory (colcon),
    the interpreter prefix's share directory (pip), or the source tree, in that order."""
    env = os.environ.get(CONFIG_DIR_ENV)
    if env:
        return Path(env)
    try:
        from ament_index_python.packages import get_package_share_directory

        share = Path(get_package_share_directory(PACKAGE)) / "config"
        if share.is_dir():
            return share
    except Exception:  # ament_index is optional: a pip install without ROS has none
        pass
    pip_share = Path(sys.prefix) / "share" / PACKAGE / "config"
    if pip_share.is_dir():
        return pip_share
    return Path(__file__).resolve().parent.parent / "config"


def available_robots() -> list[str]:
    return sorted(p.stem for p in config_dir().glob("*.yaml"))


def load_robot_config(name_or_path: str | Path, variant: str | None = None) -> RobotConfig:
    """Load `config/<name>.yaml` (or a YAML path). Unknown names get a did-you-mean.

    `variant` names one of the file's chains (franka: "panda") that replaces the chain of every
    arm; camera mounts on the old chain's links move to the matching links of the new one.
    """
    path = Path(name_or_path)
    if path.suffix not in (".yaml", ".yml"):
        path = config_dir() / f"{name_or_path}.yaml"
        if not path.is_file():
            known = available_robots()
            close = difflib.get_close_matches(str(name_or_path), known, n=1)
            hint = f" Did you mean {close[0]!r}?" if close else ""
            raise ConfigError(
                f"unknown robot {str(name_or_path)!r}: no {path}. Known robots: {', '.join(known) or 'none'}.{hint}"
            )
    if not path.is_file():
        raise ConfigError(f"robot config {path} does not exist")
    try:
        raw = yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        raise ConfigError(f"robot config {path} is not valid YAML: {exc}") from exc
    try:
        return _robot_from_dict(raw, path, variant)
    except (KeyError, TypeError, ValueError) as exc:
        raise ConfigError(f"robot config {path} is malformed: {type(exc).__name__}: {exc}") from exc


def _vec(v: Any, n: int = 3) -> tuple[float, ...]:
    out = tuple(float(x) for x in v)
    if len(out) != n:
        raise ValueError(f"expected {n} numbers, got {list(v)}")
    return out


def _chain(d: dict) -> ChainSpec:
    joints = tuple(
        JointSpec(
            name=j["name"],
            xyz=_vec(j["xyz"]),
            rpy=_vec(j.get("rpy", [0, 0, 0])),
            axis=_vec(j.get("axis", [0, 0, 1])),
            lower=float(j["lower"]),
            upper=float(j["upper"]),
            velocity=float(j["velocity"]),
            acceleration=float(j["acceleration"]),
            link=str(j.get("link", "")),
        )
        for j in d["joints"]
    )
    return ChainSpec(
        base_link=d["base_link"],
        ee_link=d["ee_link"],
        joints=joints,
        ee_xyz=_vec(d["ee_xyz"]),
        ee_rpy=_vec(d.get("ee_rpy", [0, 0, 0])),
        home=tuple(float(x) for x in d["home"]),
    )


def _gripper(d: dict | None) -> GripperSpec | None:
    if d is None:
        return None
    return GripperSpec(
        joint=d["joint"],
        open_position=float(d["open_position"]),
        closed_position=float(d["closed_position"]),
        velocity=float(d["velocity"]),
        mode=d.get("mode", "separate"),
        topic=d.get("topic", ""),
        binarize=bool(d.get("binarize", True)),
        threshold=float(d.get("threshold", 0.5)),
        invert=bool(d.get("invert", False)),
    )


def _arm_collision(raw: dict | None, chain_key: str, prefix: str, links: tuple[str, ...]) -> ArmCollision | None:
    """One arm's part of the `collision:` section: the shapes of chain `chain_key`, names prefixed.
    None when the file has no collision section; ConfigError when it has one but not for this chain."""
    if raw is None:
        return None
    chains = raw.get("chains", {})
    if chain_key not in chains:
        raise ConfigError(f"collision: no shapes for chain {chain_key!r} (chains with shapes: {sorted(chains)})")
    entry = chains[chain_key]
    scene = {b["name"] for b in raw.get("scene", [])}

    def link(name: str, where: str, also: frozenset[str] | set[str] = frozenset()) -> str:
        full = prefix + name
        if full not in links and name not in also:
            raise ConfigError(f"collision {where}: {name!r} is not a link of chain {chain_key} ({sorted(links)})")
        return full if full in links else name

    shapes = tuple(
        Capsule(link(s["link"], "shape"), _vec(s["a"]), _vec(s.get("b", s["a"])), float(s["radius"]))
        for s in entry["shapes"]
    )
    allowed = frozenset(frozenset(link(n, "allow", scene) for n in pair) for pair in entry.get("allow", []))
    on_scene = frozenset(link(n, "on_scene") for n in entry.get("on_scene", []))
    return ArmCollision(shapes, allowed, on_scene)


def _collision_spec(raw: dict, arms: dict[str, ArmCollision]) -> CollisionSpec:
    """The robot-wide part of `collision:`: scene boxes and thresholds, around each arm's shapes."""
    return CollisionSpec(
        arms,
        tuple(SceneBox(b["name"], _vec(b["center"]), _vec(b["size"])) for b in raw.get("scene", [])),
        float(raw["self_proximity"]),
        float(raw["scene_proximity"]),
        float(raw["halt_distance"]),
    )


def _prefixed(chain: ChainSpec, prefix: str) -> ChainSpec:
    """The chain with `prefix` put before every joint and link name (one chain, two ALOHA arms)."""
    if not prefix:
        return chain
    joints = tuple(replace(j, name=prefix + j.name, link=prefix + j.link) for j in chain.joints)
    return replace(chain, base_link=prefix + chain.base_link, ee_link=prefix + chain.ee_link, joints=joints)


def _link_map(written: ChainSpec, used: ChainSpec) -> dict[str, str]:
    """Where a link of the written chain went in the variant chain: same place, root to tip."""
    old, new = written.link_names, used.link_names
    if len(old) != len(new):
        old, new = (old[0], old[-1]), (new[0], new[-1])
    return dict(zip(old, new))


def _robot_from_dict(raw: dict, path: Path, variant: str | None = None) -> RobotConfig:
    chains = {k: _chain(v) for k, v in raw["chains"].items()}
    if variant is not None and variant not in chains:
        raise ConfigError(
            f"robot config {path}: unknown variant {variant!r}. "
            f"Variants are the chains of this file: {', '.join(sorted(chains))}."
        )
    arms = []
    mount_map: dict[str, str] = {}
    collisions: dict[str, ArmCollision] = {}
    for a in raw["arms"]:
        if a["chain"] not in chains:
            raise ValueError(f"arm {a['name']} names chain {a['chain']!r}; chains are {sorted(chains)}")
        prefix = str(a.get("prefix", ""))
        written = _prefixed(chains[a["chain"]], prefix)
        chain = _prefixed(chains[variant], prefix) if variant is not None else written
        mount_map.update(_link_map(written, chain))
        # Written for the arm's own chain; a variant takes them onto its links, place for place.
        shapes = _arm_collision(raw.get("collision"), a["chain"], prefix, written.link_names)
        if shapes is not None:
            collisions[a["name"]] = shapes.renamed(_link_map(written, chain))
        arms.append(
            ArmSpec(
                name=a["name"],
                chain=chain,
                base_xyz=_vec(a.get("base_xyz", [0, 0, 0])),
                base_rpy=_vec(a.get("base_rpy", [0, 0, 0])),
                trajectory_topic=a["trajectory_topic"],
                gripper=_gripper(a.get("gripper")),
                prefix=prefix,
            )
        )
    names = [n for arm in arms for n in arm.chain.joint_names]
    twice = sorted({n for n in names if names.count(n) > 1})
    if twice:
        raise ValueError(f"joint names {twice} appear in more than one arm; give each arm its own `prefix`")
    cameras = tuple(
        CameraSpec(
            name=c["name"],
            topic=c["topic"],
            info_topic=c.get("info_topic", c["topic"].rsplit("/", 1)[0] + "/camera_info"),
            width=int(c["width"]),
            height=int(c["height"]),
            rate_hz=float(c["rate_hz"]),
            fovy=float(c.get("fovy", 60.0)),
            mount=mount_map.get(c.get("mount", "world"), c.get("mount", "world")),
            xyz=_vec(c["xyz"]),
            rpy=_vec(c["rpy"]),
        )
        for c in raw.get("cameras", [])
    )
    links = {link for arm in arms for link in arm.chain.link_names}
    for cam in cameras:
        if cam.mount != "world" and cam.mount not in links:
            raise ValueError(
                f"camera {cam.name} is mounted on {cam.mount!r}, which is neither 'world' nor a link {sorted(links)}"
            )
    act = raw["action"]
    action = ActionSpec(
        space=act["space"],
        frame=act.get("frame", "base"),
        dimension_names=tuple(act["dimension_names"]),
        dt=float(act["dt"]),
    )
    s = raw["safety"]
    safety = SafetySpec(
        workspace_min=_vec(s["workspace_min"]),
        workspace_max=_vec(s["workspace_max"]),
        max_translation_per_step=float(s["max_translation_per_step"]),
        max_rotation_per_step=float(s["max_rotation_per_step"]),
        joint_state_timeout=float(s["joint_state_timeout"]),
        singularity_decelerate=float(s["singularity_decelerate"]),
        singularity_halt=float(s["singularity_halt"]),
        max_tracking_error=float(s["max_tracking_error"]),
    )
    return RobotConfig(
        name=raw["name"],
        description=raw.get("description", ""),
        arms=tuple(arms),
        cameras=cameras,
        action=action,
        safety=safety,
        joint_states_topic=raw.get("joint_states_topic", "/joint_states"),
        control_rate_hz=float(raw.get("control_rate_hz", 100.0)),
        joint_state_rate_hz=float(raw.get("joint_state_rate_hz", 100.0)),
        source=path,
        collision=_collision_spec(raw["collision"], collisions) if "collision" in raw else None,
    )
