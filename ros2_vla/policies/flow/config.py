"""Shapes of a pi0-style flow-matching policy, with presets found by name.

A `FlowConfig` fixes the architecture (what `model.safetensors` must match) and what the chunks look
like (action space, dimension names, dt). It is written to `config.json` beside the weights.

Presets:
- `tiny`: unit tests; builds and runs in milliseconds on a CPU, hash text encoder (no MiniLM).
- `compact`: meant for the default policies (models/): 96x96 cameras, 16 instruction-conditioned
  keypoints per camera, the TCP pose beside the joint state, a goal head for the training-only goal
  loss, 1.3M trainable parameters
  around the frozen MiniLM; trains on a 2-core CPU in well under an hour.
- `small`: a larger CPU policy, meant for >= 10 Hz end-to-end on a 2-core CPU with two 224x224
  cameras (see benchmarks/flow_bench.py for the measured rate); slow to train without a GPU.
- `pi0`: pi0-scale shapes (SigLIP-So400m-like vision, Gemma-2B-like prefix, ~300M-parameter action
  expert, chunk 50, 10 steps) for a GPU benchmark; never instantiated in CI.
"""

from __future__ import annotations

import dataclasses
import difflib
from dataclasses import dataclass
from typing import Any

from ros2_vla.actions.spaces import ACTION_SPACES, JOINT_VELOCITY
from ros2_vla.errors import PolicyError

TEXT_ENCODERS = ("minilm", "hash")
# The chunk contract's action spaces a flow model may be configured for (joint_velocity: not yet; no demos hold it).
FLOW_ACTION_SPACES = tuple(s for s in ACTION_SPACES if s != JOINT_VELOCITY)
ARCHITECTURE = "ros2_vla.flow"  # config.json's "architecture": refuses checkpoints of other models


@dataclass(frozen=True)
class FlowConfig:
    """A flow policy's architecture and the layout of its chunks, as saved in `config.json`."""

    # -- observation
    image_size: tuple[int, int] = (224, 224)  # (height, width) [px] every camera is resized to
    cameras: tuple[str, ...] = ("scene", "wrist")  # camera names, in the model's input order
    state_dim: int = 8  # S: proprioception values (arm joints, then grippers, in config order)
    tcp_state: bool = False  # also read each arm's TCP pose, by FK of the joint state (flow/proprio.py)
    robot: str = ""  # config/<robot>.yaml whose kinematics give the TCP pose (config_for_robot sets it)
    # -- vision encoder (trained from scratch): conv stem down to patch_size, then ViT blocks per camera
    patch_size: int = 32  # [px] side of the image area one token covers; its powers of 2 become stride-2 convs
    vision_width: int = 256  # channels of an image token
    vision_depth: int = 2  # ViT blocks run per camera before the shared prefix (0: conv stem only)
    keypoints: int = 0  # K instruction-conditioned image points per camera, one extra token each camera (0: none)
    # -- language
    text_encoder: str = "minilm"  # "minilm": frozen all-MiniLM-L6-v2 token features; "hash": trainable word hash
    text_max_tokens: int = 48  # longer instructions are refused (MiniLM counts [CLS] and [SEP])
    hash_vocab: int = 4096  # buckets of the word-hash embedding (text_encoder "hash" only)
    # -- prefix transformer over [image tokens, text tokens, state token], run once per observation
    width: int = 256  # prefix token width
    depth: int = 4  # prefix transformer blocks
    heads: int = 4  # prefix attention heads (width must divide)
    prefix_mlp_ratio: int = 4  # prefix MLP hidden size / width (Gemma 2B: 8)
    # -- action expert: H action tokens attending to themselves and to the cached prefix keys/values
    expert_width: int = 256  # action token width
    expert_depth: int = 4  # expert blocks, each with its own keys/values of the prefix
    expert_heads: int = 4  # expert attention heads (expert_width must divide)
    goal_head: bool = False  # a training-only head that predicts where the demo goes next (see training/goals.py)
    mlp_ratio: int = 4  # MLP hidden size / width in the vision encoder and the action expert
    # -- actions
    horizon: int = 10  # H: steps per chunk
    action_dim: int = 7  # D: values per step
    flow_steps: int = 10  # N: Euler steps from noise (t=1) to actions (t=0)
    action_space: str = "ee_delta"  # ee_delta | ee_absolute | joint_position | joint_delta
    dimension_names: tuple[str, ...] = ("x", "y", "z", "roll", "pitch", "yaw", "gripper")  # D names
    dt: float = 0.1  # [s] between chunk steps
    preset: str = "custom"  # the preset this came from, for the record only

    def __post_init__(self) -> None:
        # JSON gives lists: store tuples so configs compare and hash equal after a round trip.
        for name in ("image_size", "cameras", "dimension_names"):
            object.__setattr__(self, name, tuple(getattr(self, name)))
        h, w = self.image_size if len(self.image_size) == 2 else (0, 0)
        _require(
            len(self.image_size) == 2 and h > 0 and w > 0,
            f"image_size must be (height, width) > 0, got {self.image_size}",
        )
        _require(
            h % self.patch_size == 0 and w % self.patch_size == 0 and self.patch_size > 0,
            f"image_size {self.image_size} must be a multiple of patch_size {self.patch_size}",
        )
        _require(
            len(self.cameras) > 0 and len(set(self.cameras)) == len(self.cameras) and all(self.cameras),
            f"cameras must be distinct non-empty names, got {self.cameras}",
        )
        _require(
            self.text_encoder in TEXT_ENCODERS,
            f"text_encoder {self.text_encoder!r} unknown; use one of {TEXT_ENCODERS}",
        )
        _require(
            self.action_space in FLOW_ACTION_SPACES,
            f"action_space {self.action_space!r} unknown; use one of {FLOW_ACTION_SPACES}",
        )
        _require(
            len(self.dimension_names) == self.action_dim,
            f"dimension_names has {len(self.dimension_names)} names but action_dim is {self.action_dim}",
        )
        for name in (
            "state_dim",
            "vision_width",
            "text_max_tokens",
            "hash_vocab",
            "width",
            "depth",
            "heads",
            "prefix_mlp_ratio",
            "expert_width",
            "expert_depth",
            "expert_heads",
            "mlp_ratio",
            "horizon",
            "action_dim",
            "flow_steps",
        ):
            _require(
                int(getattr(self, name)) == getattr(self, name) and getattr(self, name) > 0,
                f"{name} must be a positive integer, got {getattr(self, name)!r}",
            )
        _require(self.vision_depth >= 0, f"vision_depth must be >= 0, got {self.vision_depth}")
        _require(
            int(self.keypoints) == self.keypoints and self.keypoints >= 0,
            f"keypoints must be an integer >= 0, got {self.keypoints!r}",
        )
        _require(
            self.keypoints == 0 or self.patch_size % 8 == 0,
            f"keypoints read the stem's stride-4 features: patch_size {self.patch_size} must be a multiple of 8",
        )
        _require(self.width % self.heads == 0, f"width {self.width} must be a multiple of heads {self.heads}")
        _require(
            self.expert_width % self.expert_heads == 0,
            f"expert_width {self.expert_width} must be a multiple of expert_heads {self.expert_heads}",
        )
        _require(
            self.expert_width % 2 == 0, f"expert_width must be even (sin/cos time features), got {self.expert_width}"
        )
        _require(
            self.vision_width % 64 == 0 or self.vision_depth == 0,
            f"vision_width {self.vision_width} must be a multiple of 64 (the vision head size) when vision_depth > 0",
        )
        _require(self.dt > 0, f"dt must be > 0 [s], got {self.dt}")

    @property
    def tokens_per_camera(self) -> int:
        return (self.image_size[0] // self.patch_size) * (self.image_size[1] // self.patch_size)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @staticmethod
    def from_dict(d: dict[str, Any]) -> FlowConfig:
        """Rebuild from `to_dict` output; unknown or missing keys raise PolicyError."""
        known = {f.name for f in dataclasses.fields(FlowConfig)}
        unknown = sorted(set(d) - known)
        _require(not unknown, f"unknown FlowConfig keys {unknown}")
        try:
            return FlowConfig(**d)
        except TypeError as e:
            raise PolicyError(f"FlowConfig: {e}") from e


def _require(ok: bool, message: str) -> None:
    if not ok:
        raise PolicyError(f"FlowConfig: {message}")


PRESETS: dict[str, FlowConfig] = {
    "tiny": FlowConfig(
        image_size=(32, 32),
        patch_size=8,
        vision_width=64,
        vision_depth=1,
        text_encoder="hash",
        text_max_tokens=16,
        hash_vocab=256,
        width=32,
        depth=1,
        heads=2,
        expert_width=32,
        expert_depth=1,
        expert_heads=2,
        mlp_ratio=2,
        prefix_mlp_ratio=2,
        horizon=4,
        flow_steps=10,
        preset="tiny",
    ),
    "compact": FlowConfig(
        image_size=(96, 96),
        patch_size=16,
        vision_width=128,
        vision_depth=1,
        keypoints=16,
        tcp_state=True,
        width=128,
        depth=2,
        heads=4,
        expert_width=128,
        expert_depth=2,
        expert_heads=4,
        goal_head=True,
        preset="compact",
    ),
    "small": FlowConfig(preset="small"),
    "pi0": FlowConfig(
        image_size=(224, 224),
        cameras=("base", "left_wrist", "right_wrist"),
        state_dim=32,
        patch_size=14,
        vision_width=1152,
        vision_depth=27,
        text_max_tokens=48,
        width=2048,
        depth=18,
        heads=8,
        prefix_mlp_ratio=8,
        expert_width=1024,
        expert_depth=18,
        expert_heads=8,
        mlp_ratio=4,
        horizon=50,
        action_dim=32,
        flow_steps=10,
        action_space="joint_position",
        dimension_names=tuple(f"a{i}" for i in range(32)),
        dt=0.02,
        preset="pi0",
    ),
}


def get_config(name: str, **overrides: Any) -> FlowConfig:
    """The preset `name` ("tiny", "compact", "small", "pi0") with `overrides` applied; a near miss gets a suggestion."""
    if name not in PRESETS:
        close = difflib.get_close_matches(name, PRESETS, n=1)
        hint = f"; did you mean {close[0]!r}?" if close else ""
        raise PolicyError(f"unknown flow preset {name!r}{hint} (known: {', '.join(PRESETS)})")
    try:
        return dataclasses.replace(PRESETS[name], **overrides)
    except TypeError as e:
        raise PolicyError(f"flow preset {name!r}: bad override: {e}") from e


def robot_state_dim(robot: Any) -> int:
    """Proprioception size of a RobotConfig: every arm joint, then one value per gripper."""
    return sum(len(arm.chain.joints) + (arm.gripper is not None) for arm in robot.arms)


def config_for_robot(name: str, robot: Any, **overrides: Any) -> FlowConfig:
    """Preset `name` with cameras, state size and action layout taken from a RobotConfig
    (`ros2_vla.config.load_robot_config`): state = every arm joint, then each gripper."""
    fields = dict(
        robot=robot.name,
        cameras=tuple(c.name for c in robot.cameras),
        state_dim=robot_state_dim(robot),
        action_space=robot.action.space,
        dimension_names=tuple(robot.action.dimension_names),
        action_dim=len(robot.action.dimension_names),
        dt=robot.action.dt,
    )
    fields.update(overrides)
    return get_config(name, **fields)
