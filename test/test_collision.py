"""The bridge's collision check (no ROS): the geometry's distances against closed-form ones, and plans that
head into the table, the base or the arm itself stop before contact with the status that names the pair,
while plans that stay clear or back away are left alone."""

from __future__ import annotations

import functools
from dataclasses import replace

import coal
import numpy as np
import pytest

from ros2_vla.actions.chunk import Chunk
from ros2_vla.bridge.bridge import MAX_STRETCH_RATIO, Bridge, gradual_stretch
from ros2_vla.bridge.clearance import speed_factor
from ros2_vla.bridge.planner import ChunkPlanner
from ros2_vla.bridge.status import BridgeCode
from ros2_vla.collision_config import parse_box, parse_boxes
from ros2_vla.config import RobotConfig, available_robots, load_robot_config
from ros2_vla.errors import ConfigError
from ros2_vla.kinematics.collision import ArmCollisionModel, ArmPairCollision, segment_distances
from ros2_vla.kinematics.model import ArmModel

EE = ("x", "y", "z", "roll", "pitch", "yaw", "gripper")
# Joint targets reached in a straight joint line from home (found by sampling within the limits): the FR3's
# hand folds back into its base column; the WidowX's elbow folds the forearm onto the upper arm.
HAND_INTO_BASE = [2.24, -0.72, 1.61, -3.0, 0.46, 1.6, 1.83]
FOREARM_INTO_UPPER_ARM = [-2.57, -1.07, 1.57, 1.42, 1.63, -2.83]


@functools.cache
def _robot(name: str) -> RobotConfig:
    return load_robot_config(name)


@functools.cache
def _collider(name: str, arm_index: int = 0) -> tuple[ArmModel, ArmCollisionModel]:
    robot = _robot(name)
    arm = robot.arms[arm_index]
    model = ArmModel.from_arm(arm)
    return model, ArmCollisionModel(model, arm, robot.collision)


def _segment_distance(p0, p1, q0, q1, samples: int = 2001) -> float:
    """Closest distance between two segments, by dense sampling of one and projection onto the other."""
    s = np.linspace(0.0, 1.0, samples)[:, None]
    points = p0 + s * (p1 - p0)
    d = q1 - q0
    t = np.clip(((points - q0) @ d) / (d @ d), 0.0, 1.0)[:, None]
    return float(np.min(np.linalg.norm(points - (q0 + t * d), axis=1)))


def _capsule_world(model: ArmModel, robot: RobotConfig, q, link: str, index: int = 0):
    shape = [c for c in robot.collision.arms[robot.arms[0].name].shapes if c.link == link][index]
    T = model.frame_pose(q, link)
    a, b = ((T @ np.append(p, 1.0))[:3] for p in (shape.a, shape.b))
    return a, b, shape.radius


def make_chunk(robot: RobotConfig, values, names=EE, space="ee_delta", stamp=0.0, dt=None) -> Chunk:
    values = np.asarray(values, dtype=np.float64)
    return Chunk(
        stamp=stamp,
        embodiment=robot.name,
        action_space=space,
        dimension_names=tuple(names),
        dt=dt or robot.action.dt,
        horizon=values.shape[0],
        values=values.reshape(-1).astype(np.float32),
        sequence=1,
    )


def joint_line(robot: RobotConfig, target, steps: int = 20) -> tuple[np.ndarray, tuple[str, ...]]:
    arm = robot.arms[0]
    home = np.asarray(arm.chain.home)
    q = np.array([home + (np.asarray(target) - home) * t for t in np.linspace(0, 1, steps + 1)[1:]])
    return q, arm.chain.joint_names


@pytest.mark.parametrize("name", available_robots())
def test_every_robot_has_a_collision_model_clear_of_everything_at_home(name):
    robot = _robot(name)
    assert robot.collision is not None
    for i, arm in enumerate(robot.arms):
        model, collider = _collider(name, i)
        own, scene = collider.clearances(model.home)
        assert own.distance > robot.collision.self_proximity, own
        assert scene.distance > robot.collision.scene_proximity, scene
        assert len(collider.self_pairs) > 10 and len(collider.scene_pairs) > 3


def test_distances_match_closed_form_geometry():
    """Capsule to capsule against sampled segments, and a capsule to the table top against its height, on a
    model holding only those shapes."""
    robot = _robot("franka")
    spec = robot.collision
    shapes = spec.arms["arm"].shapes
    fingers = [c for c in shapes if c.link == "fr3_hand_tcp"][1]
    upper_arm = next(c for c in shapes if c.link == "fr3_link2")
    two = replace(spec, arms={"arm": replace(spec.arms["arm"], shapes=(upper_arm, fingers))})
    model = ArmModel.from_arm(robot.arms[0])
    collider = ArmCollisionModel(model, robot.arms[0], two)
    rng = np.random.default_rng(3)
    for _ in range(20):
        q = rng.uniform(model.lower, model.upper)
        own, scene = collider.clearances(q)
        a0, a1, ra = _capsule_world(model, robot, q, "fr3_hand_tcp", 1)
        b0, b1, rb = _capsule_world(model, robot, q, "fr3_link2")
        assert own.distance == pytest.approx(_segment_distance(a0, a1, b0, b1) - ra - rb, abs=2e-4)
        assert {own.first, own.second} == {"fr3_link2", "fr3_hand_tcp"}
        lowest = min(a0[2], a1[2]) - ra, min(b0[2], b1[2]) - rb  # the table top is z = 0
        assert scene.distance == pytest.approx(min(lowest), abs=1e-6)


def test_the_speed_factor_is_moveit_servos_and_never_slows_a_retreat():
    assert speed_factor(0.05, 0.06, 0.01) == 1.0  # outside the threshold
    assert speed_factor(0.01, 0.02, 0.01) == pytest.approx(1.0)
    assert speed_factor(0.0, 0.001, 0.01) == pytest.approx(0.001)
    assert speed_factor(0.005, 0.006, 0.01) == pytest.approx(np.exp(-np.log(1000) * 0.5))
    assert speed_factor(0.004, 0.003, 0.01) == 1.0  # moving away


def test_a_descent_into_the_table_stops_before_contact_and_names_the_pair():
    robot = _robot("franka")
    planner = ChunkPlanner(robot, collision=robot.collision)
    model, collider = _collider("franka")
    # Home holds the TCP about 0.49 m up: 12 steps of -5 cm run it into the table (the workspace box keeps the
    # TCP itself at z >= 0, not the fingers below it).
    plan = planner.plan(make_chunk(robot, [[0, 0, -0.05, 0, 0, 0, 1]] * 12), {"arm": model.home})
    assert plan.code == BridgeCode.HALT_FOR_COLLISION, plan.message
    assert "fr3_hand_tcp" in plan.message and "table" in plan.message
    assert 0 < plan.steps < 12
    for q in plan.arms[0].positions:
        assert collider.clearances(q)[1].distance >= robot.collision.halt_distance
    # The step after the last kept one is the one that would have come too near.
    unchecked = ChunkPlanner(robot, collision=None).plan(
        make_chunk(robot, [[0, 0, -0.05, 0, 0, 0, 1]] * 12), {"arm": model.home}
    )
    assert unchecked.steps == 12
    assert collider.clearances(unchecked.arms[0].positions[plan.steps])[1].distance < robot.collision.halt_distance


def test_nearing_the_table_slows_the_plan_and_backing_away_does_not():
    robot = _robot("franka")
    planner = ChunkPlanner(robot, collision=robot.collision)
    model, collider = _collider("franka")
    # The TCP's height at which the finger capsule sits `gap` above the table, gripper down, from home.
    T = model.fk(model.home)
    a, b, r = _capsule_world(model, robot, model.home, "fr3_hand_tcp", 1)
    finger_drop = T[2, 3] - (min(a[2], b[2]) - r)
    gap = 0.5 * (robot.collision.scene_proximity + robot.collision.halt_distance)
    down = T[2, 3] - (finger_drop + gap)
    steps = int(np.ceil(down / 0.05))
    values = [[0, 0, -down / steps, 0, 0, 0, 1]] * steps
    plan = planner.plan(make_chunk(robot, values), {"arm": model.home})
    assert plan.code == BridgeCode.DECELERATE_FOR_COLLISION, plan.message
    assert plan.steps == steps
    # Only the last step, the one within the threshold, is slowed: the descent before it runs at full speed.
    assert plan.step_scales[-1] == pytest.approx(speed_factor(gap, 1.0, robot.collision.scene_proximity), rel=0.05)
    assert np.all(plan.step_scales[:-1] == 1.0)
    assert plan.slowest == plan.step_scales[-1] and plan.speed_scale == 1.0
    # From that low pose, going up is neither slowed nor stopped.
    low = plan.arms[0].positions[-1]
    up = planner.plan(make_chunk(robot, [[0, 0, 0.02, 0, 0, 0, 1]] * 5), {"arm": low})
    assert up.code == BridgeCode.OK and up.slowest == 1.0 and up.steps == 5


@pytest.mark.parametrize(
    "name,target,pair",
    [
        ("franka", HAND_INTO_BASE, {"fr3_hand_tcp", "fr3_link0"}),
        ("widowx", FOREARM_INTO_UPPER_ARM, {"upper_arm_link", "lower_forearm_link"}),
    ],
)
def test_a_joint_chunk_folding_the_arm_into_itself_stops_before_contact(name, target, pair):
    robot = _robot(name)
    model, collider = _collider(name)
    q, names = joint_line(robot, target)
    chunk = make_chunk(robot, q, names, space="joint_position")
    plan = ChunkPlanner(robot, collision=robot.collision).plan(chunk, {"arm": model.home})
    assert plan.code == BridgeCode.HALT_FOR_COLLISION, plan.message
    assert all(link in plan.message for link in pair), plan.message
    assert 0 < plan.steps < len(q)
    for step in plan.arms[0].positions:
        assert collider.clearances(step)[0].distance >= robot.collision.halt_distance
    own, _ = collider.clearances(np.asarray(target))
    assert own.distance < 0 and {own.first, own.second} == pair  # the target itself is in collision
    unchecked = ChunkPlanner(robot, collision=None).plan(chunk, {"arm": model.home})
    assert unchecked.steps == len(q) and unchecked.code != BridgeCode.HALT_FOR_COLLISION


# Both ALOHA arms at this pose (a straight joint line from home, clear of themselves and the table on the
# way) reach across the table centre: their grippers overlap by 27 mm.
ALOHA_MEET = [0.0, -0.2, 0.0, 0.0, 0.0, 0.0]


def both_arms(robot: RobotConfig, target) -> np.ndarray:
    """Both of ALOHA's arms on the joint line from home to `target` (20 steps), grippers open: (20, 14)."""
    line, _ = joint_line(robot, target)
    opened = np.full((len(line), 1), robot.arms[0].gripper.open_position)
    return np.hstack([line, opened, line, opened])


def test_segment_distances_are_coals():
    rng = np.random.default_rng(7)
    p0, p1, q0, q1 = rng.normal(size=(4, 400, 3))
    p1[::10] = p0[::10]  # points
    q1[::15] = q0[::15]
    q1[::7] = q0[::7] + (p1[::7] - p0[::7]) * 0.5  # parallel
    ours = segment_distances(p0, p1, q0, q1)
    for k in range(400):
        shapes = [_coal_capsule(a, b) for a, b in ((p0[k], p1[k]), (q0[k], q1[k]))]
        d = coal.distance(*shapes[0], *shapes[1], coal.DistanceRequest(), coal.DistanceResult())
        assert abs(ours[k] - (d + 2e-9)) < 1e-9


def _coal_capsule(a, b, radius: float = 1e-9):
    length = float(np.linalg.norm(b - a))
    if length < 1e-12:
        return coal.Sphere(radius), coal.Transform3s(np.eye(3), a)
    z = (b - a) / length
    x = np.cross([1.0, 0.0, 0.0] if abs(z[0]) < 0.9 else [0.0, 1.0, 0.0], z)
    x /= np.linalg.norm(x)
    return coal.Capsule(radius, length), coal.Transform3s(np.column_stack([x, np.cross(z, x), z]), (a + b) / 2)


def test_alohas_arms_reaching_into_each_other_stop_before_contact():
    robot = _robot("aloha")
    (_, left), (_, right) = _collider("aloha", 0), _collider("aloha", 1)
    pair = ArmPairCollision(("left", left), ("right", right))
    home = np.asarray(robot.arms[0].chain.home)
    assert pair.clearance(home, home).distance > 0.3
    meet = pair.clearance(np.asarray(ALOHA_MEET), np.asarray(ALOHA_MEET))
    assert meet.distance < 0 and {meet.first, meet.second} == {
        "left/left_ee_gripper_link",
        "right/right_ee_gripper_link",
    }
    values = both_arms(robot, ALOHA_MEET)
    line = values[:, :6]
    for q in line:  # each arm alone is clear of itself and the table all the way
        assert min(c.distance for c in left.clearances(q)) > robot.collision.self_proximity
    chunk = make_chunk(robot, values, robot.action.dimension_names, "joint_position")
    start = {arm.name: home for arm in robot.arms}
    plan = ChunkPlanner(robot, collision=robot.collision).plan(chunk, start)
    assert plan.code == BridgeCode.HALT_FOR_COLLISION, plan.message
    assert "left/left_ee_gripper_link" in plan.message and "right/right_ee_gripper_link" in plan.message, plan.message
    assert 0 < plan.steps < len(line)
    steps = {wp.arm: wp.positions for wp in plan.arms}
    for q_left, q_right in zip(steps["left"], steps["right"]):
        assert pair.clearance(q_left, q_right).distance >= robot.collision.halt_distance
    # One arm reaching alone meets nothing: the other stands at home.
    alone = values.copy()
    alone[:, 7:13] = home
    alone = make_chunk(robot, alone, robot.action.dimension_names, "joint_position")
    assert ChunkPlanner(robot, collision=robot.collision).plan(alone, start).steps == len(line)


def test_the_bridge_checks_by_default_takes_more_boxes_and_can_be_told_not_to():
    robot = _robot("franka")
    assert Bridge(robot).planner.collision is not None
    assert Bridge(robot, check_collisions=False).planner.collision is None
    # A shelf 10 cm under the TCP at home: a descent stops above it, not at the table.
    T = ArmModel.from_arm(robot.arms[0]).fk(np.asarray(robot.arms[0].chain.home))
    x, y, z = T[:3, 3]
    bridge = Bridge(robot, check_collisions=True, scene_boxes=[parse_box(f"shelf {x} {y} {z - 0.1} 0.3 0.3 0.02")])
    plan = bridge.planner.plan(
        make_chunk(robot, [[0, 0, -0.02, 0, 0, 0, 1]] * 10), {"arm": np.asarray(robot.arms[0].chain.home)}
    )
    assert plan.code == BridgeCode.HALT_FOR_COLLISION and "shelf" in plan.message, plan.message
    assert plan.steps <= 4


@pytest.mark.parametrize("text", ["shelf 1 2 3", "shelf a 0 0 1 1 1", "shelf 0 0 0 1 1 -1", "shelf 0 0 nan 1 1 1"])
def test_a_malformed_collision_box_is_refused_with_the_format(text):
    with pytest.raises(ConfigError):
        parse_box(text)


def test_collision_boxes_split_on_semicolons_and_names_stay_unique():
    boxes = parse_boxes("a 0 0 0 1 1 1; b 1 1 1 0.5 0.5 0.5;")
    assert [b.name for b in boxes] == ["a", "b"]
    assert parse_boxes("") == ()
    with pytest.raises(ConfigError, match="twice"):
        _robot("franka").collision.with_boxes(parse_boxes("table 0 0 0 1 1 1"))


def test_steps_slowed_for_a_collision_are_reached_gradually():
    stretch = gradual_stretch(np.array([1.0, 1.0, 1.0, 1.0, 64.0]))
    assert stretch[-1] == 64.0 and np.all(stretch >= 1.0)
    assert np.all(stretch[1:] <= MAX_STRETCH_RATIO * stretch[:-1] + 1e-12)
    np.testing.assert_array_equal(gradual_stretch(np.ones(4)), np.ones(4))


@pytest.mark.parametrize("name,target", [("franka", HAND_INTO_BASE), ("widowx", FOREARM_INTO_UPPER_ARM)])
def test_a_halted_plan_ends_at_its_last_step_without_overshooting_it(name, target):
    """The bridge's timed plan, sampled finely, stays between its waypoints joint by joint: a slowed step
    next to fast ones does not make the cubic run past the halt (toward the collision)."""
    robot = _robot(name)
    arm = robot.arms[0]
    bridge = Bridge(robot, check_collisions=True)
    names = list(arm.chain.joint_names)
    bridge.update_joint_state(names, list(arm.chain.home), 0.0)
    bridge.set_enabled(True, 0.0)
    q, _ = joint_line(robot, target)
    assert (
        bridge.on_chunk(make_chunk(robot, q, names, space="joint_position"), 0.0).code == BridgeCode.HALT_FOR_COLLISION
    )
    plan = bridge.blenders[arm.name].plan
    t = np.linspace(0.0, plan.end_time + 1.0, 4000)
    path = np.array([plan.sample(x)[0] for x in t])
    knots = np.vstack([np.asarray(arm.chain.home)[None, :], plan.positions])
    for j in range(len(names)):
        lo, hi = knots[:, j].min(), knots[:, j].max()
        assert path[:, j].min() >= lo - 1e-3 and path[:, j].max() <= hi + 1e-3, names[j]
    np.testing.assert_allclose(path[-1], plan.positions[-1], atol=1e-9)
