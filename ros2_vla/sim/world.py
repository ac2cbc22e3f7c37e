"""The simulated robot and workspace: MuJoCo physics, simulated trajectory controllers, cameras.

`Simulation` stands in for the hardware. It is driven by the caller's clock: `step_until(t)` runs
physics (at `SceneSpec.timestep`) up to sim time t [s], sampling every trajectory controller at its
own update rate (ros2_control's controller_manager `update_rate`; default: every physics step) and
writing the result to the joint servos. That rate is not the config's `control_rate_hz`, the rate
the bridge streams at: a controller that ticked in step with the stream would sample each new
trajectory at its start, the measured state, and the arm would barely move.
Controllers are found by the topic the config gives them (an arm's `trajectory_topic`, or the
gripper's `topic` when its mode is "separate"; "in_trajectory" grippers are one more joint of the
arm's controller). Gripper joints are reported and commanded in the config's units: the range
[closed_position, open_position] maps linearly onto the stand-in pads' travel [0, finger_travel].

A servo disturbance (`reset(..., disturbance=std)`) makes every arm joint track its command off by
an offset that wanders (Ornstein-Uhlenbeck, std [rad], correlation time DISTURBANCE_TIME), as a
miscalibrated or pushed arm would. The controllers see the joints less that offset, so they do not
fight it; whoever closes the loop on the true pose (the scripted expert) corrects for it. Recorded
with the expert, this gives DART-style demos: states off the ideal path, each labelled with the
expert's correction.

A grasp slip (`reset(..., slip=chance)`, `ros2_vla.sim.slip`) makes the episode's first grasp fail
once, a cube missed or dropped, so the expert is recorded going back for it.

Frames: world (z up, table top at `SceneSpec.table_height`); each arm's base frame from its config;
poses are 4x4 transforms `T_<frame>_<body>`, translation [m].
"""

from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np

from ros2_vla.config import ArmSpec, GripperSpec, RobotConfig, load_robot_config
from ros2_vla.errors import ConfigError
from ros2_vla.sim.backend import mujoco
from ros2_vla.sim.cameras import CameraIntrinsics, CameraRig, intrinsics
from ros2_vla.sim.controller import JointTrajectoryController, SimTrajectory
from ros2_vla.sim.layout import random_layout
from ros2_vla.sim.mjcf import build_scene_xml, finger_joint_names
from ros2_vla.sim.scene import SceneSpec, base_transform
from ros2_vla.sim.slip import SlipWatch, draw_slip

START_CLEARANCE = 0.2  # [m] a jittered start keeps every TCP this far above the table (clear of the objects)
_START_TRIES = 20
_START_STREAM = 1  # second seed word of the start-jitter draws, apart from the layout's stream
_DISTURBANCE_STREAM = 2  # second seed word of the servo disturbance's draws
_SLIP_STREAM = 3  # second seed word of the grasp slip's draws
DISTURBANCE_TIME = 1.0  # [s] correlation time of the servo disturbance: it wanders, it does not shake


class SimJointState(NamedTuple):
    """The simulated joints' names, positions and velocities, as /joint_states carries them."""

    names: tuple[str, ...]  # arm by arm: the chain's joints, then its gripper joint
    positions: np.ndarray  # [rad or m] (n,)
    velocities: np.ndarray  # [rad/s or m/s] (n,)


class _Gripper(NamedTuple):
    spec: GripperSpec
    qpos: tuple[int, int]  # qpos addresses of the two pads
    dof: tuple[int, int]
    actuators: tuple[int, int]
    travel: float  # [m]


class Simulation:
    """One robot on a table with cubes and a bowl. Not thread-safe: one caller drives it."""

    def __init__(
        self,
        robot: RobotConfig | str,
        seed: int = 0,
        scene: SceneSpec | None = None,
        open_loop: bool = False,
        controller_rate_hz: float | None = None,
    ) -> None:
        """robot: config or its name; seed: of the first `reset`; open_loop: controllers start new
        trajectories from their reference instead of the measured state (JTC `open_loop_control`);
        controller_rate_hz: [Hz] the simulated controllers' update rate (None: every physics step)."""
        self.robot = load_robot_config(robot) if isinstance(robot, str) else robot
        self.scene = scene or SceneSpec()
        self.model = mujoco.MjModel.from_xml_string(build_scene_xml(self.robot, self.scene))
        self.data = mujoco.MjData(self.model)
        self.cameras = CameraRig(self.model, self.robot.cameras, self.robot.name)
        self._arms = {a.name: a for a in self.robot.arms}
        self._joint = {n: self.model.joint(n) for n in self.robot.joint_names}
        self._actuator = {n: self.model.actuator(n).id for n in self.robot.joint_names}
        self._grippers = {a.gripper.joint: self._gripper_io(a) for a in self.robot.arms if a.gripper is not None}
        self.controllers = self._make_controllers(open_loop)
        if controller_rate_hz is not None and not controller_rate_hz > 0:
            raise ConfigError(f"controller_rate_hz must be > 0 (or None: every physics step), got {controller_rate_hz}")
        self._period = 1.0 / controller_rate_hz if controller_rate_hz else float(self.model.opt.timestep)
        self._next_tick = 0.0
        arm_joints = [n for a in self.robot.arms for n in a.chain.joint_names]
        self._offset = dict.fromkeys(arm_joints, 0.0)  # [rad] servo disturbance per arm joint; `reset` draws it
        self.slip = SlipWatch()  # this episode's grasp slip; `reset` plans it
        self.reset(seed)

    # --- time and control -------------------------------------------------------------------
    @property
    def time(self) -> float:
        """[s] sim time since the last reset."""
        return float(self.data.time)

    def command(self, topic: str, trajectory: SimTrajectory) -> None:
        """Hand a trajectory to the controller on `topic`, as of now; raises TrajectoryError when rejected."""
        if topic not in self.controllers:
            raise ConfigError(f"no simulated controller on {topic!r}; controllers: {sorted(self.controllers)}")
        ctrl = self.controllers[topic]
        ctrl.accept(trajectory, self.time, self._measured(ctrl.joint_names, servo_frame=True))

    def measured(self, names) -> np.ndarray:
        """Measured positions of `names` (arm joints [rad], grippers in config units)."""
        return self._measured(names)

    def step_until(self, t: float) -> None:
        """Run physics until sim time t [s] (no-op when t is not ahead); controllers tick on their period."""
        dt = self.model.opt.timestep
        while self.data.time + 0.5 * dt < t:
            if self.data.time + 0.5 * dt >= self._next_tick:
                self._wander(self._period)
                self.slip.update(self, self.data.time)
                self._apply_controllers(self.data.time)
                self._next_tick += self._period
            mujoco.mj_step(self.model, self.data)

    def joint_state(self) -> SimJointState:
        """Measured positions and velocities of every configured joint (grippers in config units)."""
        names, pos, vel = [], [], []
        for arm in self.robot.arms:
            for n in arm.chain.joint_names:
                j = self._joint[n]
                names.append(n)
                pos.append(float(self.data.qpos[j.qposadr[0]]))
                vel.append(float(self.data.qvel[j.dofadr[0]]))
            if arm.gripper is not None:
                g = self._grippers[arm.gripper.joint]
                names.append(arm.gripper.joint)
                pos.append(self._gripper_value(g))
                vel.append(float(np.mean(self.data.qvel[list(g.dof)])) * self._gripper_scale(g))
        return SimJointState(tuple(names), np.array(pos), np.array(vel))

    # --- reset ------------------------------------------------------------------------------
    def reset(
        self, seed: int | None = None, start_jitter: float = 0.0, disturbance: float = 0.0, slip: float = 0.0
    ) -> None:
        """Arms at home with grippers open, controllers holding that; objects at random spots in
        front of the arm(s) (same seed, same spots); sim time back to 0.

        start_jitter: [rad] each arm joint starts up to this far from home (uniform, within its limits,
        redrawn until every TCP is START_CLEARANCE above the table), so demos begin from varied poses and
        a policy learns to reach the cube from wherever the arm is. Its draws come from their own stream:
        the seed's objects are where they would be without it.
        disturbance: [rad] std of the servo disturbance (module docstring) until the next reset; 0: none.
        slip: chance [0, 1] that the episode's first grasp is made to fail (`ros2_vla.sim.slip`).
        Their draws come from streams of their own too."""
        if not start_jitter >= 0.0:
            raise ConfigError(f"start_jitter must be >= 0 [rad], got {start_jitter}")
        if not disturbance >= 0.0:
            raise ConfigError(f"disturbance must be >= 0 [rad], got {disturbance}")
        self._disturbance = float(disturbance)
        self._disturbance_rng = np.random.default_rng(None if seed is None else [seed, _DISTURBANCE_STREAM])
        self._offset = dict.fromkeys(self._offset, 0.0)
        self.slip = SlipWatch(draw_slip(slip, np.random.default_rng(None if seed is None else [seed, _SLIP_STREAM])))
        rng = np.random.default_rng(seed)
        mujoco.mj_resetData(self.model, self.data)
        self._set_arms(self._start_posture(seed, start_jitter))
        for g in self._grippers.values():
            self.data.qpos[list(g.qpos)] = g.travel
        for p in random_layout(self.robot, self.scene, rng):
            self._set_free_pose(p.name, p.xyz, p.yaw)
        mujoco.mj_forward(self.model, self.data)
        for ctrl in self.controllers.values():
            ctrl.reset(self._measured(ctrl.joint_names))
        self._next_tick = 0.0
        self._apply_controllers(0.0)

    def _set_arms(self, postures: dict[str, np.ndarray]) -> None:
        for arm in self.robot.arms:
            for n, q in zip(arm.chain.joint_names, postures[arm.name]):
                self.data.qpos[self._joint[n].qposadr[0]] = q

    def _start_posture(self, seed: int | None, jitter: float) -> dict[str, np.ndarray]:
        """Arm name -> start joints [rad]: home, or home jittered (see `reset`)."""
        home = {arm.name: np.array(arm.chain.home, dtype=np.float64) for arm in self.robot.arms}
        if jitter == 0.0:
            return home
        rng = np.random.default_rng(None if seed is None else [seed, _START_STREAM])
        for _ in range(_START_TRIES):
            postures = {
                arm.name: np.clip(
                    home[arm.name] + rng.uniform(-jitter, jitter, len(home[arm.name])),
                    [j.lower for j in arm.chain.joints],
                    [j.upper for j in arm.chain.joints],
                )
                for arm in self.robot.arms
            }
            self._set_arms(postures)
            mujoco.mj_kinematics(self.model, self.data)
            if all(
                self.tcp_pose(a.name, frame="world")[2, 3] >= self.scene.table_height + START_CLEARANCE
                for a in self.robot.arms
            ):
                return postures
        return home  # no clear draw (a jitter too large for this arm): start at home

    def set_object_pose(self, name: str, xyz, yaw: float = 0.0) -> None:
        """Put a free object (cube or bowl) at world position xyz [m] (its body origin) with yaw [rad], at rest."""
        if name not in self.scene.object_names:
            raise ConfigError(f"no object {name!r} in the scene; objects: {self.scene.object_names}")
        self._set_free_pose(name, xyz, yaw)
        mujoco.mj_forward(self.model, self.data)

    # --- geometry ---------------------------------------------------------------------------
    def object_names(self) -> tuple[str, ...]:
        return self.scene.object_names

    def object_pose(self, name: str) -> np.ndarray:
        """`T_world_object` (4, 4) of a cube or the bowl (cube: its centre; bowl: floor underside centre)."""
        body = self.model.body(name).id
        return _transform(self.data.xmat[body], self.data.xpos[body])

    def base_pose(self, arm: str | None = None) -> np.ndarray:
        """`T_world_base` (4, 4) of one arm (default: the first)."""
        return base_transform(self.arm(arm))

    def tcp_pose(self, arm: str | None = None, frame: str = "base") -> np.ndarray:
        """`T_base_tcp` (frame "base") or `T_world_tcp` (frame "world"), (4, 4), from the TCP site."""
        site = self.model.site(self.arm(arm).chain.ee_link).id
        T_world_tcp = _transform(self.data.site_xmat[site], self.data.site_xpos[site])
        if frame == "world":
            return T_world_tcp
        if frame != "base":
            raise ConfigError(f"tcp_pose frame must be 'base' or 'world', not {frame!r}")
        return np.linalg.inv(self.base_pose(arm)) @ T_world_tcp

    def arm(self, name: str | None = None) -> ArmSpec:
        """The configured arm of that name (default: the first)."""
        if name is None:
            return self.robot.arms[0]
        if name not in self._arms:
            raise ConfigError(f"robot {self.robot.name} has no arm {name!r}; arms: {sorted(self._arms)}")
        return self._arms[name]

    def gripper_opening(self, arm: str | None = None) -> float:
        """Gripper joint position in config units (closed_position .. open_position)."""
        spec = self.arm(arm).gripper
        if spec is None:
            raise ConfigError(f"arm {self.arm(arm).name} has no gripper")
        return self._gripper_value(self._grippers[spec.joint])

    def touching(self, body_a: str, body_b: str) -> bool:
        """True when some geom of body_a (or its sub-bodies) is in contact with one of body_b's."""
        a, b = self._subtree(body_a), self._subtree(body_b)
        for c in self.data.contact[: self.data.ncon]:
            ba, bb = self.model.geom_bodyid[c.geom1], self.model.geom_bodyid[c.geom2]
            if (ba in a and bb in b) or (ba in b and bb in a):
                return True
        return False

    def contacts(self, body: str) -> set[str]:
        """Names of the bodies in contact with `body` or its sub-bodies ("world" for the table and floor)."""
        mine = self._subtree(body)
        touching = set()
        for c in self.data.contact[: self.data.ncon]:
            pair = (self.model.geom_bodyid[c.geom1], self.model.geom_bodyid[c.geom2])
            for a, b in (pair, pair[::-1]):
                if a in mine and b not in mine:
                    touching.add(self.model.body(b).name)
        return touching

    def grasped(self, obj: str, arm: str | None = None) -> bool:
        """True when both pads of the arm's gripper touch the object."""
        spec = self.arm(arm).gripper
        return spec is not None and all(self.touching(f, obj) for f in finger_joint_names(self.arm(arm)))

    # --- cameras ---------------------------------------------------------------------------
    def render(self, camera: str, lock=None) -> np.ndarray:
        """RGB image (height, width, 3) uint8 of a configured camera, at its configured size. With
        `lock`, the sim state is held only while the scene is copied (render from another thread)."""
        return self.cameras.render(self.data, camera, lock)

    def render_set(self, cameras: tuple[str, ...], lock=None) -> dict[str, np.ndarray]:
        """Images of several cameras at one instant (one copy of the state), as a synchronized rig."""
        return self.cameras.render_set(self.data, cameras, lock)

    def camera_intrinsics(self, camera: str) -> CameraIntrinsics:
        """Pinhole model of a configured camera for its CameraInfo."""
        return intrinsics(self.cameras.spec(camera))

    def camera_pose(self, camera: str, optical: bool = False) -> np.ndarray:
        """`T_world_camera` (4, 4). MuJoCo axes (looks along -z, y up), or with optical=True the ROS
        optical frame (z forward, x right, y down) that CameraInfo refers to."""
        return self.cameras.pose(self.data, camera, optical)

    def close(self) -> None:
        """Free the GL contexts of the renderers (also done when the object is collected)."""
        self.cameras.close()

    # --- internals --------------------------------------------------------------------------
    def _gripper_io(self, arm: ArmSpec) -> _Gripper:
        names = finger_joint_names(arm)
        joints = [self.model.joint(n) for n in names]
        return _Gripper(
            arm.gripper,
            tuple(j.qposadr[0] for j in joints),
            tuple(j.dofadr[0] for j in joints),
            tuple(self.model.actuator(n).id for n in names),
            self.scene.finger_travel,
        )

    def _make_controllers(self, open_loop: bool) -> dict[str, JointTrajectoryController]:
        controllers: dict[str, JointTrajectoryController] = {}
        for arm in self.robot.arms:
            names = list(arm.chain.joint_names)
            if arm.gripper is not None and arm.gripper.mode == "in_trajectory":
                names.append(arm.gripper.joint)
            elif arm.gripper is not None:
                g = arm.gripper
                controllers[g.topic] = JointTrajectoryController([g.joint], [g.open_position], open_loop)
            controllers[arm.trajectory_topic] = JointTrajectoryController(names, np.zeros(len(names)), open_loop)
        return controllers

    def _gripper_scale(self, g: _Gripper) -> float:
        """Config units per metre of pad travel."""
        return (g.spec.open_position - g.spec.closed_position) / g.travel

    def _gripper_value(self, g: _Gripper) -> float:
        slide = float(np.mean(self.data.qpos[list(g.qpos)]))
        return g.spec.closed_position + slide * self._gripper_scale(g)

    def _measured(self, names, servo_frame: bool = False) -> np.ndarray:
        """Positions of `names`; servo_frame: less the servo disturbance, as the controllers see them."""
        return np.array(
            [
                self._gripper_value(self._grippers[n])
                if n in self._grippers
                else self.data.qpos[self._joint[n].qposadr[0]] - (self._offset[n] if servo_frame else 0.0)
                for n in names
            ]
        )

    def _wander(self, dt: float) -> None:
        """Advance the servo disturbance by dt [s] (an exact Ornstein-Uhlenbeck step)."""
        if self._disturbance == 0.0:
            return
        a = math.exp(-dt / DISTURBANCE_TIME)
        noise = self._disturbance_rng.normal(0.0, self._disturbance * math.sqrt(1.0 - a * a), len(self._offset))
        self._offset = {n: a * x + e for (n, x), e in zip(self._offset.items(), noise)}

    def _apply_controllers(self, t: float) -> None:
        for ctrl in self.controllers.values():
            for name, value in zip(ctrl.joint_names, ctrl.sample(t)):
                if name in self._grippers:
                    g = self._grippers[name]
                    slide = min(max((value - g.spec.closed_position) / self._gripper_scale(g), 0.0), g.travel)
                    if self.slip.forced_open(name, t):
                        slide = g.travel
                    self.data.ctrl[list(g.actuators)] = slide
                else:
                    self.data.ctrl[self._actuator[name]] = value + self._offset[name]

    def _set_free_pose(self, name: str, xyz, yaw: float) -> None:
        joint = self.model.joint(name)
        adr, dof = joint.qposadr[0], joint.dofadr[0]
        self.data.qpos[adr : adr + 3] = xyz
        self.data.qpos[adr + 3 : adr + 7] = [math.cos(yaw / 2), 0.0, 0.0, math.sin(yaw / 2)]
        self.data.qvel[dof : dof + 6] = 0.0

    def _subtree(self, body: str) -> set[int]:
        root = self.model.body(body).id
        ids = {root}
        for i in range(root + 1, self.model.nbody):  # MuJoCo numbers children after their parents
            if self.model.body_parentid[i] in ids:
                ids.add(i)
        return ids

    def __del__(self) -> None:
        try:
            self.close()
        except Exception:  # interpreter shutdown: GL may already be gone
            pass


def _transform(xmat: np.ndarray, xpos: np.ndarray) -> np.ndarray:
    T = np.eye(4)
    T[:3, :3] = np.asarray(xmat).reshape(3, 3)
    T[:3, 3] = xpos
    return T
