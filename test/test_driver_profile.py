"""Driver profiles (config/<robot>.yaml `drivers:`): loading, checks, and the joint state mapping both ways."""

from __future__ import annotations

import textwrap

import numpy as np
import pytest
import yaml

from ros2_vla.config import load_robot_config
from ros2_vla.driver_profile import (
    GripperDirection,
    JointStateMerge,
    available_drivers,
    bridge_joint_state,
    driver_joint_state,
    load_driver_profile,
)
from ros2_vla.errors import ConfigError

PROFILES = {
    "franka": ["forward_position", "franka_ros2"],
    "widowx": ["ros2_control_action", "xs_sdk"],
    "aloha": ["aloha"],
}


def test_every_robot_lists_its_drivers():
    for robot, names in PROFILES.items():
        assert available_drivers(load_robot_config(robot)) == names


@pytest.mark.parametrize("robot,driver", [(r, d) for r, ds in PROFILES.items() for d in ["", *ds]])
def test_driver_state_read_back_is_the_bridge_state(robot, driver):
    """What the sim publishes as the driver (per topic, its names and units) reads back, through the
    bridge's mapping, as the full state in the bridge's names: every joint once, same values."""
    cfg = load_robot_config(robot)
    profile = load_driver_profile(cfg, driver)
    rng = np.random.default_rng(0)
    names = [n for a in cfg.arms for n in (*a.chain.joint_names, *([a.gripper.joint] if a.gripper else []))]
    positions = []
    for a in cfg.arms:
        positions += [rng.uniform(j.lower, j.upper) for j in a.chain.joints]
        if a.gripper:
            positions.append(rng.uniform(a.gripper.closed_position, a.gripper.open_position))
    seen: dict[str, float] = {}
    for source in profile.joint_states:
        n, p, v = driver_joint_state(cfg, profile, source, names, positions, [0.0] * len(names))
        assert len(n) == len(set(n)) == len(p) == len(v) > 0
        back_n, back_p = bridge_joint_state(cfg, profile, source, n, p)
        for name, value in zip(back_n, back_p):
            assert name not in seen, f"{name} arrives on two topics"
            seen[name] = value
    assert seen.keys() == set(names)
    np.testing.assert_allclose([seen[n] for n in names], positions, atol=1e-12)


def test_franka_ros2_splits_arm_and_hand_and_grasps_by_width():
    cfg = load_robot_config("franka")
    p = load_driver_profile(cfg, "franka_ros2")
    assert [s.topic for s in p.joint_states] == ["/franka/joint_states", "/franka_gripper/joint_states"]
    arm = p.arm("arm")
    assert (arm.command.interface, arm.command.name) == (
        "follow_joint_trajectory",
        "/fr3_arm_controller/follow_joint_trajectory",
    )
    g, spec = arm.gripper, cfg.arms[0].gripper
    assert (g.interface, g.name) == ("franka_gripper", "/franka_gripper")
    # the width between the fingers is twice the finger joint
    assert g.units.to_driver(spec, spec.open_position) == pytest.approx(0.08)
    assert g.units.to_driver(spec, 0.01) == pytest.approx(0.02)
    assert not g.state_in_driver_units  # the fingers' joint states are per finger, as the bridge's


def test_aloha_profile_renames_and_converts_the_gripper():
    """ALOHA's xs_sdk followers publish `waist` ... and `gripper` in motor radians; the bridge sees
    `left_waist` ... and `left_gripper` in its own units, the motor's open and closed at its open and closed."""
    cfg = load_robot_config("aloha")
    p = load_driver_profile(cfg, "aloha")
    left = next(s for s in p.joint_states if s.topic == "/follower_left/joint_states")
    spec = cfg.arms[0].gripper
    names, positions = bridge_joint_state(cfg, p, left, ["waist", "gripper", "left_finger"], [0.1, 1.6214, 0.05])
    assert names == ["left_waist", "left_gripper", "left_left_finger"]
    assert positions[1] == pytest.approx(spec.open_position)
    _, positions = bridge_joint_state(cfg, p, left, ["gripper"], [0.6197])
    assert positions[0] == pytest.approx(spec.closed_position)


def test_unknown_driver_gets_the_known_ones_and_a_suggestion():
    cfg = load_robot_config("franka")
    with pytest.raises(ConfigError, match=r"no driver profile 'franka_ros'.*franka_ros2.*Did you mean 'franka_ros2'"):
        load_driver_profile(cfg, "franka_ros")


def _config_with_driver(tmp_path, driver: str) -> object:
    raw = yaml.safe_load(load_robot_config("widowx").source.read_text())
    raw["drivers"] = {"bad": yaml.safe_load(textwrap.dedent(driver))}
    path = tmp_path / "widowx.yaml"
    path.write_text(yaml.safe_dump(raw))
    return load_robot_config(path)


@pytest.mark.parametrize(
    "driver,error",
    [
        (
            """
            joint_states: [{topic: /js}]
            arms: {arm: {command: {interface: joint_group, name: /c, group: arm}, gripper: {interface: in_trajectory}}}
            """,
            "joint_group command carries no gripper",
        ),
        (
            """
            joint_states: [{topic: /js, parts: [arm]}]
            arms: {arm: {command: {interface: joint_trajectory, name: /c},
                         gripper: {interface: joint_trajectory, name: /g}}}
            """,
            r"no joint state topic carries \[\('arm', 'gripper'\)\]",
        ),
        (
            """
            joint_states: [{topic: /js}]
            arms: {arm: {command: {interface: forward_position, name: /c}, gripper: {interface: in_trajectory}}}
            """,
            "the gripper is planned apart",
        ),
        (
            """
            joint_states: [{topic: /js}]
            arms: {arm: {command: {interface: teleport, name: /c}}}
            """,
            "arm interface 'teleport'",
        ),
        (
            """
            joint_states: [{topic: /js}]
            arms: {arm: {command: {interface: joint_trajectory, name: /c}}}
            """,
            "give a gripper interface exactly when the arm has a gripper",
        ),
        (
            """
            joint_states: [{topic: /js}]
            arms: {arm: {command: {interface: joint_trajectory, name: /c},
                         gripper: {interface: joint_single, name: /s, joint: gripper, state_in_driver_units: true}}}
            """,
            "state_in_driver_units needs `units`",
        ),
    ],
)
def test_malformed_profiles_are_refused_with_the_reason(tmp_path, driver, error):
    cfg = _config_with_driver(tmp_path, driver)
    with pytest.raises(ConfigError, match=error):
        load_driver_profile(cfg, "bad")


def test_merge_waits_for_every_joint_and_keeps_the_oldest_stamp():
    merge = JointStateMerge(["a", "b", "g"])
    assert merge.update(1.0, ["a", "b", "other"], [0.1, 0.2, 9.0]) is None  # no gripper yet
    stamp, names, positions = merge.update(1.5, ["g"], [0.04])
    assert (stamp, names, positions) == (1.0, ["a", "b", "g"], [0.1, 0.2, 0.04])
    stamp, _, positions = merge.update(2.0, ["a", "b"], [0.3, 0.4])
    assert stamp == 1.5 and positions == [0.3, 0.4, 0.04]  # the gripper's state is the oldest part


def test_gripper_direction_changes_only_when_the_target_crosses_the_middle():
    spec = load_robot_config("franka").arms[0].gripper  # open 0.04, closed 0.0
    d = GripperDirection(spec)
    assert d.change(0.04) is True  # the first target always counts
    assert d.change(0.03) is None  # still the open half: a hold or a re-plan sends nothing
    assert d.change(0.0) is False
    assert d.change(0.015) is None
    assert d.change(0.025) is True
