"""The compiled step loop (bridge/compiled_plan.py) against the Python one it replaces: the chain's FK and
Jacobian against pinocchio, its IK against `solve_ik`, and whole plans of random chunks against the
planner's Python loop, codes and messages included."""

from __future__ import annotations

import functools
import zlib
from dataclasses import replace

import numpy as np
import pytest

from ros2_vla.actions.chunk import Chunk
from ros2_vla.bridge.compiled_plan import ChainArrays, fk_jacobian, symmetric_eigen
from ros2_vla.bridge.compiled_plan import solve_ik as compiled_ik
from ros2_vla.bridge.planner import ChunkPlanner
from ros2_vla.bridge.status import BridgeCode
from ros2_vla.config import RobotConfig, load_robot_config
from ros2_vla.ik.params import IkParams
from ros2_vla.ik.solve import solve_ik
from ros2_vla.kinematics.model import ArmModel

EE = ("x", "y", "z", "roll", "pitch", "yaw", "gripper")
ARMS = [("franka", 0), ("widowx", 0), ("aloha", 0), ("aloha", 1)]


@functools.cache
def _robot(name: str) -> RobotConfig:
    return load_robot_config(name)


def _random_q(model: ArmModel, rng: np.random.Generator) -> np.ndarray:
    return rng.uniform(model.lower, model.upper)


@pytest.mark.parametrize(("robot", "index"), ARMS)
def test_fk_and_jacobian_equal_pinocchio(robot, index):
    arm = _robot(robot).arms[index]
    model, chain = ArmModel.from_arm(arm), ChainArrays.from_chain(arm.chain)
    rng = np.random.default_rng(index)
    T, J = np.empty((4, 4)), np.empty((6, model.nq))
    for _ in range(50):
        q = _random_q(model, rng)
        fk_jacobian(chain.origins, chain.axes, chain.tcp, q, T, J)
        T_pin, J_pin = model.fk_and_jacobian(q)
        # pinocchio reads the chain from URDF text with 10 significant digits: equal to ~1e-10.
        np.testing.assert_allclose(T, T_pin, atol=1e-8)
        np.testing.assert_allclose(J, J_pin, atol=1e-8)


def test_symmetric_eigen_matches_lapack():
    rng = np.random.default_rng(0)
    values, vectors = np.empty(6), np.empty((6, 6))
    for _ in range(100):
        J = rng.normal(size=(6, 7)) * rng.uniform(1e-3, 1.0, size=(6, 1))  # spread singular values
        A = J @ J.T
        symmetric_eigen(A, values, vectors)
        np.testing.assert_allclose(np.sort(values), np.linalg.eigvalsh(A), rtol=1e-9, atol=1e-14)
        np.testing.assert_allclose(vectors @ np.diag(values) @ vectors.T, A, atol=1e-12)
        np.testing.assert_allclose(vectors.T @ vectors, np.eye(6), atol=1e-12)


def _ik_args(model: ArmModel, chain: ChainArrays):
    return (chain.origins, chain.axes, chain.tcp, model.lower, model.upper, model.home)


def _params(params: IkParams):
    return (
        params.damping,
        params.max_iterations,
        params.position_tolerance,
        params.rotation_tolerance,
        params.nullspace_gain,
        params.max_step,
    )


@pytest.mark.parametrize(
    ("robot", "params"),
    [
        ("franka", IkParams()),
        ("franka", IkParams(nullspace_gain=0.0)),
        ("widowx", IkParams()),
        ("franka", IkParams(max_iterations=3)),  # stops before converging: the best iterate is returned
    ],
)
def test_ik_matches_solve_ik(robot, params):
    arm = _robot(robot).arms[0]
    model, chain = ArmModel.from_arm(arm), ChainArrays.from_chain(arm.chain)
    rng = np.random.default_rng(1)
    q_out = np.empty(model.nq)
    converged = 0
    for _ in range(40):
        seed = _random_q(model, rng)
        # A target a little away from the seed (as one chunk step), or anywhere (often unreachable for WidowX).
        q_goal = np.clip(
            seed + rng.normal(0.0, 0.05 if rng.random() < 0.7 else 1.0, model.nq), model.lower, model.upper
        )
        T = model.fk(q_goal)
        T[:3, 3] += rng.normal(0.0, 0.01, 3)
        expected = solve_ik(model, T, seed, params)
        pos, rot, iterations, condition, ok = compiled_ik(*_ik_args(model, chain), T, seed, *_params(params), q_out)
        assert ok == expected.converged
        if ok:  # out of reach, the best iterate sits on a plateau: which iteration of it is best is rounding
            assert iterations == expected.iterations
        np.testing.assert_allclose(q_out, expected.q, atol=1e-7)
        np.testing.assert_allclose([pos, rot], [expected.position_error, expected.rotation_error], atol=1e-7)
        np.testing.assert_allclose(condition, expected.condition_number, rtol=1e-6)
        converged += ok
    assert 0 < converged  # the comparison covers solutions found...
    if params.max_iterations > 3 and robot == "widowx":
        assert converged < 40  # ...and, for the 6-DoF arm, targets out of reach


def _python_loop(model, T, q_seed, params):
    """solve_ik behind another name: the planner then runs its Python step loop (the old path)."""
    return solve_ik(model, T, q_seed, params)


def _random_chunk(robot: RobotConfig, rng: np.random.Generator, space: str, frame: str) -> Chunk:
    H = int(rng.integers(1, 51))
    scale = rng.choice([0.002, 0.02, 0.08])  # [m, rad] per step: calm, fast (clamped), wild (limits, IK failures)
    values = np.column_stack([rng.normal(0.0, scale, (H, 6)), rng.uniform(-1, 1, H)])
    if space == "ee_absolute":
        model = ArmModel.from_arm(robot.arms[0])
        T0 = model.fk(model.home)
        values[:, :3] += T0[:3, 3] + np.cumsum(values[:, :3], axis=0)
        values[:, 3:6] = np.cumsum(values[:, 3:6], axis=0) + np.array([np.pi, 0.0, 0.0])
    return Chunk(
        stamp=0.0,
        embodiment=robot.name,
        action_space=space,
        dimension_names=EE,
        dt=robot.action.dt,
        horizon=H,
        values=values.ravel(),
        frame_id=frame,
    )


@pytest.mark.parametrize(
    ("robot", "space", "frame", "singularity"),
    [
        ("franka", "ee_delta", "base", None),
        ("franka", "ee_delta", "ee", None),
        ("franka", "ee_absolute", "", None),
        ("widowx", "ee_delta", "base", None),
        ("widowx", "ee_delta", "ee", None),
        # Thresholds around the arms' own condition numbers near home (8 and 12), so that chunks slow and halt.
        ("franka", "ee_delta", "base", (8.5, 12.0)),
        ("widowx", "ee_delta", "ee", (12.5, 20.0)),
    ],
)
def test_compiled_plans_equal_the_python_loop_on_random_chunks(robot, space, frame, singularity):
    config = _robot(robot)
    if space == "ee_absolute":
        config = replace(config, action=replace(config.action, space="ee_absolute"))
    if singularity is not None:
        config = replace(
            config,
            safety=replace(config.safety, singularity_decelerate=singularity[0], singularity_halt=singularity[1]),
        )
    compiled, python = ChunkPlanner(config), ChunkPlanner(config, ik_solver=_python_loop)
    rng = np.random.default_rng(zlib.crc32(f"{robot} {space} {frame} {singularity}".encode()))
    arm = config.arms[0]
    model = compiled.models[arm.name]
    codes = set()
    for _ in range(60):
        chunk = _random_chunk(config, rng, space, frame)
        q0 = {arm.name: np.clip(np.array(arm.chain.home) + rng.normal(0.0, 0.3, model.nq), model.lower, model.upper)}
        new, old = compiled.plan(chunk, q0), python.plan(chunk, q0)
        assert (new.steps, new.code) == (old.steps, old.code)
        if new.code != BridgeCode.IK_FAILED:  # a failure's message quotes residuals: a rounding tie may print apart
            assert new.message == old.message
        a, b = new.arms[0], old.arms[0]
        np.testing.assert_allclose(a.positions, b.positions, atol=1e-7)
        np.testing.assert_allclose(a.ee_targets, b.ee_targets, atol=1e-9)
        if a.gripper is not None or b.gripper is not None:
            np.testing.assert_array_equal(a.gripper, b.gripper)
        np.testing.assert_allclose(
            [new.ik_position_residual, new.ik_rotation_residual],
            [old.ik_position_residual, old.ik_rotation_residual],
            atol=1e-6,
        )
        np.testing.assert_allclose(
            [new.condition_number, new.speed_scale], [old.condition_number, old.speed_scale], rtol=1e-6
        )
        codes.add(new.code)
    if singularity is None:
        assert BridgeCode.OK in codes and {BridgeCode.WORKSPACE_LIMIT, BridgeCode.IK_FAILED} <= codes
    else:
        assert {BridgeCode.DECELERATE_FOR_SINGULARITY, BridgeCode.HALT_FOR_SINGULARITY} <= codes
