"""The `openpi` backend: a remote policy server speaking openpi's protocol, as a Policy.

    policy = OpenpiPolicy(OpenpiConfig(server="gpu-host:8000", preset="droid"), robot)
    out = policy.infer(obs)  # one round trip; PolicyUnavailable when the server cannot answer

With a preset (`config/openpi/<name>.yaml`: droid, libero, aloha) the observation is mapped to that server family's
keys and its actions back to the chunk's columns. Without one (preset "" or "ros2_vla") the server is
`ros2-vla serve`: images by camera name, the robot's state, the prompt; its metadata names the robot and
the action layout, which must be this robot's. Construction does not touch the network: a server that is
down is a status line on each attempt, with the client's back-off between them, never a failed load.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np

from ros2_vla.config import RobotConfig
from ros2_vla.errors import PolicyError, PolicyUnavailable
from ros2_vla.policies.base import MAX_INSTRUCTION_CHARS, Observation, PolicyOutput, PolicySpec, check_instruction
from ros2_vla.policies.observation import state_names
from ros2_vla.policies.openpi.preset import OpenpiPreset, check_actions, load_preset
from ros2_vla.serving.client import OpenpiClient
from ros2_vla.serving.protocol import parse_address

NATIVE = ("", "ros2_vla")  # preset names meaning "a ros2-vla serve server"


@dataclass(frozen=True)
class OpenpiConfig:
    """The policy server to use: its address, preset, API key, reply timeout and instruction limit."""

    server: str  # host:port of the policy server
    preset: str = ""  # droid | libero | aloha | a YAML path; "" or "ros2_vla": `ros2-vla serve`
    api_key: str = ""  # sent as `Authorization: Api-Key <key>`
    timeout: float = 10.0  # [s] for one reply; a slower server is a status line and a reconnect
    max_instruction_chars: int = MAX_INSTRUCTION_CHARS


class OpenpiPolicy:
    """A client of one policy server; `spec.horizon` follows the chunks the server sends."""

    def __init__(self, config: OpenpiConfig, robot: RobotConfig) -> None:
        try:
            host, port = parse_address(config.server)
        except ValueError as exc:
            raise PolicyError(f"server: {exc}") from exc
        self.config, self.robot = config, robot
        self.client = OpenpiClient(host, port, api_key=config.api_key, timeout=config.timeout)
        self.preset: OpenpiPreset | None = None if config.preset in NATIVE else load_preset(config.preset, robot)
        self._state_names = state_names(robot)
        self.spec = self._initial_spec()

    def _initial_spec(self) -> PolicySpec:
        name = f"openpi:{self.client.host}:{self.client.port}"
        if self.preset is None:
            first = self.robot.cameras[0]
            return PolicySpec(
                name,
                tuple(c.name for c in self.robot.cameras),
                (first.height, first.width),
                self.robot.action.space,
                tuple(self.robot.action.dimension_names),
                1,
                self.robot.action.dt,
                self.config.max_instruction_chars,
            )
        p = self.preset
        camera = next(c for c in self.robot.cameras if c.name == p.cameras[0])
        size = p.image_size or (camera.height, camera.width)
        return PolicySpec(
            f"{name}/{p.name}",
            p.cameras,
            size,
            p.action_space,
            p.dimension_names,
            1,
            p.dt,
            self.config.max_instruction_chars,
        )

    def _check_metadata(self) -> None:
        """A `ros2-vla serve` server must serve this robot's layout; other servers' metadata is theirs."""
        meta = self.client.metadata
        if self.preset is not None or not meta:
            return
        if (
            meta.get("embodiment") != self.robot.name
            or tuple(meta.get("dimension_names", ())) != self.spec.dimension_names
        ):
            raise PolicyUnavailable(
                f"the server at {self.client.uri} serves {meta.get('policy', '?')} for {meta.get('embodiment')!r} "
                f"with actions {meta.get('dimension_names')}; this is {self.robot.name!r} with "
                f"{list(self.spec.dimension_names)}: start it with this robot, or pick a preset"
            )

    def observation_map(self, obs: Observation) -> dict:
        if self.preset is None:
            return {
                "images": dict(obs.images),
                "state": np.asarray(obs.state, np.float32),
                "prompt": obs.instruction,
                "stamp": obs.stamp,
            }
        return self.preset.observation(obs.images, obs.state, self._state_names, obs.instruction)

    def infer(self, obs: Observation) -> PolicyOutput:
        check_instruction(obs.instruction, self.spec.max_instruction_chars)
        self.client.connect()
        self._check_metadata()
        reply = self.client.infer(self.observation_map(obs))
        try:
            actions = check_actions(
                reply["actions"], len(self.spec.dimension_names), f"the server at {self.client.uri}"
            )
        except PolicyError as exc:  # the server's fault, not the observation's
            raise PolicyUnavailable(str(exc)) from exc
        values = actions if self.preset is None else self.preset.chunk_values(actions)
        if values.shape[0] != self.spec.horizon:
            self.spec = dataclasses.replace(self.spec, horizon=values.shape[0])
        timing = reply.get("server_timing") or {}
        infer_ms = timing.get("infer_ms") if isinstance(timing, dict) else None
        return PolicyOutput(
            values=values.astype(np.float32),
            inference_time=float(infer_ms) / 1e3 if isinstance(infer_ms, (int, float)) else None,
        )
