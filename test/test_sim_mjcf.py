"""The MJCF scene is built from the robot config: it compiles, and its joints, actuators, cameras and
TCP sites say what the config says."""

from __future__ import annotations

import math

import numpy as np
import pytest

from ros2_vla.config import available_robots, load_robot_config
from ros2_vla.errors import ConfigError
from ros2_vla.sim.backend import mujoco
from ros2_vla.sim.mjcf import build_scene_xml, finger_joint_names
from ros2_vla.sim.scene import SceneSpec, base_transform, camera_rotation, gripper_frame

ROBOTS = available_robots()


@pytest.fixture(scope="module", params=ROBOTS)
def robot_model(request):
    robot = load_robot_config(request.param)
    return robot, mujoco.MjModel.from_xml_string(build_scene_xml(robot))


def test_every_robot_config_is_simulated():
    assert {"franka", "widowx", "aloha"} <= set(ROBOTS)


def test_panda_variant_compiles():
    robot = load_robot_config("franka", variant="panda")
    model = mujoco.MjModel.from_xml_string(build_scene_xml(robot))
    assert model.joint("panda_joint1").id >= 0


def test_arm_joints_match_config_names_axes_and_ranges(robot_model):
    robot, model = robot_model
    for arm in robot.arms:
        for j in arm.chain.joints:
            mj = model.joint(j.name)
            assert model.jnt_type[mj.id] == mujoco.mjtJoint.mjJNT_HINGE
            np.testing.assert_allclose(model.jnt_range[mj.id], [j.lower, j.upper])
            np.testing.assert_allclose(model.jnt_axis[mj.id], np.asarray(j.axis) / np.linalg.norm(j.axis))
            assert model.body(mj.bodyid[0]).name == j.link


def test_each_arm_joint_has_a_position_servo_within_its_limits(robot_model):
    robot, model = robot_model
    for arm in robot.arms:
        for j in arm.chain.joints:
            act = model.actuator(j.name)
            assert model.actuator_trnid[act.id, 0] == model.joint(j.name).id
            np.testing.assert_allclose(model.actuator_ctrlrange[act.id], [j.lower, j.upper])
            kp, kv = model.actuator_gainprm[act.id, 0], -model.actuator_biasprm[act.id, 2]
            assert kp > 0 and kv > 0
            assert model.actuator_biasprm[act.id, 1] == pytest.approx(-kp)


def test_gripper_pads_slide_over_the_scene_travel(robot_model):
    robot, model = robot_model
    travel = SceneSpec().finger_travel
    for arm in robot.arms:
        for name in finger_joint_names(arm):
            j = model.joint(name)
            assert model.jnt_type[j.id] == mujoco.mjtJoint.mjJNT_SLIDE
            np.testing.assert_allclose(model.jnt_range[j.id], [0.0, travel])
            assert model.actuator(name).id >= 0


def test_cameras_are_mounted_as_configured(robot_model):
    robot, model = robot_model
    for cam in robot.cameras:
        mj = model.camera(cam.name)
        assert model.cam_fovy[mj.id] == pytest.approx(cam.fovy)
        mount = model.body(model.cam_bodyid[mj.id]).name
        assert mount == cam.mount  # MuJoCo calls its world body "world" too
        np.testing.assert_allclose(model.cam_pos[mj.id], cam.xyz, atol=1e-9)
        R = np.empty(9)
        mujoco.mju_quat2Mat(R, model.cam_quat[mj.id])
        np.testing.assert_allclose(R.reshape(3, 3), camera_rotation(cam.rpy), atol=1e-7)


def test_tcp_site_matches_the_kinematics_model(robot_model):
    from ros2_vla.kinematics.model import ArmModel

    robot, model = robot_model
    data = mujoco.MjData(model)
    rng = np.random.default_rng(0)
    for arm in robot.arms:
        arm_model = ArmModel.from_arm(arm)
        T_wb = base_transform(arm)
        for _ in range(20):
            q = rng.uniform(arm_model.lower, arm_model.upper)
            for name, v in zip(arm.chain.joint_names, q):
                data.qpos[model.joint(name).qposadr[0]] = v
            mujoco.mj_kinematics(model, data)
            site = model.site(arm.chain.ee_link).id
            T_expected = T_wb @ arm_model.fk(q)
            assert np.linalg.norm(data.site_xpos[site] - T_expected[:3, 3]) < 1e-3
            R = data.site_xmat[site].reshape(3, 3)
            assert math.acos(np.clip((np.trace(R.T @ T_expected[:3, :3]) - 1) / 2, -1, 1)) < 1e-3


def test_franka_tcp_at_home_is_the_known_ready_pose():
    """franka_description's ready pose puts the hand TCP 0.307 m ahead, 0.487 m up, pointing down."""
    robot = load_robot_config("franka")
    model = mujoco.MjModel.from_xml_string(build_scene_xml(robot))
    data = mujoco.MjData(model)
    for name, v in zip(robot.arms[0].chain.joint_names, robot.arms[0].chain.home):
        data.qpos[model.joint(name).qposadr[0]] = v
    mujoco.mj_kinematics(model, data)
    site = model.site("fr3_hand_tcp").id
    np.testing.assert_allclose(data.site_xpos[site], [0.3069, 0.0, 0.4869], atol=1e-3)
    np.testing.assert_allclose(data.site_xmat[site].reshape(3, 3)[:, 2], [0, 0, -1], atol=1e-6)


def test_gripper_frame_points_away_from_the_wrist():
    franka, widowx = load_robot_config("franka"), load_robot_config("widowx")
    np.testing.assert_allclose(gripper_frame(franka.arms[0].chain)[:, 2], [0, 0, 1])
    np.testing.assert_allclose(gripper_frame(widowx.arms[0].chain)[:, 2], [1, 0, 0])
    for robot in (franka, widowx):
        R = gripper_frame(robot.arms[0].chain)
        np.testing.assert_allclose(R @ R.T, np.eye(3), atol=1e-12)
        assert np.linalg.det(R) == pytest.approx(1.0)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"cube_colors": ("red", "purple")},
        {"cube_colors": ("red", "red")},
        {"cube_colors": ()},
        {"finger_travel": 0.015},
        {"timestep": 0.0},
        {"spawn_fraction": 1.5},
    ],
)
def test_bad_scene_specs_are_refused(kwargs):
    with pytest.raises(ConfigError):
        SceneSpec(**kwargs)


def test_scene_holds_one_cube_per_color_and_a_bowl():
    robot = load_robot_config("franka")
    scene = SceneSpec(cube_colors=("yellow", "blue"))
    model = mujoco.MjModel.from_xml_string(build_scene_xml(robot, scene))
    assert [model.body(n).id >= 0 for n in scene.object_names] == [True] * 3
    with pytest.raises(KeyError):
        model.body("red_cube")
    assert model.opt.timestep == pytest.approx(scene.timestep)
