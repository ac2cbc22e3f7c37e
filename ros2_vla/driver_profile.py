"""Hardware profiles: how a robot's driver takes commands and reports joint states (no ROS here).

The robot's own topics (`trajectory_topic`, the gripper's `topic`, `joint_states_topic` in
`config/<robot>.yaml`) are the default profile: JointTrajectoryControllers, one merged `/joint_states`.
Real drivers differ (franka_ros2 drives the hand through action servers and publishes the fingers on
their own topic; Interbotix's `xs_sdk` takes `JointGroupCommand`s; ALOHA runs one `xs_sdk` per arm, each
with unprefixed joint names), so each robot's YAML lists its drivers under `drivers:`, written from the
drivers' sources (the YAML says which). bridge_node, vla_node and sim_node read the profile named by their
`driver` parameter: the bridge sends through its interfaces, vla_node and the bridge merge its joint state
topics into one state, and the sim plays it so the closed loop runs through each adapter.

Units: the bridge plans the gripper in its config units (`open_position`, `closed_position`: a finger's
travel [m], or ALOHA's finger opening); `units` gives the driver's value at those two positions and every
command (and a state given in driver units) is mapped through the straight line between them.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass

import yaml

from ros2_vla.config import ArmSpec, GripperSpec, RobotConfig
from ros2_vla.errors import ConfigError

ARM_INTERFACES = ("joint_trajectory", "follow_joint_trajectory", "forward_position", "joint_group")
GRIPPER_INTERFACES = ("joint_trajectory", "in_trajectory", "gripper_command", "franka_gripper", "joint_single")
STREAMED = ("forward_position", "joint_group")  # sent every control period, sampled from the plan
# franka_gripper's action servers under its namespace (gripper_action_server.cpp): the bridge closes with
# grasp and opens with move; homing opens all the way.
FRANKA_GRIPPER_ACTIONS = ("move", "grasp", "homing")


@dataclass(frozen=True)
class Units:
    """The driver's gripper value at the bridge's open and closed positions; linear in between."""

    open: float
    closed: float

    def to_driver(self, spec: GripperSpec, value: float) -> float:
        s = (value - spec.closed_position) / (spec.open_position - spec.closed_position)
        return self.closed + s * (self.open - self.closed)

    def from_driver(self, spec: GripperSpec, value: float) -> float:
        s = (value - self.closed) / (self.open - self.closed)
        return spec.closed_position + s * (spec.open_position - spec.closed_position)


@dataclass(frozen=True)
class GripperOutput:
    """How one arm's gripper is commanded."""

    interface: str  # one of GRIPPER_INTERFACES
    name: str = ""  # topic, action, or (franka_gripper) the gripper node's namespace
    units: Units | None = None  # driver value at open / closed (None: the bridge's own units)
    state_in_driver_units: bool = False  # the joint state of the gripper joint is in driver units too
    joint: str = ""  # joint_single: the driver's name of the gripper joint ("gripper")
    pwm: float = 0.0  # joint_single in PWM mode: effort sent to open (+) and close (-); 0: position mode
    max_effort: float = 0.0  # gripper_command: [N] (0: the server's default)
    speed: float = 0.1  # franka_gripper: [m/s] of the width
    force: float = 20.0  # franka_gripper grasp: [N]
    epsilon_inner: float = 0.005  # franka_gripper grasp: [m] the grasp succeeds down to width - inner
    epsilon_outer: float = 0.08  # franka_gripper grasp: [m] ... and up to width + outer
    goal_timeout: float = 5.0  # [s] an action goal not answered, or not finished, within this: fault

    def to_driver(self, spec: GripperSpec, value: float) -> float:
        """A gripper position in the bridge's units as the driver takes it (unchanged without `units`)."""
        return self.units.to_driver(spec, value) if self.units else float(value)

    def to_bridge(self, spec: GripperSpec, value: float) -> float:
        """A gripper value of the driver in the bridge's units (unchanged without `units`)."""
        return self.units.from_driver(spec, value) if self.units else float(value)

    def __post_init__(self) -> None:
        if self.interface not in GRIPPER_INTERFACES:
            raise ConfigError(f"gripper interface {self.interface!r}: use one of {list(GRIPPER_INTERFACES)}")
        if self.interface not in ("in_trajectory",) and not self.name:
            raise ConfigError(f"gripper interface {self.interface} needs a `name` (topic, action or namespace)")
        if self.state_in_driver_units and self.units is None:
            raise ConfigError("state_in_driver_units needs `units`: the driver's value at open and closed")
        if self.interface == "joint_single" and not self.joint:
            raise ConfigError("gripper interface joint_single needs `joint`: the driver's name of the gripper")


class GripperDirection:
    """Open or close, as a plan's gripper target says: above the middle of the range is open."""

    def __init__(self, spec: GripperSpec) -> None:
        self.spec = spec
        self.last: bool | None = None  # True: opening was sent last

    def change(self, target: float) -> bool | None:
        """True (open) or False (close) when the target turned the gripper around; None otherwise."""
        middle = 0.5 * (self.spec.open_position + self.spec.closed_position)
        opening = (target - middle) * (self.spec.open_position - self.spec.closed_position) > 0
        if opening == self.last:
            return None
        self.last = opening
        return opening


@dataclass(frozen=True)
class ArmOutput:
    """How one arm's joints are commanded."""

    interface: str  # one of ARM_INTERFACES
    name: str  # topic or action name
    group: str = ""  # joint_group: the Interbotix group ("arm")
    goal_timeout: float = 1.0  # [s] follow_joint_trajectory: a goal not accepted or refused within this: fault
    goal_time_tolerance: float = (
        0.5  # [s] follow_joint_trajectory: sent in every goal; a result later than this after the end: fault
    )

    def __post_init__(self) -> None:
        if self.interface not in ARM_INTERFACES:
            raise ConfigError(f"arm interface {self.interface!r}: use one of {list(ARM_INTERFACES)}")
        if self.interface == "joint_group" and not self.group:
            raise ConfigError("arm interface joint_group needs `group`: the Interbotix group name (e.g. arm)")


@dataclass(frozen=True)
class JointStateSource:
    """One joint state topic of the driver, and which joints it carries."""

    topic: str
    prefix: str = ""  # put before every name in it (ALOHA's per-arm xs_sdk publishes `waist`, not `left_waist`)
    arms: tuple[str, ...] = ()  # the arms whose joints it carries (empty: every arm)
    parts: tuple[str, ...] = ("arm", "gripper")  # which of their joints: the chain's, the gripper's

    def __post_init__(self) -> None:
        unknown = set(self.parts) - {"arm", "gripper"}
        if unknown or not self.parts:
            raise ConfigError(f"joint state source {self.topic}: parts are arm and/or gripper, not {sorted(unknown)}")


@dataclass(frozen=True)
class ArmDriver:
    """One arm's command interfaces."""

    arm: str
    command: ArmOutput
    gripper: GripperOutput | None


@dataclass(frozen=True)
class DriverProfile:
    """A robot's driver: joint state topics and each arm's command interfaces."""

    name: str  # "" for the config's own topics
    description: str
    source: str  # where the facts come from (the driver's repository, branch, files)
    joint_states: tuple[JointStateSource, ...]
    arms: tuple[ArmDriver, ...]

    def arm(self, name: str) -> ArmDriver:
        return next(a for a in self.arms if a.arm == name)


def available_drivers(robot: RobotConfig) -> list[str]:
    """The profiles under `drivers:` in the robot's YAML."""
    return sorted((_raw(robot).get("drivers") or {}).keys())


def load_driver_profile(robot: RobotConfig, name: str) -> DriverProfile:
    """The profile `name` of `robot` (from its YAML's `drivers:`); "" is the config's own topics."""
    if not name:
        return default_profile(robot)
    drivers = _raw(robot).get("drivers") or {}
    if name not in drivers:
        close = difflib.get_close_matches(name, list(drivers), n=1)
        hint = f" Did you mean {close[0]!r}?" if close else ""
        raise ConfigError(
            f"{robot.name} has no driver profile {name!r}; its profiles: "
            f"{', '.join(sorted(drivers)) or 'none'} (or empty: the config's own topics).{hint}"
        )
    d = drivers[name]
    try:
        return _profile(robot, name, d)
    except (KeyError, TypeError, ValueError) as exc:
        raise ConfigError(f"{robot.source}: driver {name} is malformed: {type(exc).__name__}: {exc}") from exc


def default_profile(robot: RobotConfig) -> DriverProfile:
    """The config's own topics: a JointTrajectoryController per arm (and per separate gripper), `/joint_states`."""
    arms = []
    for a in robot.arms:
        gripper = None
        if a.gripper is not None:
            gripper = (
                GripperOutput("in_trajectory")
                if a.gripper.mode == "in_trajectory"
                else GripperOutput("joint_trajectory", a.gripper.topic)
            )
        arms.append(ArmDriver(a.name, ArmOutput("joint_trajectory", a.trajectory_topic), gripper))
    return DriverProfile(
        "",
        "the config's own topics: JointTrajectoryControllers and one joint state topic",
        str(robot.source),
        (JointStateSource(robot.joint_states_topic),),
        tuple(arms),
    )


def _profile(robot: RobotConfig, name: str, d: dict) -> DriverProfile:
    arm_names = [a.name for a in robot.arms]
    sources = tuple(
        JointStateSource(
            topic=s["topic"],
            prefix=str(s.get("prefix", "")),
            arms=tuple(s.get("arms", ())),
            parts=tuple(s.get("parts", ("arm", "gripper"))),
        )
        for s in d["joint_states"]
    )
    for s in sources:
        unknown = set(s.arms) - set(arm_names)
        if unknown:
            raise ValueError(f"joint state source {s.topic} names arms {sorted(unknown)}; arms are {arm_names}")
    arms = []
    for arm_name, a in d["arms"].items():
        spec = _arm_spec(robot, arm_name)
        command = ArmOutput(
            interface=a["command"]["interface"],
            name=a["command"]["name"],
            group=str(a["command"].get("group", "")),
            goal_timeout=float(a["command"].get("goal_timeout", 1.0)),
            goal_time_tolerance=float(a["command"].get("goal_time_tolerance", 0.5)),
        )
        gripper = _gripper_output(a.get("gripper"))
        if (gripper is None) != (spec.gripper is None):
            raise ValueError(f"arm {arm_name}: give a gripper interface exactly when the arm has a gripper")
        if gripper is not None and gripper.interface == "in_trajectory" and command.interface == "joint_group":
            raise ValueError(f"arm {arm_name}: a joint_group command carries no gripper; give the gripper its own")
        if gripper is not None and gripper.interface == "in_trajectory" and spec.gripper.mode != "in_trajectory":
            # The bridge plans such a gripper on its own clock (GripperPlan): it has no place in the arm's points.
            raise ValueError(
                f"arm {arm_name}: the gripper is planned apart (mode {spec.gripper.mode}); give it its own interface"
            )
        arms.append(ArmDriver(arm_name, command, gripper))
    missing = set(arm_names) - {a.arm for a in arms}
    if missing:
        raise ValueError(f"no command interface for arm(s) {sorted(missing)}")
    covered = {(arm, part) for s in sources for arm in (s.arms or arm_names) for part in s.parts}
    uncovered = sorted({(a, p) for a in arm_names for p in ("arm", "gripper")} - covered)
    uncovered = [(a, p) for a, p in uncovered if p == "arm" or _arm_spec(robot, a).gripper is not None]
    if uncovered:
        raise ValueError(f"no joint state topic carries {uncovered}")
    return DriverProfile(name, str(d.get("description", "")), str(d.get("source", "")), sources, tuple(arms))


def _raw(robot: RobotConfig) -> dict:
    return yaml.safe_load(robot.source.read_text()) or {}


def _arm_spec(robot: RobotConfig, name: str) -> ArmSpec:
    for a in robot.arms:
        if a.name == name:
            return a
    raise ValueError(f"unknown arm {name!r}; arms are {[a.name for a in robot.arms]}")


def _gripper_output(g: dict | None) -> GripperOutput | None:
    if g is None:
        return None
    units = g.get("units")
    return GripperOutput(
        interface=g["interface"],
        name=str(g.get("name", "")),
        units=Units(float(units["open"]), float(units["closed"])) if units else None,
        state_in_driver_units=bool(g.get("state_in_driver_units", False)),
        joint=str(g.get("joint", "")),
        pwm=float(g.get("pwm", 0.0)),
        max_effort=float(g.get("max_effort", 0.0)),
        speed=float(g.get("speed", 0.1)),
        force=float(g.get("force", 20.0)),
        epsilon_inner=float(g.get("epsilon_inner", 0.005)),
        epsilon_outer=float(g.get("epsilon_outer", 0.08)),
        goal_timeout=float(g.get("goal_timeout", 5.0)),
    )


# --- joint states: the driver's names and units <-> the bridge's ------------------------------------
def bridge_joint_state(
    robot: RobotConfig, profile: DriverProfile, source: JointStateSource, names, positions
) -> tuple[list[str], list[float]]:
    """A message from `source` as the bridge names and measures its joints: the source's prefix added,
    a gripper reported in driver units converted back. Other names pass through (the bridge ignores them)."""
    names = [source.prefix + n for n in names]
    positions = [float(p) for p in positions]
    for a in robot.arms:
        out = profile.arm(a.name).gripper
        if a.gripper is None or out is None or not out.state_in_driver_units or out.units is None:
            continue
        if a.gripper.joint in names:
            i = names.index(a.gripper.joint)
            positions[i] = out.to_bridge(a.gripper, positions[i])
    return names, positions


def driver_joint_state(
    robot: RobotConfig, profile: DriverProfile, source: JointStateSource, names, positions, velocities
) -> tuple[list[str], list[float], list[float]]:
    """What the driver publishes on `source`, from the full state in the bridge's names (the sim plays the
    driver with it): the source's arms and parts only, the prefix taken off, the gripper in driver units."""
    value = dict(zip(names, zip(positions, velocities)))
    out_n, out_p, out_v = [], [], []
    for a in robot.arms:
        if source.arms and a.name not in source.arms:
            continue
        wanted = list(a.chain.joint_names) if "arm" in source.parts else []
        if a.gripper is not None and "gripper" in source.parts:
            wanted.append(a.gripper.joint)
        grip = profile.arm(a.name).gripper
        for n in wanted:
            p, v = value[n]
            if a.gripper is not None and n == a.gripper.joint and grip is not None and grip.state_in_driver_units:
                lo, hi = grip.to_bridge(a.gripper, 0.0), grip.to_bridge(a.gripper, 1.0)
                p, v = grip.to_driver(a.gripper, p), v / (hi - lo)
            if not n.startswith(source.prefix):
                raise ConfigError(f"joint {n} does not start with {source.topic}'s prefix {source.prefix!r}")
            out_n.append(n[len(source.prefix) :])
            out_p.append(float(p))
            out_v.append(float(v))
    return out_n, out_p, out_v


class JointStateMerge:
    """Joint states from several topics as one (vla_node needs the arm and gripper in one state): the
    newest value of each needed joint, stamped with the oldest of their stamps, so staleness checks stay honest."""

    def __init__(self, names) -> None:
        self.names = tuple(names)
        self._values: dict[str, tuple[float, float]] = {}  # name -> (stamp [s], position)

    def update(self, stamp: float, names, positions) -> tuple[float, list[str], list[float]] | None:
        """The merged state after this message, or None while a needed joint has not been heard of."""
        for n, p in zip(names, positions):
            if n in self.names:
                self._values[n] = (stamp, float(p))
        if len(self._values) < len(self.names):
            return None
        values = [self._values[n] for n in self.names]
        return min(s for s, _ in values), list(self.names), [p for _, p in values]
