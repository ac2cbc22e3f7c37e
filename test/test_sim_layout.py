"""Random object layouts at reset: inside the spawn boxes, apart, each arm with cubes of its own."""

from __future__ import annotations

import numpy as np
import pytest

from ros2_vla.config import load_robot_config
from ros2_vla.errors import ConfigError
from ros2_vla.sim.layout import object_footprint, random_layout
from ros2_vla.sim.scene import BOWL, SceneSpec, arm_spawn_box


@pytest.mark.parametrize("name", ["franka", "widowx", "aloha"])
def test_layouts_keep_objects_in_their_boxes_apart_and_near_one_arm(name):
    robot = load_robot_config(name)
    scene = SceneSpec()
    bases = np.array([a.base_xyz[:2] for a in robot.arms])
    boxes = [arm_spawn_box(robot, a, scene) for a in robot.arms]
    for seed in range(20):
        layout = random_layout(robot, scene, np.random.default_rng(seed))
        assert sorted(p.name for p in layout) == sorted(scene.object_names)
        owners = []
        for p in layout:
            k = int(np.argmin(np.linalg.norm(bases - p.xyz[:2], axis=1)))
            assert np.all(p.xyz[:2] >= boxes[k].lo) and np.all(p.xyz[:2] <= boxes[k].hi)
            owners.append(k)
            rest = scene.table_height if p.name == BOWL else scene.table_height + scene.cube_size / 2
            assert p.xyz[2] == pytest.approx(rest) and -np.pi <= p.yaw <= np.pi
        cube_owners = {k for p, k in zip(layout, owners) if p.name != BOWL}
        assert cube_owners == set(range(len(robot.arms)))  # two-arm robots: cubes on both sides
        for i, a in enumerate(layout):
            for b in layout[i + 1 :]:
                gap = (
                    np.linalg.norm(a.xyz[:2] - b.xyz[:2])
                    - object_footprint(a.name, scene)
                    - object_footprint(b.name, scene)
                )
                assert gap >= scene.clearance - 1e-12


def test_same_seed_same_layout():
    robot = load_robot_config("franka")
    a = random_layout(robot, SceneSpec(), np.random.default_rng(7))
    b = random_layout(robot, SceneSpec(), np.random.default_rng(7))
    assert all(np.array_equal(p.xyz, q.xyz) and p.yaw == q.yaw for p, q in zip(a, b))


def test_a_table_too_crowded_says_what_to_change():
    robot = load_robot_config("widowx")
    with pytest.raises(ConfigError, match="spawn_fraction"):
        random_layout(robot, SceneSpec(clearance=0.3), np.random.default_rng(0))
