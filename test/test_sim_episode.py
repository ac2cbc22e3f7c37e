"""run_episode: a policy drives the sim through the real bridge core, in process; and its hooks for
evaluation: an instruction override, a policy that declines, the monitor, and wrong picks (a cube
other than the task's lifted and held)."""

from __future__ import annotations

import numpy as np
import pytest

from ros2_vla.actions.chunk import Chunk
from ros2_vla.config import load_robot_config
from ros2_vla.errors import ConfigError
from ros2_vla.evaluation.episode import EpisodeObservation, ExpertPolicy, episode_task, run_episode, wrong_picks
from ros2_vla.sim.scene import cube_name
from ros2_vla.sim.slip import SLIP_KINDS
from ros2_vla.sim.tasks import Task
from ros2_vla.sim.world import Simulation


@pytest.fixture(scope="module")
def franka():
    robot = load_robot_config("franka")
    sim = Simulation(robot)
    yield robot, sim
    sim.close()


def still(robot):
    """A policy that asks for no motion, gripper open: (H, D) zeros but the gripper."""
    dims = robot.action.dimension_names

    def policy(obs: EpisodeObservation) -> np.ndarray:
        actions = np.zeros((5, len(dims)))
        actions[:, dims.index("gripper")] = 1.0
        return actions

    return policy


def test_expert_picks_through_the_bridge(franka):
    robot, sim = franka
    policy = ExpertPolicy(robot, sim)
    for seed in (0, 1):
        result = run_episode(robot, seed, "pick", policy, sim=sim, time_limit=20.0)
        assert result.success, f"seed {seed}: {result}"
        assert result.task.kind == "pick" and result.seed == seed
        assert 1.0 < result.sim_time < 20.0
        assert result.chunks == pytest.approx(result.sim_time / 0.25, abs=2)
        assert result.rejected_trajectories == 0
        assert result.furthest == "lifted"


def test_expert_corrects_for_a_servo_disturbance(franka):
    """The DART-style demos (`ros2-vla record --disturbance`): the arm tracks its commands off by a
    wandering offset, and the expert, closing the loop on the true pose, still picks."""
    robot, sim = franka

    def path(disturbance):
        tcp = []
        result = run_episode(
            robot,
            0,
            "pick",
            ExpertPolicy(robot, sim),
            sim=sim,
            time_limit=20.0,
            policy_period=0.1,
            disturbance=disturbance,
            monitor=lambda s, bridge, now: tcp.append(s.tcp_pose()[:3, 3]),
        )
        assert result.success, result
        assert result.rejected_trajectories == 0
        return np.array(tcp)

    clean, pushed = path(0.0), path(0.02)
    n = min(len(clean), len(pushed))
    assert np.linalg.norm(clean[:n] - pushed[:n], axis=1).max() > 0.005  # it took another path to the cube


@pytest.mark.parametrize("kind", SLIP_KINDS)
def test_expert_goes_back_for_a_missed_or_dropped_cube(franka, kind):
    """The recovery demos (`ros2-vla record --slip`): the sim makes the first grasp fail, the cube put
    aside the moment the pads touch it ("miss") or the pads forced open once it is lifted ("drop"), and
    the expert, seeing the cube is not between its pads, grasps it again and finishes."""
    robot, sim = franka
    seed = next(s for s in range(100) if _planned_slip(sim, s) == kind)
    clean = run_episode(robot, seed, "pick", ExpertPolicy(robot, sim), sim=sim, time_limit=30.0, policy_period=0.1)
    assert clean.success and sim.slip.happened == ""
    grasps = []  # one entry per success check: whether both pads touch the task's cube
    watch = lambda s, bridge, now: grasps.append(s.grasped(clean.task.objects[0]))  # noqa: E731
    slipped = run_episode(
        robot,
        seed,
        "pick",
        ExpertPolicy(robot, sim),
        sim=sim,
        time_limit=30.0,
        policy_period=0.1,
        slip=1.0,
        monitor=watch,
    )
    assert sim.slip.happened == kind
    assert slipped.success, slipped
    assert slipped.sim_time > clean.sim_time + 1.0  # the second grasp took its time
    starts = sum(1 for before, now in zip([False, *grasps], grasps) if now and not before)
    assert starts >= (2 if kind == "drop" else 1)  # a missed cube is put aside as the pads first touch it


def _planned_slip(sim: Simulation, seed: int) -> str:
    sim.reset(seed, slip=1.0)
    return sim.slip.plan.kind


def test_a_policy_that_does_not_move_fails_at_the_time_limit(franka):
    robot, sim = franka
    result = run_episode(robot, 0, "pick", still(robot), sim=sim, time_limit=2.0)
    assert not result.success
    assert result.sim_time == pytest.approx(2.0, abs=0.02)
    assert result.chunks == 9  # at 0, 0.25, ..., 2.0 s
    assert result.furthest == "not_reached"
    assert np.allclose(sim.joint_state().positions[:7], robot.arms[0].chain.home, atol=2e-3)


def test_policy_sees_the_episode_task_images_and_is_reset_first(franka):
    robot, sim = franka
    seen: list[EpisodeObservation] = []
    resets = []
    base = still(robot)

    class Recorder:
        def reset(self) -> None:
            resets.append(len(seen))

        def __call__(self, obs: EpisodeObservation) -> np.ndarray:
            seen.append(obs)
            return base(obs)

    run_episode(robot, 3, "place", Recorder(), sim=sim, time_limit=0.3, cameras=("wrist",))
    expected = episode_task(Simulation(robot), 3, "place")
    assert resets == [0]
    assert [o.time for o in seen] == pytest.approx([0.0, 0.25])
    assert all(o.task == expected and o.instruction == expected.instruction for o in seen)
    assert set(seen[0].images) == {"wrist"} and seen[0].images["wrist"].shape == (224, 224, 3)


def test_policy_may_return_a_full_chunk(franka):
    robot, sim = franka
    dims = robot.action.dimension_names
    lift = np.zeros((5, len(dims)), dtype=np.float32)
    lift[:, dims.index("z")] = 0.01  # 1 cm up per 0.1 s step
    lift[:, dims.index("gripper")] = 1.0

    def policy(obs: EpisodeObservation) -> Chunk:
        return Chunk(
            embodiment=robot.name,
            action_space=robot.action.space,
            dimension_names=dims,
            dt=robot.action.dt,
            horizon=5,
            values=lift.reshape(-1),
            stamp=123.0,
            sequence=99,
        )

    z0 = Simulation(robot).tcp_pose("arm")[2, 3]
    taken = []
    result = run_episode(
        robot,
        0,
        "pick",
        policy,
        sim=sim,
        time_limit=1.0,
        on_chunk=lambda chunk, state: taken.append((chunk.sequence, state.code)),
    )
    assert result.bad_chunks == 0
    assert sim.tcp_pose("arm")[2, 3] - z0 > 0.03
    assert [s for s, _ in taken] == list(range(1, result.chunks + 1))  # every chunk, with the bridge's answer
    assert all(code.name == "OK" for _, code in taken)


def test_bad_arguments_fail_clearly(franka):
    robot, sim = franka
    with pytest.raises(ConfigError, match=r"shape \(5, 3\)"):
        run_episode(robot, 0, "pick", lambda obs: np.zeros((5, 3)), sim=sim, time_limit=1.0)
    with pytest.raises(ConfigError, match="not a widowx"):
        run_episode("widowx", 0, "pick", still(robot), sim=sim)
    with pytest.raises(ConfigError, match="no camera"):
        run_episode(robot, 0, "pick", still(robot), sim=sim, cameras=("nope",))
    with pytest.raises(ConfigError, match="not one franka does"):
        run_episode(robot, 0, "bimanual_pick", still(robot), sim=sim)


class WrongColorExpert:
    """The scripted expert, told to fetch `color` instead of the task's cube."""

    def __init__(self, robot, color: str) -> None:
        self.expert, self.color = ExpertPolicy(robot), color

    def reset(self) -> None:
        self.expert.reset()

    def __call__(self, obs: EpisodeObservation) -> np.ndarray:
        return self.expert(obs._replace(task=Task(obs.task.kind, (self.color,))))


def test_the_policy_is_told_the_instruction_given_and_the_result_keeps_it(franka):
    robot, sim = franka
    seen = []

    def policy(obs: EpisodeObservation):
        seen.append(obs.instruction)
        return None  # declines every observation: no chunk reaches the bridge

    result = run_episode(robot, 0, "pick", policy, sim=sim, time_limit=0.6, instruction="grab the red block")
    assert seen == ["grab the red block"] * 3  # at 0, 0.25, 0.5 s
    assert result.instruction == "grab the red block" and result.chunks == 0 and result.bridge_codes == {}
    assert not result.success and result.wrong_objects == ()
    assert run_episode(robot, 0, "pick", policy, sim=sim, time_limit=0.1).instruction == result.task.instruction


def test_a_chunk_delay_delivers_each_chunk_late_while_the_next_are_asked_for(franka):
    robot, sim = franka
    asked, heard = [], []  # policy calls; (time, sequence of the bridge's last chunk) at each success check
    policy = still(robot)
    run_episode(
        robot,
        0,
        "pick",
        lambda obs: asked.append(obs.time) or policy(obs),
        sim=sim,
        time_limit=0.65,
        policy_period=0.1,
        chunk_delay=0.25,
        monitor=lambda s, bridge, now: heard.append((round(now, 3), bridge.state(now).chunk_sequence)),
    )
    assert asked == pytest.approx([0.1 * k for k in range(7)])  # requests go on while chunks are on their way
    assert heard == [(0.0, 0), (0.1, 0), (0.2, 0), (0.3, 1), (0.4, 2), (0.5, 3), (0.6, 4)]  # each 0.25 s late
    with pytest.raises(ConfigError, match="chunk_delay"):
        run_episode(robot, 0, "pick", policy, sim=sim, chunk_delay=-0.1)


def test_monitor_runs_at_every_success_check_with_the_bridge(franka):
    robot, sim = franka
    calls = []
    run_episode(
        robot,
        0,
        "pick",
        ExpertPolicy(robot),
        sim=sim,
        time_limit=1.0,
        monitor=lambda s, bridge, now: calls.append((s is sim, bridge.enabled, now)),
    )
    assert [round(c[2], 3) for c in calls] == pytest.approx([0.1 * i for i in range(11)])
    assert all(c[0] for c in calls) and calls[-1][1]


def test_picking_another_cube_is_a_wrong_pick_not_a_success(franka):
    robot, sim = franka
    task = episode_task(sim, 1, "pick")
    other = next(c for c in sim.scene.cube_colors if c != task.colors[0])
    result = run_episode(robot, 1, "pick", WrongColorExpert(robot, other), sim=sim, time_limit=12.0)
    assert not result.success
    assert result.wrong_objects == (cube_name(other),)
    assert wrong_picks(sim, task) == (cube_name(other),)  # still held at the end
    right = run_episode(robot, 1, "pick", ExpertPolicy(robot), sim=sim, time_limit=12.0)
    assert right.success and right.wrong_objects == ()


def test_one_episode_config_or_its_fields_not_both(franka):
    from ros2_vla.evaluation.episode import EpisodeConfig

    robot, sim = franka
    config = EpisodeConfig(time_limit=0.3, cameras=("wrist",))
    by_config = run_episode(robot, 3, "pick", still(robot), config, sim=sim)
    by_fields = run_episode(robot, 3, "pick", still(robot), sim=sim, time_limit=0.3, cameras=("wrist",))
    assert (by_config.success, by_config.sim_time, by_config.chunks) == (False, by_fields.sim_time, by_fields.chunks)
    with pytest.raises(ConfigError, match="not both"):
        run_episode(robot, 3, "pick", still(robot), config, sim=sim, time_limit=1.0)
    with pytest.raises(ConfigError, match="must all be > 0"):
        EpisodeConfig(policy_period=0.0)
    with pytest.raises(ConfigError, match="command_delay .* below every period"):
        run_episode(robot, 3, "pick", still(robot), EpisodeConfig(command_delay=0.5), sim=sim)
