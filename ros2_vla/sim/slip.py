"""Grasp slips for recovery demos: the sim makes one grasp of an episode fail, so the expert is seen trying again.

With chance `slip` per episode (`Simulation.reset(slip=...)`) the first grasp goes wrong in one of two
ways, drawn half and half:
- "miss": the moment both pads of a gripper touch a cube, the cube is put back on the table 3 to 6 cm
  to the side, at rest, as if the gripper had closed beside it;
- "drop": once a held cube is 1.5 to 4 cm above its resting height (below the pick task's `LIFT`),
  that gripper's pads are forced open for DROP_TIME whatever its controller says, and the cube falls.
A scripted expert closing the loop on the true poses sees the cube is not between its pads
(`script.ArmScript.begin_chunk`) and goes back for it. Demos of clean grasps only never show a policy
what to do after a failed one, and a learned policy's grasps do fail.
"""

from __future__ import annotations

import math
from typing import NamedTuple, Protocol

import numpy as np

from ros2_vla.config import ArmSpec, RobotConfig
from ros2_vla.errors import ConfigError
from ros2_vla.sim.scene import BOWL, SceneSpec, cube_name

SLIP_KINDS = ("miss", "drop")
MISS_DISTANCE = (0.03, 0.06)  # [m] how far a missed cube lands from where it was grasped
DROP_HEIGHT = (0.015, 0.04)  # [m] the held cube's height above rest when it is dropped
DROP_TIME = 0.3  # [s] the pads stay forced open this long
CHECK_PERIOD = 0.01  # [s] sim time between looks for the slip's moment
_DIRECTIONS = 8  # directions tried for a missed cube's new spot, from a random start


class SlipPlan(NamedTuple):
    """An episode's grasp slip: its kind and size (`NO_SLIP`: none)."""

    kind: str  # "miss", "drop" or "" (this episode's grasps are left alone)
    distance: float  # [m] "miss": how far the cube is put
    angle: float  # [rad] "miss": the first direction tried
    height: float  # [m] "drop": held cube height above rest that triggers it


NO_SLIP = SlipPlan("", 0.0, 0.0, 0.0)


class SlipSim(Protocol):
    """What a slip needs of the sim (`ros2_vla.sim.world.Simulation` is one): the world calls the slip, so the
    slip names only these, not the world module."""

    robot: RobotConfig
    scene: SceneSpec

    def arm(self, name: str | None = None) -> ArmSpec: ...
    def object_pose(self, name: str) -> np.ndarray: ...
    def set_object_pose(self, name: str, xyz: np.ndarray, yaw: float) -> None: ...
    def grasped(self, obj: str, arm: str | None = None) -> bool: ...
    def contacts(self, body: str) -> set[str]: ...


def draw_slip(chance: float, rng: np.random.Generator) -> SlipPlan:
    """This episode's plan: a slip with probability `chance` [0, 1], its kind and size drawn from `rng`."""
    if not 0.0 <= chance <= 1.0:
        raise ConfigError(f"slip must be a chance in [0, 1], got {chance}")
    draws = rng.uniform(size=5)  # always five, so the plan of a seed does not depend on the chance's branch
    if draws[0] >= chance:
        return NO_SLIP
    lo, hi = MISS_DISTANCE
    h_lo, h_hi = DROP_HEIGHT
    return SlipPlan(
        SLIP_KINDS[int(draws[1] < 0.5)],
        lo + (hi - lo) * draws[2],
        2 * math.pi * draws[3],
        h_lo + (h_hi - h_lo) * draws[4],
    )


class SlipWatch:
    """Carries out one episode's SlipPlan on a Simulation: `update` at every controller tick."""

    def __init__(self, plan: SlipPlan = NO_SLIP) -> None:
        self.plan = plan
        self.done = not plan.kind  # the slip happened, could not be placed, or none was planned
        self.happened = ""  # the kind, once it happened
        self._next_check = 0.0
        self._open_joint = ""  # gripper joint whose pads are forced open
        self._open_until = -1.0

    def forced_open(self, gripper_joint: str, t: float) -> bool:
        """Whether this gripper's pads are held open at sim time t [s] regardless of its command."""
        return gripper_joint == self._open_joint and t < self._open_until

    def update(self, sim: SlipSim, t: float) -> None:
        if self.done or t < self._next_check:
            return
        self._next_check = t + CHECK_PERIOD
        held = _held_cube(sim)
        if held is None:
            return
        arm, cube = held
        if self.plan.kind == "miss":
            self.done = True
            if _put_aside(sim, cube, self.plan):
                self.happened = "miss"
        elif sim.object_pose(cube)[2, 3] > _rest_height(sim) + self.plan.height:
            self.done, self.happened = True, "drop"
            self._open_joint, self._open_until = sim.arm(arm).gripper.joint, t + DROP_TIME


def _rest_height(sim: SlipSim) -> float:
    return sim.scene.table_height + sim.scene.cube_size / 2


def _held_cube(sim: SlipSim) -> tuple[str, str] | None:
    """(arm, cube) for the first cube both pads of some gripper touch, or None."""
    for arm in sim.robot.arms:
        if arm.gripper is None:
            continue
        for cube in map(cube_name, sim.scene.cube_colors):
            if sim.grasped(cube, arm.name):
                return arm.name, cube
    return None


def _put_aside(sim: SlipSim, cube: str, plan: SlipPlan) -> bool:
    """Move `cube` `plan.distance` sideways onto the table, at rest, to the first spot where it touches
    nothing but the table and is clear of the bowl; False (the cube left where it was) when none is."""
    T = sim.object_pose(cube)
    start, yaw = T[:3, 3].copy(), math.atan2(T[1, 0], T[0, 0])
    bowl = sim.object_pose(BOWL)[:2, 3]
    clear_of_bowl = sim.scene.bowl_radius + sim.scene.cube_size
    for k in range(_DIRECTIONS):
        a = plan.angle + 2 * math.pi * k / _DIRECTIONS
        xyz = [start[0] + plan.distance * math.cos(a), start[1] + plan.distance * math.sin(a), _rest_height(sim)]
        if math.dist(xyz[:2], bowl) < clear_of_bowl:
            continue
        sim.set_object_pose(cube, xyz, yaw)
        if sim.contacts(cube) <= {"world"}:
            return True
    sim.set_object_pose(cube, start, yaw)
    return False
