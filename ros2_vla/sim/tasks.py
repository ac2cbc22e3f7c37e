"""Task templates for the simulated workspace: an instruction, the objects it is about, a success check.

Kinds:
- "pick": "pick up the {color} cube": success while that cube's bottom is more than `LIFT` above the
  table and both pads of some gripper touch it (held, not tossed).
- "place": "put the {color} cube in the bowl": success while the cube rests inside the bowl's wall
  ring, low (not hovering above it), and no gripper touches it (released).
- "bimanual_pick": "pick up the {a} cube and the {b} cube" (robots with two arms): success while
  both cubes are lifted and each is held by a different arm.
Checks read true object poses and contacts from the `Simulation`, never the policy's view.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from ros2_vla.config import RobotConfig
from ros2_vla.errors import ConfigError
from ros2_vla.sim.scene import BOWL, SceneSpec, base_transform, cube_name

if TYPE_CHECKING:  # annotations only: task wording (sim/phrasings.py) stays importable without MuJoCo
    from ros2_vla.sim.world import Simulation

LIFT = 0.05  # [m] the cube's bottom above the table for "lifted"
REACH = 0.03  # [m] a TCP this close to a cube's centre has "reached" it
# How far an episode got with its cubes, in order: where a failed one stopped (`progress`).
STAGES = ("not_reached", "reached", "grasped", "lifted")
TEMPLATES = {
    "pick": "pick up the {0} cube",
    "place": "put the {0} cube in the bowl",
    "bimanual_pick": "pick up the {0} cube and the {1} cube",
}


@dataclass(frozen=True)
class Task:
    """One task: its kind and the cube colors it names, which give its instruction."""

    kind: str  # a key of TEMPLATES
    colors: tuple[str, ...]  # the cube colors the instruction names, in its order

    def __post_init__(self) -> None:
        if self.kind not in TEMPLATES:
            raise ConfigError(f"unknown task kind {self.kind!r}; kinds: {sorted(TEMPLATES)}")
        need = TEMPLATES[self.kind].count("{")
        if len(self.colors) != need or len(set(self.colors)) != need:
            raise ConfigError(f"task {self.kind} names {need} distinct cube colors, got {self.colors}")

    @property
    def instruction(self) -> str:
        return TEMPLATES[self.kind].format(*self.colors)

    @property
    def objects(self) -> tuple[str, ...]:
        """Body names of the cubes the task is about."""
        return tuple(cube_name(c) for c in self.colors)


def task_kinds(robot: RobotConfig) -> tuple[str, ...]:
    """The kinds a robot's scripted expert can do: two-arm robots get the bimanual task."""
    return ("bimanual_pick",) if len(robot.arms) == 2 else ("pick", "place")


def sample_task(
    robot: RobotConfig,
    rng: np.random.Generator,
    sim: Simulation | None = None,
    scene: SceneSpec | None = None,
    kind: str = "",
) -> Task:
    """A random task for the robot. For two-arm robots pass `sim` (after `reset`): each arm is then
    given the cube nearest its own base, so both picks are within reach. `kind` fixes the task kind."""
    scene = sim.scene if sim is not None else (scene or SceneSpec())
    if kind and kind not in task_kinds(robot):
        raise ConfigError(f"task kind {kind!r} is not one {robot.name} does; kinds: {task_kinds(robot)}")
    kind = kind or str(rng.choice(task_kinds(robot)))
    colors = list(scene.cube_colors)
    if kind != "bimanual_pick":
        return Task(kind, (str(rng.choice(colors)),))
    if sim is None:
        return Task(kind, tuple(str(c) for c in rng.choice(colors, size=2, replace=False)))
    return Task(kind, _one_cube_per_arm(robot, sim, colors, rng))


def _one_cube_per_arm(
    robot: RobotConfig, sim: Simulation, colors: list[str], rng: np.random.Generator
) -> tuple[str, str]:
    """For each arm (config order), a random cube among those nearest that arm's base."""
    bases = [base_transform(a)[:2, 3] for a in robot.arms]
    side = {
        c: int(np.argmin([np.linalg.norm(sim.object_pose(cube_name(c))[:2, 3] - b) for b in bases])) for c in colors
    }
    chosen = []
    for k in range(len(robot.arms)):
        mine = [c for c in colors if side[c] == k and c not in chosen] or [c for c in colors if c not in chosen]
        chosen.append(str(rng.choice(mine)))
    return tuple(chosen)


def lifted(sim: Simulation, obj: str) -> bool:
    """The object's centre is more than LIFT above its resting height on the table."""
    rest = sim.scene.table_height + sim.scene.cube_size / 2
    return float(sim.object_pose(obj)[2, 3]) > rest + LIFT


def holder(sim: Simulation, obj: str) -> str | None:
    """Name of the arm whose two pads touch the object, or None."""
    for arm in sim.robot.arms:
        if arm.gripper is not None and sim.grasped(obj, arm.name):
            return arm.name
    return None


def in_bowl(sim: Simulation, obj: str) -> bool:
    """Cube centre within the bowl's wall ring (in the bowl's own x-y) and below the rim."""
    s = sim.scene
    T_bowl = sim.object_pose(BOWL)
    p = np.linalg.inv(T_bowl) @ np.append(sim.object_pose(obj)[:3, 3], 1.0)
    inside = float(np.hypot(p[0], p[1])) < s.bowl_radius - s.cube_size / 4
    return inside and 0.0 < float(p[2]) < s.bowl_wall_height + s.cube_size / 2


def progress(sim: Simulation, task: Task) -> str:
    """The stage (of STAGES) the task's cubes are at now, the least advanced one counting: a TCP
    within REACH of it, both pads of a gripper on it, lifted while held. Success is checked apart:
    a placed cube is released, so it falls back to "reached" here."""
    tcps = [sim.tcp_pose(a.name, frame="world")[:3, 3] for a in sim.robot.arms]

    def stage(obj: str) -> str:
        if holder(sim, obj) is not None:
            return "lifted" if lifted(sim, obj) else "grasped"
        centre = sim.object_pose(obj)[:3, 3]
        return "reached" if min(float(np.linalg.norm(t - centre)) for t in tcps) <= REACH else "not_reached"

    return min((stage(obj) for obj in task.objects), key=STAGES.index)


def check_success(sim: Simulation, task: Task) -> bool:
    """Whether the task is done in the simulation's current state."""
    if task.kind == "pick":
        obj = task.objects[0]
        return lifted(sim, obj) and holder(sim, obj) is not None
    if task.kind == "place":
        obj = task.objects[0]
        return in_bowl(sim, obj) and holder(sim, obj) is None
    holders = [holder(sim, obj) for obj in task.objects]
    return all(lifted(sim, obj) for obj in task.objects) and None not in holders and len(set(holders)) == len(holders)
