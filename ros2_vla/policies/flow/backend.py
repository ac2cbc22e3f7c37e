"""`FlowPolicy`: the pi0-style flow-matching backend behind `ros2_vla.policies.base.Policy`.

infer(obs), in order: check the observation -> camera images resized to the config size in the
config's camera order, [-1, 1] -> state z-scores -> instruction (refused if empty or too long) ->
text tokens (cached per instruction) -> prefix once -> N Euler steps -> chunk (H, D).

The chunk leaves normalized: dims whose norm-stats mask is True are clipped to [-1, 1] and carry
low = q01, high = q99, normalized = True; other dims (the gripper by default) pass through raw, as
OpenVLA's chunks do. The bridge un-normalizes both kinds the same way.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ros2_vla.cpu import inference_threads
from ros2_vla.errors import PolicyError
from ros2_vla.policies.base import MAX_INSTRUCTION_CHARS, Observation, PolicyOutput, PolicySpec
from ros2_vla.policies.flow.checkpoint import load_checkpoint, read_config, resolve_device
from ros2_vla.policies.flow.config import FlowConfig, robot_state_dim
from ros2_vla.policies.flow.model import FlowModel
from ros2_vla.policies.flow.norm import NormStats
from ros2_vla.policies.flow.preprocess import CameraImages, Instruction, StateVector, check_observation
from ros2_vla.policies.flow.proprio import tcp_features_for
from ros2_vla.policies.flow.rtc import ChunkHistory, DelayEstimate, PreviousChunk, RtcConfig, guidance_for

DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16}
QUANTIZATION_DTYPES = {"": "float32", "fp32": "float32", "bf16": "bfloat16"}  # vla_node's `quantization` values


def check_robot(config: FlowConfig, robot: Any, source: str | Path) -> None:
    """PolicyError unless `robot` (RobotConfig) has every camera the model reads and its state size."""
    names = [c.name for c in robot.cameras]
    missing = [c for c in config.cameras if c not in names]
    if missing:
        raise PolicyError(
            f"flow model {source} reads cameras {missing} that robot {robot.name!r} does not have "
            f"(its cameras: {names})"
        )
    state_dim = robot_state_dim(robot)
    if config.state_dim != state_dim:
        raise PolicyError(
            f"flow model {source} takes a state of {config.state_dim} values; robot {robot.name!r} "
            f"has {state_dim} (arm joints, then grippers)"
        )
    if config.tcp_state and config.robot != robot.name:
        raise PolicyError(f"flow model {source} reads the TCP pose of a {config.robot!r}, not of robot {robot.name!r}")


@dataclass(frozen=True)
class ChunkOutput:
    """Normalized actions (H, D) -> PolicyOutput with q01/q99 bounds and the normalization mask."""

    norm_stats: NormStats

    def __call__(self, actions: torch.Tensor) -> PolicyOutput:
        values = actions.float().cpu().numpy()
        mask = self.norm_stats.action_mask
        values[:, mask] = np.clip(values[:, mask], -1.0, 1.0)  # training targets never left [-1, 1]
        if not np.all(np.isfinite(values)):
            raise PolicyError("the flow model produced NaN or infinite actions; check the checkpoint")
        return PolicyOutput(
            values=values.astype(np.float32),
            low=self.norm_stats.action.q01.copy(),
            high=self.norm_stats.action.q99.copy(),
            normalized=mask.copy(),
        )


class FlowPolicy:
    """A flow checkpoint ready to infer; build once, then call `infer` from one thread at a time."""

    def __init__(
        self,
        checkpoint: str | Path,
        device: str = "cpu",
        dtype: str = "float32",
        num_threads: int | None = None,
        seed: int | None = 0,
        robot: Any = None,
        rtc: RtcConfig | None = None,
    ) -> None:
        """checkpoint: folder from `save_checkpoint`; device "cpu" or "cuda[:N]"; dtype "float32" or
        "bfloat16"; num_threads: torch CPU threads (process-wide; default `ros2_vla.cpu.inference_threads()`); seed:
        the noise generator's seed (None: random), so equal seeds give equal chunks; robot: the RobotConfig
        whose kinematics give a tcp_state model its TCP pose (None: the default variant of the model's robot);
        rtc: real-time chunking (`rtc.py`; None: each chunk sampled on its own)."""
        model, _, norm_stats = load_checkpoint(checkpoint, device)
        self._setup(model, norm_stats, f"flow:{checkpoint}", dtype, num_threads, seed, robot, rtc)

    @classmethod
    def from_model(
        cls,
        model: FlowModel,
        norm_stats: NormStats,
        name: str = "flow:in-memory",
        dtype: str = "float32",
        num_threads: int | None = None,
        seed: int | None = 0,
        robot: Any = None,
        rtc: RtcConfig | None = None,
    ) -> FlowPolicy:
        """Wrap a model already in memory (benchmarks, training evaluation); same behaviour as a checkpoint.
        The model is put in eval mode and converted to `dtype` in place."""
        policy = cls.__new__(cls)
        policy._setup(model, norm_stats, name, dtype, num_threads, seed, robot, rtc)
        return policy

    @classmethod
    def from_options(cls, robot: Any, opts: Any) -> FlowPolicy:
        """Build from vla_node's options (`ros2_vla.policies.registry.LoadOptions`) for `robot` (RobotConfig):
        device "auto" takes CUDA when present; quantization "" / "fp32" / "bf16"; `unnorm_key` is OpenVLA's
        and ignored; rtc turns real-time chunking on. Refuses a checkpoint whose cameras or state size the robot
        does not have."""
        device = opts.device if opts.device != "auto" else ("cuda" if torch.cuda.is_available() else "cpu")
        if opts.quantization not in QUANTIZATION_DTYPES:
            raise PolicyError(
                f"the flow backend runs {sorted(q for q in QUANTIZATION_DTYPES if q)} (or '' for fp32), "
                f"not quantization {opts.quantization!r}"
            )
        config = read_config(opts.model)
        check_robot(config, robot, opts.model)
        return cls(
            opts.model,
            device=device,
            dtype=QUANTIZATION_DTYPES[opts.quantization],
            robot=robot,
            rtc=RtcConfig() if opts.rtc else None,
        )

    def _setup(
        self,
        model: FlowModel,
        norm_stats: NormStats,
        name: str,
        dtype: str,
        num_threads: int | None,
        seed: int | None,
        robot: Any,
        rtc: RtcConfig | None,
    ) -> None:
        if dtype not in DTYPES:
            raise PolicyError(f"dtype {dtype!r} unknown; use one of {list(DTYPES)}")
        device = resolve_device(model.device)
        if device.type == "cpu":
            torch.set_num_threads(num_threads or inference_threads())
        self.model = model.to(DTYPES[dtype]).eval().requires_grad_(False)
        self.text_encoder = self.model.text_encoder  # MiniLM loads here, not in the first infer call
        cfg = model.config
        self.spec = PolicySpec(
            name=name,
            cameras=cfg.cameras,
            image_size=cfg.image_size,
            action_space=cfg.action_space,
            dimension_names=cfg.dimension_names,
            horizon=cfg.horizon,
            dt=cfg.dt,
        )
        self.images = CameraImages(cfg.cameras, cfg.image_size)
        self.state = StateVector(norm_stats, tcp_features_for(cfg, robot))
        self.instruction = Instruction(MAX_INSTRUCTION_CHARS)
        self.output = ChunkOutput(norm_stats)
        self.generator = torch.Generator(device=device)
        if seed is None:
            self.generator.seed()
        else:
            self.generator.manual_seed(seed)
        self.rtc = rtc
        self.delay = DelayEstimate(rtc.delay_window, rtc.initial_delay) if rtc is not None else None
        self.history = ChunkHistory()

    def reset(self) -> None:
        """A new episode: the next chunk continues nothing (real-time chunking)."""
        self.history.clear()

    def observe_delay(self, seconds: float) -> None:
        """A chunk's delay [s] from its observation's stamp to its delivery, as measured by the caller
        (vla_node: to its publication; the evaluation: to the bridge). Real-time chunking freezes that many
        steps of the next chunk."""
        if self.delay is not None:
            self.delay.observe(seconds)

    def infer(self, obs: Observation) -> PolicyOutput:
        """One chunk for `obs`: values (H, D) float32, normalized as the module docstring says."""
        obs = check_observation(obs)
        instructions = self.instruction(obs.instruction)  # [text], refused when empty or too long
        guidance = None
        if self.rtc is not None:
            guidance = guidance_for(
                self.history, obs.stamp, instructions[0], self.spec.dt, self.delay.seconds, self.rtc.soft_mask
            )
        # RTC's guidance differentiates through the action expert: no_grad, not inference_mode, then.
        try:
            with torch.inference_mode() if guidance is None else torch.no_grad():
                inputs = self.model.make_inputs(
                    self.images(obs.images), self.state(obs.state), self.text_encoder.encode(instructions)
                )
                cache = self.model.encode_prefix(inputs)
                if guidance is None:
                    actions = self.model.sample(cache, generator=self.generator)
                else:
                    actions = self.model.sample_guided(cache, guidance, self.rtc.max_guidance, generator=self.generator)
        except torch.cuda.OutOfMemoryError as e:
            raise PolicyError(
                f"out of GPU memory running {self.spec.name}: use a smaller model, bf16, or free the GPU"
            ) from e
        out = self.output(actions[0])
        if self.rtc is not None:
            self.history.add(
                PreviousChunk(obs.stamp, instructions[0], torch.as_tensor(out.values, device=actions.device))
            )
            out = dataclasses.replace(out, frozen_steps=guidance.frozen if guidance is not None else 0)
        return out
