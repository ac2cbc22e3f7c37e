"""evaluate(): closed-loop episodes on held-out seeds, success and wrong-object counts, the files it
writes, and the vla_node-exact adapter between the sim and a policy backend."""

from __future__ import annotations

import json

import imageio.v3 as iio
import numpy as np
import pytest
from flow_helpers import one_torch_thread, random_model  # noqa: F401

from ros2_vla.config import load_robot_config
from ros2_vla.errors import ConfigError, PolicyError
from ros2_vla.evaluation.adapter import BackendPolicy, check_fits, load_eval_policy
from ros2_vla.evaluation.episode import EpisodeObservation, ExpertPolicy, episode_task
from ros2_vla.evaluation.evaluate import EvalConfig, evaluate
from ros2_vla.evaluation.seeds import HELD_OUT_SEED
from ros2_vla.evaluation.stats import wilson_interval
from ros2_vla.policies.base import PolicyOutput, PolicySpec
from ros2_vla.policies.observation import state_names
from ros2_vla.sim.phrasings import HELD_OUT, instruction_for
from ros2_vla.sim.scene import cube_name
from ros2_vla.sim.tasks import Task
from ros2_vla.sim.world import Simulation
from ros2_vla.trajectory.blend_config import BlendConfig


@pytest.fixture(scope="module")
def franka():
    return load_robot_config("franka")


def flow_checkpoint(folder, robot):
    from ros2_vla.policies.flow import config_for_robot, identity_norm_stats, save_checkpoint

    model = random_model(config_for_robot("tiny", robot))
    save_checkpoint(folder, model, model.config, identity_norm_stats(model.config.action_dim, model.config.state_dim))
    return folder


class OtherCubeExpert:
    """The scripted expert sent for a cube the task does not name (the first other color)."""

    def __init__(self, robot) -> None:
        self.expert = ExpertPolicy(robot)
        self.name = "other_cube_expert"

    def reset(self) -> None:
        self.expert.reset()

    def __call__(self, obs: EpisodeObservation) -> np.ndarray:
        other = next(c for c in ("red", "green", "blue") if c not in obs.task.colors)
        return self.expert(obs._replace(task=Task(obs.task.kind, (other,))))


class RecordingBackend:
    """A backend (the `Policy` protocol) that keeps what it is given and asks for no motion."""

    def __init__(self, robot, cameras=("wrist",)) -> None:
        dims = robot.action.dimension_names
        self.spec = PolicySpec("recording", cameras, (224, 224), robot.action.space, dims, 4, robot.action.dt)
        self.seen = []

    def infer(self, obs):
        self.seen.append(obs)
        values = np.zeros((4, len(self.spec.dimension_names)), np.float32)
        values[:, -1] = 1.0  # gripper open
        return PolicyOutput(values=values)


def test_expert_succeeds_on_held_out_seeds_and_the_files_say_so(franka, tmp_path):
    config = EvalConfig(episodes=3, phrasing="heldout", video_episodes=1)
    lines = []
    report = evaluate(franka, ExpertPolicy(franka), config, tmp_path, log=lines.append)
    assert report.episodes == 3 and report.successes == 3 and report.success_rate == 1.0
    assert report.success_ci95 == wilson_interval(3, 3) and report.wrong_object_episodes == 0
    assert [r.seed for r in report.records] == [HELD_OUT_SEED, HELD_OUT_SEED + 1, HELD_OUT_SEED + 2]
    assert sum(t.episodes for t in report.tasks) == 3 and len(lines) == 3
    assert report.failures_by_stage == {"not_reached": 0, "reached": 0, "grasped": 0, "lifted": 0}
    sim = Simulation(franka)
    for r in report.records:
        task = episode_task(sim, r.seed)
        assert (r.kind, r.colors) == (task.kind, task.colors)
        assert r.instruction == instruction_for(task, "heldout", r.seed)
        assert r.instruction in {p.format(*task.colors) for p in HELD_OUT[task.kind]}
    sim.close()
    saved = json.loads((tmp_path / "results.json").read_text())
    assert saved["successes"] == 3 and len(saved["records"]) == 3 and saved["latency_ms"]["calls"] > 0
    assert "**Success: 3/3 = 100%**" in (tmp_path / "summary.md").read_text()
    frames = iio.imread(tmp_path / "episodes.mp4")
    first = report.records[0]
    assert frames.shape[1:] == (448, 448, 3)  # the scene camera at twice its size
    assert len(frames) == pytest.approx(first.sim_time * 10 + 1 + 10, abs=2)  # one episode, then 1 s of verdict
    assert (tmp_path / "episodes.gif").stat().st_size > 0


def test_picking_the_wrong_cube_is_counted_apart_from_failing(franka):
    report = evaluate(franka, OtherCubeExpert(franka), EvalConfig(episodes=2, kind="pick", time_limit=12.0), log=None)
    assert report.successes == 0 and report.wrong_object_episodes == 2 and report.wrong_object_rate == 1.0
    assert sum(report.failures_by_stage.values()) == 2 and report.failures_by_stage["lifted"] == 0
    assert all("furthest: " in r.line(2) for r in report.records)
    assert all(len(r.wrong_objects) == 1 and r.wrong_objects[0] not in map(cube_name, r.colors) for r in report.records)
    assert sum(t.wrong_object for t in report.tasks) == 2
    assert report.policy == "other_cube_expert" and report.files == {}


def test_a_tiny_flow_checkpoint_runs_through_the_bridge_and_writes_results(franka, tmp_path):
    policy = load_eval_policy(franka, "flow", str(flow_checkpoint(tmp_path / "model", franka)), device="cpu")
    report = evaluate(
        franka, policy, EvalConfig(episodes=2, time_limit=1.0, video_episodes=1), tmp_path / "out", log=None
    )
    assert report.episodes == 2 and report.policy.startswith("flow:")
    assert report.config["policy_period"] == pytest.approx(0.1)  # one chunk per 10 Hz camera frame, as vla_node
    for r in report.records:
        assert r.chunks == 11 and r.declined == 0  # at 0, 0.1, ..., 1.0 s
        assert sum(r.bridge_codes.values()) == 11  # every chunk reached the bridge and got an answer
    assert report.latency_ms["calls"] == 22 and report.latency_ms["p50"] > 0
    assert json.loads((tmp_path / "out" / "results.json").read_text())["episodes"] == 2
    assert (tmp_path / "out" / "episodes.mp4").is_file() and (tmp_path / "out" / "episodes.gif").is_file()


def test_the_blend_mode_is_the_bridge_s_and_the_report_says_which(franka):
    # The same expert episode played through the bridge's "skip" and "ensemble" blending: both pick,
    # but the arm moves differently, so the mode reached the bridge and not only the report.
    reports = {
        mode: evaluate(
            franka, ExpertPolicy(franka), EvalConfig(episodes=1, kind="pick", blend=BlendConfig(mode)), log=None
        )
        for mode in ("skip", "ensemble")
    }
    assert all(r.successes == 1 for r in reports.values())
    assert reports["skip"].records[0].sim_time != reports["ensemble"].records[0].sim_time
    assert reports["ensemble"].config["blend"]["mode"] == "ensemble"
    assert (
        "bridge blending ensemble, each chunk at the bridge 2 ms after its observation."
        in reports["ensemble"].markdown()
    )


def test_the_chunk_delay_reaches_the_bridge_and_the_report_says_so(franka):
    # The same expert episode with its chunks 2 ms and 150 ms late: the arm moves differently.
    reports = [
        evaluate(franka, ExpertPolicy(franka), EvalConfig(episodes=1, kind="pick", chunk_delay=d), log=None)
        for d in (EvalConfig.chunk_delay, 0.15)
    ]
    assert reports[0].records[0].sim_time != reports[1].records[0].sim_time
    assert (
        reports[1].config["chunk_delay"] == 0.15
        and "each chunk at the bridge 150 ms after its observation." in reports[1].markdown()
    )


def test_backend_gets_what_vla_node_would_assemble(franka):
    backend = RecordingBackend(franka)
    policy = BackendPolicy(franka, backend)
    sim = Simulation(franka)
    obs_time, instruction = 0.75, "  grab the red block "
    sim.step_until(obs_time)
    js = sim.joint_state()
    episode_obs = EpisodeObservation(
        obs_time, instruction, js, {"wrist": sim.render("wrist")}, Task("pick", ("red",)), None
    )
    chunk = policy(episode_obs)
    (seen,) = backend.seen
    assert set(seen.images) == {"wrist"} and seen.images["wrist"].shape == (224, 224, 3)
    assert seen.instruction == "grab the red block" and seen.stamp == obs_time
    by_name = dict(zip(js.names, js.positions))
    np.testing.assert_allclose(seen.state, [by_name[n] for n in state_names(franka)], rtol=1e-6)
    assert seen.state.dtype == np.float32 and len(seen.state) == 8  # 7 joints, then the gripper
    assert chunk.embodiment == "franka" and chunk.policy == "recording" and chunk.horizon == 4
    assert chunk.instruction == "grab the red block" and chunk.sequence == 1
    sim.close()


def test_a_model_for_another_robot_is_refused(franka, tmp_path):
    widowx = load_robot_config("widowx")
    folder = flow_checkpoint(tmp_path, widowx)
    with pytest.raises(PolicyError, match="state of 7 values"):
        load_eval_policy(franka, "flow", str(folder), device="cpu")
    aloha_like = RecordingBackend(franka)
    aloha_like.spec = PolicySpec("aloha-model", ("cam_high",), (224, 224), "joint_position", ("waist",), 4, 0.02)
    with pytest.raises(PolicyError, match="cameras \\['cam_high'\\].*another robot"):
        check_fits(franka, aloha_like)
    joint_model = RecordingBackend(franka, cameras=("scene",))
    joint_model.spec = PolicySpec("wx", ("scene",), (224, 224), "joint_position", widowx.joint_names, 4, 0.2)
    with pytest.raises(PolicyError, match="bridge refuses.*another robot"):
        check_fits(franka, joint_model)


def test_bad_policy_arguments_name_the_fix(franka, tmp_path):
    with pytest.raises(ConfigError, match="model folder .*nope does not exist"):
        load_eval_policy(franka, "flow", str(tmp_path / "nope"))
    with pytest.raises(ConfigError, match="needs --model"):
        load_eval_policy(franka, "openvla")
    with pytest.raises(ConfigError, match="did you mean 'expert'"):
        load_eval_policy(franka, "expret")
    with pytest.raises(ConfigError, match="takes no --model"):
        load_eval_policy(franka, "expert", str(tmp_path))
    with pytest.raises(ConfigError, match="unknown phrasing"):
        EvalConfig(phrasing="paraphrase")
    with pytest.raises(ConfigError, match="episodes must be >= 1"):
        EvalConfig(episodes=0)
    with pytest.raises(ConfigError, match="chunk_delay must be finite"):
        EvalConfig(chunk_delay=float("nan"))
