"""The phase machine a scripted expert runs for one arm and one cube, in the world frame.

Phases: approach (above the cube) -> descend -> close -> lift -> hold, or for "place"
lift -> carry (over the bowl) -> lower -> release -> retreat -> done. The gripper points straight
down with its pads across the two cube faces nearest their current line (or, for arms whose wrist
prefers it, the arm's natural line; see `ArmScript.pad_line`).

`step` says, one action step at a time, which TCP pose to move toward (None: keep still) and
whether the gripper is open; the caller moves (Cartesian or joint space) and reports the pose it
predicts. Motion phases end only in `begin_chunk`, when the TRUE TCP is within tolerance of the
goal, so lag in the bridge or the servos never skips a phase; timed phases (close, release) count
steps. A cube that left the gripper, or that is not between the pads while they close (a grasp
about to miss), sends the arm back to approach.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from ros2_vla.actions.rotations import matrix_to_rotvec, rotvec_to_matrix
from ros2_vla.config import ArmSpec
from ros2_vla.sim.scene import BOWL, SceneSpec, gripper_frame

MOTION = ("approach", "descend", "lift", "carry", "lower", "retreat")
_HOLDING = ("lift", "hold", "carry", "lower")  # phases in which the cube must be in the gripper
_OPEN = ("approach", "descend", "release", "retreat", "done")
PICK_PHASES = ("approach", "descend", "close", "lift", "hold")
PLACE_PHASES = ("approach", "descend", "close", "lift", "carry", "lower", "release", "retreat", "done")
BOWL_FLOOR = 0.008  # [m] thickness of the bowl's floor plate (mjcf._bowl)


@dataclass(frozen=True)
class ExpertParams:
    """Heights, speeds, tolerances and timings of the scripted expert's phases."""

    approach_height: float = 0.08  # [m] TCP above the cube centre before descending
    grasp_offset: float = 0.005  # [m] TCP above the cube centre when closing
    lift_height: float = 0.16  # [m] TCP above the table after the lift (and while carrying)
    release_height: float = 0.03  # [m] cube bottom above the bowl floor when opening
    speed: float = 0.25  # [m/s] TCP speed, also capped by the safety config's per-step limit
    rotation_speed: float = 1.5  # [rad/s]
    joint_speed: float = 0.3  # fraction of the joint velocity limits (joint-space experts)
    tolerance: float = 0.008  # [m] true TCP this close to a motion goal ends the phase
    rotation_tolerance: float = 0.08  # [rad]
    grip_time: float = 0.8  # [s] closing or opening the gripper
    slip_distance: float = 0.04  # [m] cube further than this from the TCP while held: grasp lost
    miss_distance: float = 0.02  # [m] cube centre further than this from the TCP in x-y while closing: a miss


class ArmScript:
    """Phase machine of one arm handling one cube."""

    def __init__(
        self,
        arm: ArmSpec,
        cube: str,
        phases: tuple[str, ...],
        params: ExpertParams,
        scene: SceneSpec,
        dt: float,
        natural_pads: bool = False,
    ) -> None:
        self.arm, self.cube, self.phases, self.p, self.scene = arm, cube, phases, params, scene
        self.R_tcp_gripper = gripper_frame(arm.chain)
        self.grip_steps = max(1, math.ceil(params.grip_time / dt))
        self.natural_pads = natural_pads
        self.phase_index, self.count = 0, 0
        self.anchor = np.zeros(3)  # [m] TCP point where the current phase began
        self.R_hold = np.eye(3)  # TCP rotation kept while the cube is carried

    @property
    def phase(self) -> str:
        return self.phases[self.phase_index]

    def begin_chunk(self, T_tcp: np.ndarray, objects: dict[str, np.ndarray]) -> None:
        """Advance the motion phases the true TCP `T_world_tcp` has completed; restart after a lost or missed grasp."""
        off = objects[self.cube][:3, 3] - T_tcp[:3, 3]
        lost = self.phase in _HOLDING and np.linalg.norm(off) > self.p.slip_distance
        if lost or (self.phase == "close" and np.linalg.norm(off[:2]) > self.p.miss_distance):
            self.phase_index, self.count = 0, 0
        while self.phase in MOTION and reached(
            T_tcp, self.goal(T_tcp, objects), self.p.tolerance, self.p.rotation_tolerance
        ):
            self._advance(T_tcp)

    def step(self, T_pred: np.ndarray, objects: dict[str, np.ndarray]) -> tuple[np.ndarray | None, bool]:
        """Goal `T_world_tcp` to move toward this step (None: keep still) and whether the gripper is open."""
        is_open = self.phase in _OPEN
        if self.phase in ("close", "release"):
            self.count += 1
            if self.count >= self.grip_steps:
                self._advance(T_pred)
            return None, is_open
        return (self.goal(T_pred, objects) if self.phase in MOTION else None), is_open

    def goal(self, T_tcp: np.ndarray, objects: dict[str, np.ndarray]) -> np.ndarray:
        """`T_world_tcp` (4, 4) the current motion phase moves to."""
        top, p = self.scene.table_height, self.p
        if self.phase in ("approach", "descend"):
            cube = objects[self.cube][:3, 3]
            up = p.approach_height if self.phase == "approach" else p.grasp_offset
            return _pose(self._top_down(T_tcp, objects[self.cube]), cube + np.array([0.0, 0.0, up]))
        if self.phase in ("lift", "retreat"):
            return _pose(self.R_hold, [self.anchor[0], self.anchor[1], top + p.lift_height])
        bowl = objects[BOWL][:3, 3]
        if self.phase == "carry":
            return _pose(self.R_hold, [bowl[0], bowl[1], top + p.lift_height])
        z = bowl[2] + BOWL_FLOOR + p.release_height + self.scene.cube_size / 2 + p.grasp_offset  # lower
        return _pose(self.R_hold, [bowl[0], bowl[1], z])

    def _advance(self, T_tcp: np.ndarray) -> None:
        self.phase_index = min(self.phase_index + 1, len(self.phases) - 1)
        self.count = 0
        self.anchor = T_tcp[:3, 3].copy()
        self.R_hold = T_tcp[:3, :3].copy()

    def pad_line(self, T_tcp: np.ndarray, T_cube: np.ndarray) -> np.ndarray:
        """Horizontal direction (3,) the pads should lie near: their current line, or with `natural_pads`
        the line across the arm's reach (perpendicular to base -> cube), which a 6-DoF wrist reaches
        without rolling its forearm."""
        if not self.natural_pads:
            return T_tcp[:3, :3] @ self.R_tcp_gripper[:, 1]
        reach = T_cube[:3, 3] - np.asarray(self.arm.base_xyz, dtype=float)
        return np.array([-reach[1], reach[0], 0.0])

    def _top_down(self, T_tcp: np.ndarray, T_cube: np.ndarray) -> np.ndarray:
        """`R_world_tcp` with the gripper pointing down and the pads across the cube faces nearest `pad_line`."""
        line = self.pad_line(T_tcp, T_cube)
        faces = [
            np.array([f[0], f[1], 0.0]) / max(math.hypot(f[0], f[1]), 1e-9) for f in (T_cube[:3, 0], T_cube[:3, 1])
        ]
        y = max((s * f for f in faces for s in (1.0, -1.0)), key=lambda v: float(v @ line))
        z = np.array([0.0, 0.0, -1.0])
        return np.column_stack([np.cross(y, z), y, z]) @ self.R_tcp_gripper.T


def reached(T: np.ndarray, T_goal: np.ndarray, tol: float, rot_tol: float) -> bool:
    """T within tol [m] and rot_tol [rad] of T_goal."""
    angle = float(np.linalg.norm(matrix_to_rotvec(T_goal[:3, :3] @ T[:3, :3].T)))
    return float(np.linalg.norm(T_goal[:3, 3] - T[:3, 3])) <= tol and angle <= rot_tol


def move_toward(T: np.ndarray, T_goal: np.ndarray, step: float, turn: float) -> np.ndarray:
    """One step from T toward T_goal (both 4x4, one frame): at most `step` [m] and `turn` [rad]."""
    d = T_goal[:3, 3] - T[:3, 3]
    dist = float(np.linalg.norm(d))
    if dist > step:
        d = d * (step / dist)
    w = matrix_to_rotvec(T_goal[:3, :3] @ T[:3, :3].T)
    angle = float(np.linalg.norm(w))
    if angle > turn:
        w = w * (turn / angle)
    return _pose(rotvec_to_matrix(w) @ T[:3, :3], T[:3, 3] + d)


def _pose(R: np.ndarray, p) -> np.ndarray:
    T = np.eye(4)
    T[:3, :3] = R
    T[:3, 3] = p
    return T
