"""ArmModel and chain_to_urdf against values known without this package: Franka's DH table,
Interbotix's published home matrices, and finite differences of the model's own FK."""

from __future__ import annotations

import time
import xml.etree.ElementTree as ET
from dataclasses import replace

import numpy as np
import pytest

from ros2_vla.config import load_robot_config
from ros2_vla.errors import KinematicsError
from ros2_vla.kinematics.model import ArmModel
from ros2_vla.kinematics.urdf import chain_to_urdf

# (robot, variant, arm index): every arm model the configs define
ARMS = [("franka", None, 0), ("franka", "panda", 0), ("widowx", None, 0), ("aloha", None, 0), ("aloha", None, 1)]


def _arm(robot: str, variant: str | None = None, index: int = 0):
    return load_robot_config(robot, variant=variant).arms[index]


@pytest.fixture(scope="module")
def models() -> dict:
    return {key: ArmModel.from_arm(_arm(*key)) for key in ARMS}


def _franka_dh_tcp(q: np.ndarray) -> np.ndarray:
    """T_base_tcp from Franka's published modified-DH table (Craig convention), the flange
    (d = 0.107) and the hand (-45 deg about z, TCP 0.1034 m out): independent of any URDF."""

    def craig(a: float, d: float, alpha: float, theta: float) -> np.ndarray:
        ca, sa, ct, st = np.cos(alpha), np.sin(alpha), np.cos(theta), np.sin(theta)
        return np.array(
            [[ct, -st, 0, a], [st * ca, ct * ca, -sa, -d * sa], [st * sa, ct * sa, ca, d * ca], [0, 0, 0, 1]]
        )

    table = [(0, 0.333, 0), (0, 0, -np.pi / 2), (0, 0.316, np.pi / 2), (0.0825, 0, np.pi / 2),
             (-0.0825, 0.384, -np.pi / 2), (0, 0, np.pi / 2), (0.088, 0, np.pi / 2)]  # fmt: skip
    T = np.eye(4)
    for (a, d, alpha), theta in zip(table, q):
        T = T @ craig(a, d, alpha, theta)
    return T @ craig(0, 0.107, 0, 0) @ craig(0, 0.1034, 0, -np.pi / 4)


def _random_q(model: ArmModel, rng: np.random.Generator) -> np.ndarray:
    margin = 0.05 * (model.upper - model.lower)
    return rng.uniform(model.lower + margin, model.upper - margin)


def test_franka_ready_pose_tcp_matches_libfranka(models):
    # At the "ready" pose libfranka reports O_T_EE at (0.3069, 0, 0.4869), the hand pointing down.
    T = models[("franka", None, 0)].fk(models[("franka", None, 0)].home)
    np.testing.assert_allclose(T[:3, 3], [0.3069, 0.0, 0.4869], atol=5e-4)
    np.testing.assert_allclose(T[:3, 2], [0.0, 0.0, -1.0], atol=1e-6)


@pytest.mark.parametrize("variant", [None, "panda"])
def test_franka_fk_matches_dh_table(models, variant):
    model = models[("franka", variant, 0)]
    rng = np.random.default_rng(7)
    for q in [model.home, *(_random_q(model, rng) for _ in range(20))]:
        np.testing.assert_allclose(model.fk(q), _franka_dh_tcp(q), atol=1e-9)


@pytest.mark.parametrize(
    ("robot", "index", "xyz"), [("widowx", 0, (0.458325, 0, 0.36065)), ("aloha", 0, (0.536494, 0, 0.42705))]
)
def test_interbotix_zero_pose_matches_published_home_matrix(models, robot, index, xyz):
    # interbotix mr_descriptions: M of the wx250s and vx300s, the TCP at q = 0, axes of the base
    T = models[(robot, None, index)].fk(np.zeros(6))
    np.testing.assert_allclose(T[:3, 3], xyz, atol=1e-9)
    np.testing.assert_allclose(T[:3, :3], np.eye(3), atol=1e-12)


def _numeric_jacobian(model: ArmModel, q: np.ndarray, h: float = 1e-6) -> np.ndarray:
    J = np.zeros((6, model.nq))
    for i in range(model.nq):
        dq = np.zeros(model.nq)
        dq[i] = h
        Tp, Tm = model.fk(q + dq), model.fk(q - dq)
        J[:3, i] = (Tp[:3, 3] - Tm[:3, 3]) / (2 * h)
        dR = Tp[:3, :3] @ Tm[:3, :3].T  # rotation over 2h, in base axes
        J[3:, i] = 0.5 * np.array([dR[2, 1] - dR[1, 2], dR[0, 2] - dR[2, 0], dR[1, 0] - dR[0, 1]]) / (2 * h)
    return J


@pytest.mark.parametrize("key", ARMS)
def test_jacobian_matches_finite_differences(models, key):
    model = models[key]
    rng = np.random.default_rng(3)
    for _ in range(10):
        q = _random_q(model, rng)
        J = model.jacobian(q)
        assert J.shape == (6, model.nq)
        np.testing.assert_allclose(J, _numeric_jacobian(model, q), atol=1e-6)


def test_fk_and_jacobian_equal_the_separate_calls(models):
    model = models[("widowx", None, 0)]
    q = _random_q(model, np.random.default_rng(1))
    T, J = model.fk_and_jacobian(q)
    np.testing.assert_array_equal(T, model.fk(q))
    np.testing.assert_array_equal(J, model.jacobian(q))


def test_results_are_not_overwritten_by_the_next_call(models):
    model = models[("franka", None, 0)]
    T_home, J_home = model.fk(model.home), model.jacobian(model.home)
    T_keep, J_keep = T_home.copy(), J_home.copy()
    model.fk_and_jacobian(np.zeros(7) + model.lower + 0.1)
    np.testing.assert_array_equal(T_home, T_keep)
    np.testing.assert_array_equal(J_home, J_keep)


def test_frame_pose_base_is_identity_and_tcp_is_fk(models):
    model = models[("aloha", None, 1)]
    q = _random_q(model, np.random.default_rng(2))
    np.testing.assert_array_equal(model.frame_pose(q, "right_base_link"), np.eye(4))
    np.testing.assert_array_equal(model.frame_pose(q, "right_ee_gripper_link"), model.fk(q))


def test_frame_pose_of_a_link_follows_its_joint(models):
    model = models[("franka", None, 0)]
    q = model.home.copy()
    q[0] = 0.5  # fr3_link1 turns about base z by joint 1 and sits 0.333 m up
    T = model.frame_pose(q, "fr3_link1")
    np.testing.assert_allclose(T[:3, 3], [0, 0, 0.333], atol=1e-12)
    np.testing.assert_allclose(T[:3, 0], [np.cos(0.5), np.sin(0.5), 0], atol=1e-12)


def test_frame_pose_unknown_link_names_the_links(models):
    with pytest.raises(KinematicsError, match="fr3_link3"):
        models[("franka", None, 0)].frame_pose(np.zeros(7), "no_such_link")


@pytest.mark.parametrize(
    "bad", [np.zeros(6), np.zeros((7, 1)), [0.0] * 6 + [np.nan], [0.0] * 6 + [np.inf], ["a"] * 7, None]
)
def test_bad_q_raises_kinematics_error(models, bad):
    with pytest.raises(KinematicsError):
        models[("franka", None, 0)].fk(bad)


def test_limits_come_from_the_chain_and_are_read_only(models):
    arm = _arm("widowx")
    model = models[("widowx", None, 0)]
    assert model.joint_names == arm.chain.joint_names and model.nq == 6
    np.testing.assert_array_equal(model.lower, [j.lower for j in arm.chain.joints])
    np.testing.assert_array_equal(model.upper, [j.upper for j in arm.chain.joints])
    np.testing.assert_array_equal(model.velocity_limits, [j.velocity for j in arm.chain.joints])
    np.testing.assert_array_equal(model.acceleration_limits, [j.acceleration for j in arm.chain.joints])
    np.testing.assert_array_equal(model.home, arm.chain.home)
    for values in (model.lower, model.upper, model.velocity_limits, model.acceleration_limits, model.home):
        assert values.shape == (6,)
        with pytest.raises(ValueError):
            values[0] = 1.0


def test_within_limits(models):
    model = models[("franka", None, 0)]
    assert model.within_limits(model.home)
    assert not model.within_limits(model.upper + 0.01)
    assert model.within_limits(model.upper + 0.01, tol=0.02)


@pytest.mark.parametrize("key", ARMS)
def test_home_tcp_is_inside_the_workspace_box(models, key):
    safety = load_robot_config(key[0], variant=key[1]).safety
    p = models[key].fk(models[key].home)[:3, 3]
    assert np.all(p >= safety.workspace_min) and np.all(p <= safety.workspace_max), p


@pytest.mark.parametrize("key", ARMS)
def test_urdf_parses_with_the_chains_joints_and_links(key):
    chain = _arm(*key).chain
    root = ET.fromstring(chain_to_urdf(chain, "robot"))
    revolute = [j for j in root.iter("joint") if j.get("type") == "revolute"]
    assert [j.get("name") for j in revolute] == list(chain.joint_names)
    assert [link.get("name") for link in root.iter("link")] == list(chain.link_names)
    for el, spec in zip(revolute, chain.joints):
        limit = el.find("limit")
        assert float(limit.get("lower")) == pytest.approx(spec.lower)
        assert float(limit.get("upper")) == pytest.approx(spec.upper)
    for inertial in root.iter("inertial"):
        assert float(inertial.find("mass").get("value")) > 0


def test_urdf_rejects_a_name_used_twice():
    chain = _arm("widowx").chain
    joints = list(chain.joints)
    joints[1] = replace(joints[1], link=joints[0].link)
    with pytest.raises(KinematicsError, match="shoulder_link"):
        chain_to_urdf(replace(chain, joints=tuple(joints)), "wx")


def test_fk_and_jacobian_are_fast(models):
    model = models[("franka", None, 0)]
    q = model.home.copy()
    start = time.perf_counter()
    for _ in range(2000):
        model.fk_and_jacobian(q)
    per_call = (time.perf_counter() - start) / 2000
    assert per_call < 200e-6, f"{per_call * 1e6:.1f} us per call"  # about 3 us here; rebuilding Data costs far more
