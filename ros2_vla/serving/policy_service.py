"""An in-process backend (flow, openvla) as an openpi-protocol `infer`: observation map in, actions out.

The package's own observation keys (preset `ros2_vla` of the openpi backend): `images` {camera name:
(H, W, 3) uint8 RGB}, `state` (S,) float32 in the robot config's joint order, `prompt` (str), optional
`stamp` [s]. The reply's `actions` are physical, (H, D) float32, in the backend's action space and
dimension names, which the metadata frame lists with the robot, dt and cameras, so a client can build
its chunks from the metadata alone.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ros2_vla.actions.chunk import chunk_to_array
from ros2_vla.config import RobotConfig
from ros2_vla.errors import PolicyError
from ros2_vla.policies.base import Observation, Policy
from ros2_vla.policies.runner import output_chunk

PROTOCOL = "ros2_vla/1"  # the metadata's `protocol`: these keys and this metadata layout


def service_metadata(robot: RobotConfig, policy: Policy) -> dict[str, Any]:
    """What the server says first: the backend's spec and the robot it was built for."""
    spec = policy.spec
    return {
        "protocol": PROTOCOL,
        "policy": spec.name,
        "embodiment": robot.name,
        "cameras": list(spec.cameras),
        "image_size": list(spec.image_size),
        "action_space": spec.action_space,
        "dimension_names": list(spec.dimension_names),
        "horizon": spec.horizon,
        "dt": spec.dt,
        "max_instruction_chars": spec.max_instruction_chars,
    }


class PolicyService:
    """`service(obs_map) -> {"actions": (H, D) float32}` for one in-process backend."""

    def __init__(self, robot: RobotConfig, policy: Policy) -> None:
        self.robot, self.policy = robot, policy
        self.metadata = service_metadata(robot, policy)

    def observation(self, obs: dict[str, Any]) -> Observation:
        """The map a client sent as the backend's Observation; PolicyError naming what is missing."""
        images = obs.get("images")
        if not isinstance(images, dict):
            raise PolicyError(f"the observation has no 'images' map (keys: {sorted(map(str, obs))})")
        missing = [c for c in self.policy.spec.cameras if c not in images]
        if missing:
            raise PolicyError(f"the observation has no image from camera(s) {missing} (it has {sorted(images)})")
        for key in ("state", "prompt"):
            if key not in obs:
                raise PolicyError(f"the observation has no {key!r}")
        return Observation(
            stamp=float(obs.get("stamp", 0.0)),
            images={c: np.array(images[c]) for c in images},
            state=np.array(obs["state"], np.float32),
            instruction=str(obs["prompt"]),
        )

    def __call__(self, obs: dict[str, Any]) -> dict[str, Any]:
        observation = self.observation(obs)
        out = self.policy.infer(observation)
        chunk = output_chunk(self.robot.name, self.policy.spec, out, observation.stamp, observation.instruction, 0, 0.0)
        return {"actions": chunk_to_array(chunk).astype(np.float32)}
