"""The `openvla` backend: one third-person image and an instruction in, one step of D action tokens out.

Built once (heavy loading in the constructor), then `infer(obs)` per observation. The chunk carries bin
indices (H = 1, D tokens), `num_bins`, and q01/q99/mask of the chosen dataset statistics, so the bridge
un-normalizes it exactly as OpenVLA's `predict_action` would, without the model.

    policy = OpenVlaPolicy(OpenVlaConfig(checkpoint="models/openvla-7b", dt=0.2, cameras=("scene", "wrist"),
                                         unnorm_key="bridge_orig"))
    out = policy.infer(obs)  # out.tokens: uint16 (1, 7)
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from ros2_vla.actions.spaces import ACTION_SPACES, EE_DELTA, EE_DIMENSIONS
from ros2_vla.actions.tokenization import token_ids_to_bin_indices
from ros2_vla.errors import ChunkError, PolicyError
from ros2_vla.policies.base import MAX_INSTRUCTION_CHARS, Observation, PolicyOutput, PolicySpec
from ros2_vla.policies.openvla.architecture import read_architecture
from ros2_vla.policies.openvla.decoding import action_id_range, action_vocab_size, greedy_action_ids
from ros2_vla.policies.openvla.inputs import model_inputs, to_pil
from ros2_vla.policies.openvla.loading import load_checkpoint, oom_as_policy_error
from ros2_vla.policies.openvla.norm_stats import ActionStats, load_action_stats
from ros2_vla.policies.openvla.prompt import OPENVLA_PROMPT, format_prompt, suffix_token_id


@dataclass(frozen=True)
class OpenVlaConfig:
    """What the backend needs to know; checked on construction."""

    checkpoint: str  # local checkpoint dir: config.json, weights, processor files (nothing is downloaded)
    dt: float  # [s] between action steps: the robot's control step for this model (BridgeData: 0.2)
    cameras: tuple[str, ...]  # the robot's camera names, in config order
    camera: str | None = None  # the one camera the model sees (third-person); None = the first of `cameras`
    unnorm_key: str | None = None  # dataset statistics to un-normalize with; may be omitted if there is one
    quantization: str | None = None  # 4bit | 8bit | bf16 | fp32; None = 4bit on CUDA, fp32 on CPU
    device: str = "auto"  # cpu | cuda | cuda:N | auto (cuda when available)
    action_space: str = EE_DELTA  # what the D dimensions mean to the bridge
    dimension_names: tuple[str, ...] | None = None  # D names; None = x y z roll pitch yaw gripper when D = 7
    max_instruction_chars: int = MAX_INSTRUCTION_CHARS  # longer instructions are refused
    prompt_template: str = OPENVLA_PROMPT  # must hold "{instruction}"
    prompt_suffix: str | int | None = "auto"  # token after the prompt: "auto" (SentencePiece "▁"), an id, None
    name: str | None = None  # policy id for ActionChunk.policy; None = "openvla:<checkpoint dir name>"

    def __post_init__(self) -> None:
        if not self.dt > 0:
            raise PolicyError(f"dt must be > 0 s, got {self.dt}")
        if not self.cameras:
            raise PolicyError("cameras is empty: give the robot's camera names (the model sees one of them)")
        if self.camera is not None and self.camera not in self.cameras:
            close = difflib.get_close_matches(self.camera, self.cameras, n=1)
            hint = f" Did you mean {close[0]!r}?" if close else ""
            raise PolicyError(f"camera {self.camera!r} is not one of the cameras {list(self.cameras)}.{hint}")
        if self.action_space not in ACTION_SPACES:
            raise PolicyError(f"unknown action_space {self.action_space!r}: use one of {', '.join(ACTION_SPACES)}")
        if self.max_instruction_chars < 1:
            raise PolicyError(f"max_instruction_chars must be >= 1, got {self.max_instruction_chars}")
        if "{instruction}" not in self.prompt_template:
            raise PolicyError("prompt_template must contain '{instruction}'")

    @property
    def input_camera(self) -> str:
        return self.camera if self.camera is not None else self.cameras[0]


def _dimension_names(config: OpenVlaConfig, dim: int) -> tuple[str, ...]:
    if config.dimension_names is None:
        if dim != len(EE_DIMENSIONS):
            raise PolicyError(f"the statistics have {dim} action dims: give dimension_names for them")
        return EE_DIMENSIONS
    if len(config.dimension_names) != dim:
        raise PolicyError(
            f"dimension_names has {len(config.dimension_names)} names but the checkpoint's statistics have {dim} dims"
        )
    return tuple(config.dimension_names)


class OpenVlaPolicy:
    """An OpenVLA checkpoint as a `Policy` (ros2_vla.policies.base)."""

    def __init__(self, config: OpenVlaConfig) -> None:
        self.config = config
        # a bad path, a model of another kind or a missing unnorm_key fails before any weight is read
        read_architecture(config.checkpoint)
        self.stats: ActionStats = load_action_stats(config.checkpoint, config.unnorm_key)
        names = _dimension_names(config, self.stats.dim)
        self._loaded = load_checkpoint(config.checkpoint, config.quantization, config.device)
        tokenizer = self._loaded.processor.tokenizer
        self.num_bins = self._loaded.arch.n_action_bins
        self.vocab_size = action_vocab_size(self._loaded.arch, tokenizer)
        self.action_ids = action_id_range(self.vocab_size, self.num_bins)
        self._suffix_id = suffix_token_id(tokenizer, config.prompt_suffix)
        self.spec = PolicySpec(
            name=config.name or f"openvla:{Path(config.checkpoint).expanduser().resolve().name}",
            cameras=(config.input_camera,),
            image_size=tuple(self._loaded.processor.image_processor.input_sizes[0][-2:]),  # (H, W) of each tower
            action_space=config.action_space,
            dimension_names=names,
            horizon=1,  # OpenVLA predicts one step per call
            dt=config.dt,
            max_instruction_chars=config.max_instruction_chars,
        )

    @property
    def model(self):
        return self._loaded.model

    @property
    def processor(self):
        return self._loaded.processor

    @property
    def quantization(self) -> str:
        return self._loaded.quantization

    @property
    def device(self) -> torch.device:
        return self._loaded.device

    def prompt(self, instruction: str) -> str:
        """The text handed to the tokenizer for `instruction`."""
        if len(instruction) > self.spec.max_instruction_chars:
            raise PolicyError(
                f"instruction is {len(instruction)} characters, over the limit of {self.spec.max_instruction_chars}: "
                "shorten it (it is not truncated)"
            )
        return format_prompt(instruction, self.config.prompt_template)

    def encode(self, obs: Observation) -> dict:
        """The model inputs for `obs`: input_ids (with the trailing token), attention_mask, pixel_values."""
        camera = self.config.input_camera
        if camera not in obs.images:
            raise PolicyError(f"observation has no image from camera {camera!r} (it has {sorted(obs.images)})")
        image = to_pil(obs.images[camera], camera)
        loaded = self._loaded
        prompt = self.prompt(obs.instruction)
        return model_inputs(loaded.processor, prompt, image, self._suffix_id, loaded.device, loaded.dtype)

    def generate_ids(self, inputs: dict) -> np.ndarray:
        """Vocabulary ids of the D action tokens for encoded inputs, int64 (D,)."""
        with oom_as_policy_error(f"running inference on {self.device}"), torch.inference_mode():
            return greedy_action_ids(self.model, inputs, self.stats.dim, self.action_ids)

    def infer(self, obs: Observation) -> PolicyOutput:
        """One step: tokens uint16 (1, D) bin indices, num_bins, low/high (q01/q99) and normalized (mask)."""
        ids = self.generate_ids(self.encode(obs))
        try:
            bins = token_ids_to_bin_indices(ids, self.vocab_size, self.num_bins, strict=True)
        except ChunkError as exc:
            raise PolicyError(f"decoding failed: {exc}") from exc
        return PolicyOutput(
            tokens=bins.reshape(1, -1),
            num_bins=self.num_bins,
            low=self.stats.low.copy(),
            high=self.stats.high.copy(),
            normalized=self.stats.mask.copy(),
        )
