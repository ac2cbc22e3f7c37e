"""A vla_node backend as an in-process episode policy: what it sees and what it sends are vla_node's.

vla_node turns camera frames and joint states into the backend's Observation with an
`ObservationBuffer` (frames at the config's resolution, the state vector in `state_names` order)
and the backend's PolicyOutput into an ActionChunk with `output_chunk`. `BackendPolicy` calls the
same two, fed from the sim instead of DDS, so an evaluation scores the policy the robot would run.
"""

from __future__ import annotations

import difflib
from pathlib import Path

import numpy as np

from ros2_vla.actions.chunk import Chunk, validate_chunk
from ros2_vla.config import RobotConfig
from ros2_vla.errors import ChunkError, ConfigError, PolicyError
from ros2_vla.evaluation import episode
from ros2_vla.parameters import param
from ros2_vla.policies.base import Policy, PolicyOutput
from ros2_vla.policies.observation import ObservationBuffer, state_names
from ros2_vla.policies.runner import infer_chunk, output_chunk

MAX_OBSERVATION_AGE = param(
    "vla", "max_observation_age"
).default  # [s] as vla_node by default (every input here is fresh)


def check_fits(robot: RobotConfig, policy: Policy, source: str = "") -> None:
    """PolicyError unless `robot` has the cameras the policy reads and its bridge would take its chunks
    (embodiment, action space, dimension names: the bridge's own `validate_chunk` on an all-zero chunk)."""
    spec, source = policy.spec, source or policy.spec.name
    names = [c.name for c in robot.cameras]
    missing = [c for c in spec.cameras if c not in names]
    if missing:
        raise PolicyError(
            f"policy {source} reads cameras {missing} that {robot.name} does not have (its cameras: "
            f"{names}): is it a model for another robot?"
        )
    zeros = PolicyOutput(values=np.zeros((spec.horizon, len(spec.dimension_names)), np.float32))
    try:
        validate_chunk(output_chunk(robot.name, spec, zeros, 0.0, "check", 1, 0.0), robot)
    except ChunkError as exc:
        raise PolicyError(
            f"policy {source} makes chunks the {robot.name} bridge refuses ({exc}): is it a model for another robot?"
        ) from exc


class BackendPolicy:
    """`episode.EpisodePolicy` over a backend (`ros2_vla.policies.base.Policy`), fed as vla_node feeds it.

    `cameras` are the ones to render into each observation (the model's own). A PolicyError from the
    backend (an observation it cannot use) gives None, no chunk, as vla_node publishes none; the
    messages are kept in `refusals`."""

    def __init__(self, robot: RobotConfig, backend: Policy) -> None:
        check_fits(robot, backend)
        self.robot, self.backend = robot, backend
        self.name = backend.spec.name
        self.cameras = tuple(backend.spec.cameras)
        self.refusals: list[str] = []
        self._sequence = 0
        self.reset()

    def reset(self) -> None:
        """A fresh buffer per episode: sim time restarts at 0, so old frames must not look newer."""
        if hasattr(self.backend, "reset"):
            self.backend.reset()
        sizes = {c.name: (c.height, c.width) for c in self.robot.cameras}
        self.buffer = ObservationBuffer(tuple(sizes), state_names(self.robot), MAX_OBSERVATION_AGE, sizes)
        self.buffer.cameras = self.cameras  # as PolicyRunner narrows it once the model is loaded

    def observe_delay(self, seconds: float) -> None:
        """A chunk's delay from its observation to the bridge (`run_episode` reports it): to the backend."""
        if hasattr(self.backend, "observe_delay"):
            self.backend.observe_delay(seconds)

    def __call__(self, obs: episode.EpisodeObservation) -> Chunk | None:
        for name in self.cameras:
            self.buffer.add_frame(name, obs.time, obs.images[name])
        js = obs.joint_state
        self.buffer.add_joint_state(obs.time, list(js.names), js.positions.tolist())
        instruction = obs.instruction.strip()  # PolicyRunner.set_instruction strips it too
        try:
            observation = self.buffer.assemble(obs.time, instruction)
            chunk = infer_chunk(self.robot.name, self.backend, observation, self._sequence + 1)
        except PolicyError as exc:
            self.refusals.append(str(exc))
            return None
        self._sequence = chunk.sequence
        return chunk


def load_eval_policy(
    robot: RobotConfig,
    name: str,
    model: str = "",
    device: str = "auto",
    quantization: str = "",
    unnorm_key: str = "",
    rtc: bool = False,
) -> episode.EpisodePolicy:
    """The policy `ros2-vla eval --policy NAME` runs: "expert" (the scripted expert, privileged state:
    a baseline and a check of the sim), or a vla_node backend ("flow", "openvla") loaded from `model`."""
    if name == "expert":
        if model:
            raise ConfigError("--policy expert takes no --model (the scripted expert reads the sim's true state)")
        return episode.ExpertPolicy(robot)
    from ros2_vla.policies.defaults import DEFAULT_BACKEND, default_model
    from ros2_vla.policies.registry import BACKENDS, LoadOptions, load_policy

    if name not in BACKENDS:
        known = ["expert", *sorted(BACKENDS)]
        close = difflib.get_close_matches(name, known, n=1)
        raise ConfigError(
            f"unknown policy {name!r}; use one of {known}" + (f" (did you mean {close[0]!r}?)" if close else "")
        )
    if not model and name == DEFAULT_BACKEND:
        model = str(default_model(robot.name))  # the policy shipped for this robot
    if not model:
        raise ConfigError(f"--policy {name} needs --model DIR (a {name} checkpoint folder)")
    if model and not Path(model).is_dir():
        raise ConfigError(f"model folder {model} does not exist; pass the checkpoint folder to --model")
    opts = LoadOptions(model=model, device=device, quantization=quantization, unnorm_key=unnorm_key, rtc=rtc)
    return BackendPolicy(robot, load_policy(name, robot, opts))
