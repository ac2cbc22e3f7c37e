"""Robot configs: each shipped YAML loads with the facts the design names, variants swap chains,
and broken files fail with ConfigError."""

from __future__ import annotations

import copy
import math
from pathlib import Path

import pytest
import yaml

from ros2_vla.config import available_robots, config_dir, load_robot_config
from ros2_vla.errors import ConfigError

ROBOTS = ["franka", "widowx", "aloha"]
INTERBOTIX_JOINTS = ["waist", "shoulder", "elbow", "forearm_roll", "wrist_angle", "wrist_rotate"]


def _raw(robot: str) -> dict:
    return yaml.safe_load((config_dir() / f"{robot}.yaml").read_text())


def _write(tmp_path: Path, raw: dict) -> Path:
    path = tmp_path / "robot.yaml"
    path.write_text(yaml.safe_dump(raw))
    return path


@pytest.mark.parametrize("robot", ROBOTS)
def test_each_robot_loads_with_consistent_facts(robot):
    cfg = load_robot_config(robot)
    assert cfg.name == robot and robot in available_robots()
    assert len(set(cfg.joint_names)) == len(cfg.joint_names)
    links = {link for arm in cfg.arms for link in arm.chain.link_names}
    for cam in cfg.cameras:
        assert cam.mount == "world" or cam.mount in links
        assert (cam.width, cam.height, cam.rate_hz) == (224, 224, 10.0)
    for lo, hi in zip(cfg.safety.workspace_min, cfg.safety.workspace_max):
        assert lo < hi


def test_widowx_matches_bridgedata_setup():
    cfg = load_robot_config("widowx")
    (arm,) = cfg.arms
    assert list(cfg.joint_names) == INTERBOTIX_JOINTS
    assert arm.trajectory_topic == "/wx250s/arm_controller/joint_trajectory"
    assert arm.gripper.mode == "separate" and arm.gripper.topic.startswith("/wx250s/")
    assert arm.gripper.open_position > arm.gripper.closed_position and not arm.gripper.invert
    assert cfg.action.space == "ee_delta" and cfg.action.frame == "base" and cfg.action.dt == pytest.approx(0.2)
    assert list(cfg.action.dimension_names) == ["x", "y", "z", "roll", "pitch", "yaw", "gripper"]
    assert [c.name for c in cfg.cameras] == ["scene", "wrist"]


def test_aloha_arms_are_prefixed_and_face_each_other():
    cfg = load_robot_config("aloha")
    left, right = cfg.arms
    assert (left.name, right.name) == ("left", "right")
    assert list(cfg.joint_names) == [f"{s}_{j}" for s in ("left", "right") for j in INTERBOTIX_JOINTS]
    assert left.chain.base_link == "left_base_link" and right.chain.ee_link == "right_ee_gripper_link"
    assert left.base_xyz[0] == pytest.approx(-right.base_xyz[0]) and abs(left.base_xyz[0]) == pytest.approx(0.469)
    assert abs(right.base_rpy[2] - left.base_rpy[2]) == pytest.approx(math.pi)
    assert (left.trajectory_topic, right.trajectory_topic) == (
        "/left_arm_controller/joint_trajectory",
        "/right_arm_controller/joint_trajectory",
    )
    assert (left.gripper.joint, right.gripper.joint) == ("left_gripper", "right_gripper")
    assert left.gripper.mode == right.gripper.mode == "in_trajectory"


def test_aloha_action_is_fourteen_joint_positions_at_50_hz():
    cfg = load_robot_config("aloha")
    expected = [n for arm in cfg.arms for n in (*arm.chain.joint_names, arm.gripper.joint)]
    assert list(cfg.action.dimension_names) == expected and len(expected) == 14
    assert cfg.action.space == "joint_position" and cfg.action.dt == pytest.approx(0.02)
    assert [c.name for c in cfg.cameras] == ["cam_high", "cam_low", "cam_left_wrist", "cam_right_wrist"]
    assert cfg.cameras[0].topic == "/camera/cam_high/image_raw"


def test_fr3_and_panda_share_kinematics_and_differ_in_limits():
    fr3 = load_robot_config("franka").arms[0].chain
    panda = load_robot_config("franka", variant="panda").arms[0].chain
    for a, b in zip(fr3.joints, panda.joints):
        assert (a.xyz, a.rpy, a.axis) == (b.xyz, b.rpy, b.axis)
    assert (fr3.ee_xyz, fr3.ee_rpy) == (panda.ee_xyz, panda.ee_rpy)
    assert [j.upper for j in fr3.joints] != [j.upper for j in panda.joints]


def test_variant_swaps_joint_names_and_moves_the_wrist_camera():
    cfg = load_robot_config("franka", variant="panda")
    assert cfg.joint_names == tuple(f"panda_joint{i}" for i in range(1, 8))
    assert {c.name: c.mount for c in cfg.cameras}["wrist"] == "panda_hand_tcp"


def test_unknown_variant_lists_the_chains():
    with pytest.raises(ConfigError, match="fr3, panda"):
        load_robot_config("franka", variant="fr4")


def test_unknown_robot_suggests_a_name():
    with pytest.raises(ConfigError, match="Did you mean 'widowx'"):
        load_robot_config("widowz")


def test_missing_file_raises(tmp_path):
    with pytest.raises(ConfigError, match="does not exist"):
        load_robot_config(tmp_path / "nothing.yaml")


def test_bad_yaml_raises(tmp_path):
    path = tmp_path / "robot.yaml"
    path.write_text("chains: [unclosed\n  - {a: 1")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_robot_config(path)


def test_home_outside_limits_raises(tmp_path):
    raw = _raw("widowx")
    raw["chains"]["wx250s"]["home"][1] = 3.0
    with pytest.raises(ConfigError, match="shoulder"):
        load_robot_config(_write(tmp_path, raw))


def test_missing_key_raises(tmp_path):
    raw = _raw("franka")
    del raw["arms"][0]["trajectory_topic"]
    with pytest.raises(ConfigError, match="trajectory_topic"):
        load_robot_config(_write(tmp_path, raw))


def test_zero_axis_raises(tmp_path):
    raw = _raw("widowx")
    raw["chains"]["wx250s"]["joints"][0]["axis"] = [0, 0, 0]
    with pytest.raises(ConfigError, match="waist"):
        load_robot_config(_write(tmp_path, raw))


def test_two_arms_with_the_same_joint_names_raise(tmp_path):
    raw = _raw("aloha")
    for arm in raw["arms"]:
        arm.pop("prefix")
    with pytest.raises(ConfigError, match="prefix"):
        load_robot_config(_write(tmp_path, raw))


def test_camera_on_an_unknown_link_raises(tmp_path):
    raw = _raw("widowx")
    raw["cameras"][1]["mount"] = "gripper_lnk"
    with pytest.raises(ConfigError, match="gripper_lnk"):
        load_robot_config(_write(tmp_path, raw))


def test_joint_without_link_gets_a_default_child_link(tmp_path):
    raw = copy.deepcopy(_raw("widowx"))
    for joint in raw["chains"]["wx250s"]["joints"]:
        joint.pop("link")
    raw["cameras"][1]["mount"] = "world"
    raw.pop("collision")  # its shapes name the links
    chain = load_robot_config(_write(tmp_path, raw)).arms[0].chain
    assert chain.link_names[1:3] == ("waist_link", "shoulder_link")
