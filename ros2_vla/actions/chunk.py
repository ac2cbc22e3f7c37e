"""The ActionChunk message as a plain Python value, its validation against a robot, and its decoding to
physical actions.

`Chunk` mirrors `msg/ActionChunk.msg` field for field (the header becomes `stamp` and `frame_id`), so the
bridge node converts a message with one constructor call and every check here runs without ROS.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import NamedTuple

import numpy as np

from ros2_vla.actions.spaces import (
    ACTION_SPACES,
    BASE_FRAME,
    DELTA_FRAMES,
    EE_ABSOLUTE,
    EE_DIMENSIONS,
    EE_FRAME,
    EE_ROTATION,
    EE_SPACES,
    EE_TRANSLATION,
    GRIPPER,
    JOINT_SPACES,
)
from ros2_vla.actions.tokenization import tokens_to_normalized, unnormalize
from ros2_vla.config import RobotConfig
from ros2_vla.errors import ChunkError


def _empty(dtype: type) -> np.ndarray:
    return np.zeros(0, dtype=dtype)


@dataclass(frozen=True, eq=False, kw_only=True)
class Chunk:
    """H future actions of D dimensions from one policy call. Arrays are copied and made read-only."""

    stamp: float = 0.0  # [s] capture time of the observation it was predicted from
    frame_id: str = ""  # frame of ee deltas: "base", "ee", an arm's base or TCP link, "" = the config's frame
    embodiment: str  # robot config name: franka | widowx | aloha | ...
    action_space: str  # ee_delta | ee_absolute | joint_position | joint_delta
    dimension_names: tuple[str, ...]  # D names, e.g. x y z roll pitch yaw gripper
    dt: float  # [s] between steps
    horizon: int  # H steps
    values: np.ndarray = field(default_factory=lambda: _empty(np.float32))  # float32 (H*D,) row-major, or empty
    tokens: np.ndarray = field(default_factory=lambda: _empty(np.uint16))  # uint16 (H*D,) bin indices, or empty
    num_bins: int = 0  # bin edges per dimension when tokens are used (OpenVLA: 256)
    low: np.ndarray = field(default_factory=lambda: _empty(np.float32))  # float32 (D,) physical value at -1
    high: np.ndarray = field(default_factory=lambda: _empty(np.float32))  # float32 (D,) physical value at +1
    normalized: np.ndarray = field(default_factory=lambda: _empty(np.bool_))  # bool (D,): mapped via low/high
    instruction: str = ""
    policy: str = ""  # backend and model id
    sequence: int = 0  # increases by one per chunk from one vla_node
    inference_time: float = 0.0  # [s] the model took

    def __post_init__(self) -> None:
        tokens = np.asarray(self.tokens).reshape(-1)
        if tokens.size and (tokens.dtype.kind not in "iu" or tokens.min() < 0 or tokens.max() > 65535):
            raise ChunkError(f"tokens must be integers in [0, 65535] (uint16 bin indices), got dtype {tokens.dtype}")
        arrays = {
            "values": np.array(self.values, dtype=np.float32).reshape(-1),
            "tokens": tokens.astype(np.uint16),
            "low": np.array(self.low, dtype=np.float32).reshape(-1),
            "high": np.array(self.high, dtype=np.float32).reshape(-1),
            "normalized": np.array(self.normalized, dtype=np.bool_).reshape(-1),
        }
        for name, array in arrays.items():
            array.setflags(write=False)
            object.__setattr__(self, name, array)
        object.__setattr__(self, "dimension_names", tuple(self.dimension_names))

    @property
    def dim(self) -> int:
        """D, the number of action dimensions."""
        return len(self.dimension_names)

    @property
    def uses_tokens(self) -> bool:
        return self.tokens.size > 0


def chunk_from_message(msg) -> Chunk:
    """An ActionChunk message -> Chunk, by field name: an rclpy message or one a bag reader (rosbags)
    decoded alike. Layout and values are checked later by validate_chunk."""
    return Chunk(
        stamp=msg.header.stamp.sec + msg.header.stamp.nanosec * 1e-9,
        frame_id=msg.header.frame_id,
        embodiment=msg.embodiment,
        action_space=msg.action_space,
        dimension_names=tuple(msg.dimension_names),
        dt=msg.dt,
        horizon=msg.horizon,
        values=np.asarray(msg.values, dtype=np.float32),
        tokens=np.asarray(msg.tokens, dtype=np.uint16),
        num_bins=msg.num_bins,
        low=np.asarray(msg.low, dtype=np.float32),
        high=np.asarray(msg.high, dtype=np.float32),
        normalized=np.asarray(msg.normalized, dtype=bool),
        instruction=msg.instruction,
        policy=msg.policy,
        sequence=msg.sequence,
        inference_time=msg.inference_time,
    )


def check_layout(chunk: Chunk) -> None:
    """Robot-independent checks: sizes, steps, token range, bounds, finiteness. Raises ChunkError."""
    H, D = chunk.horizon, chunk.dim
    if D == 0:
        raise ChunkError("chunk has no dimension_names; name each of the D action dimensions")
    if len(set(chunk.dimension_names)) != D:
        raise ChunkError(f"chunk dimension_names repeat a name: {list(chunk.dimension_names)}")
    if H < 1:
        raise ChunkError(f"chunk horizon must be >= 1, got {H}")
    if not (np.isfinite(chunk.dt) and chunk.dt > 0):
        raise ChunkError(f"chunk dt must be a finite number of seconds > 0, got {chunk.dt}")
    has_values, has_tokens = chunk.values.size > 0, chunk.tokens.size > 0
    if has_values == has_tokens:
        which = "both" if has_values else "neither"
        raise ChunkError(f"chunk has {which} values and tokens; fill exactly one (values: continuous, tokens: bins)")
    if has_values:
        if chunk.values.size != H * D:
            raise ChunkError(f"chunk values has {chunk.values.size} numbers, expected horizon*D = {H}*{D} = {H * D}")
        if not np.all(np.isfinite(chunk.values)):
            raise ChunkError("chunk values contain NaN or infinite numbers")
    else:
        if chunk.tokens.size != H * D:
            raise ChunkError(f"chunk tokens has {chunk.tokens.size} entries, expected horizon*D = {H}*{D} = {H * D}")
        if chunk.num_bins < 2:
            raise ChunkError(f"chunk uses tokens but num_bins is {chunk.num_bins}; set it (OpenVLA: 256)")
        if int(chunk.tokens.max()) >= chunk.num_bins:
            raise ChunkError(f"chunk token {int(chunk.tokens.max())} is >= num_bins {chunk.num_bins}")
    _check_bounds(chunk)


def _check_bounds(chunk: Chunk) -> None:
    D = chunk.dim
    sizes = (chunk.low.size, chunk.high.size, chunk.normalized.size)
    if sizes == (0, 0, 0):
        return  # nothing normalized: every dim passes through
    if sizes != (D, D, D):
        raise ChunkError(f"chunk low/high/normalized have lengths {sizes}; each must be D = {D} (or all empty)")
    m = chunk.normalized
    low, high = chunk.low[m], chunk.high[m]
    if not (np.all(np.isfinite(low)) and np.all(np.isfinite(high))):
        raise ChunkError("chunk low/high are NaN or infinite on a normalized dimension")
    bad = np.flatnonzero(low > high)
    if bad.size:
        name = np.asarray(chunk.dimension_names)[m][bad[0]]
        raise ChunkError(f"chunk low > high for dimension {name!r}; low is the value at -1, high at +1")


def validate_chunk(chunk: Chunk, robot: RobotConfig) -> None:
    """Check a chunk fits `robot` and is internally consistent; raises ChunkError naming the problem."""
    if chunk.embodiment != robot.name:
        raise ChunkError(f"chunk is for embodiment {chunk.embodiment!r}, this bridge drives {robot.name!r}")
    if chunk.action_space not in ACTION_SPACES:
        raise ChunkError(f"unknown action_space {chunk.action_space!r}; known: {', '.join(ACTION_SPACES)}")
    check_layout(chunk)
    if chunk.action_space in EE_SPACES:
        _check_ee_names(chunk, robot)
        frame = resolve_delta_frame(chunk.frame_id, robot)
        if chunk.action_space == EE_ABSOLUTE and frame != BASE_FRAME:
            raise ChunkError(f"ee_absolute poses are in the arm base frame; frame_id {chunk.frame_id!r} is the TCP")
    else:
        _check_joint_names(chunk, robot)


def _check_ee_names(chunk: Chunk, robot: RobotConfig) -> None:
    if len(robot.arms) != 1:
        raise ChunkError(f"{chunk.action_space} needs a single-arm robot; {robot.name} has {len(robot.arms)} arms")
    known = set(EE_DIMENSIONS)
    if robot.action.space in EE_SPACES:
        known |= set(robot.action.dimension_names)
    unknown = [n for n in chunk.dimension_names if n not in known]
    if unknown:
        raise ChunkError(f"{chunk.action_space} chunk names unknown dimensions {unknown}; known: {sorted(known)}")


def _check_joint_names(chunk: Chunk, robot: RobotConfig) -> None:
    grippers = [arm.gripper.joint for arm in robot.arms if arm.gripper is not None]
    known = set(robot.joint_names) | set(grippers)
    if len(grippers) == 1:
        known.add(GRIPPER)  # a single-arm policy may call its gripper just "gripper"
    if robot.action.space in JOINT_SPACES:
        known |= set(robot.action.dimension_names)
    unknown = [n for n in chunk.dimension_names if n not in known]
    if unknown:
        raise ChunkError(
            f"{chunk.action_space} chunk names dimensions {unknown} that {robot.name} does not have; "
            f"known: {sorted(known)}"
        )
    missing = [n for n in robot.joint_names if n not in chunk.dimension_names]
    if missing:
        raise ChunkError(f"{chunk.action_space} chunk must command every arm joint of {robot.name}; missing {missing}")


def resolve_delta_frame(frame_id: str, robot: RobotConfig) -> str:
    """A chunk's frame_id to "base" or "ee": "" is the config's `action.frame`; an arm's base link means
    "base", its TCP link "ee"."""
    if frame_id == "":
        return robot.action.frame
    if frame_id in DELTA_FRAMES:
        return frame_id
    for arm in robot.arms:
        if frame_id == arm.chain.base_link:
            return BASE_FRAME
        if frame_id == arm.chain.ee_link:
            return EE_FRAME
    links = [link for arm in robot.arms for link in (arm.chain.base_link, arm.chain.ee_link)]
    raise ChunkError(f"chunk frame_id {frame_id!r} is unknown; use '', {', '.join(DELTA_FRAMES)} or one of {links}")


def chunk_to_array(chunk: Chunk) -> np.ndarray:
    """Physical actions, shape (H, D), float64: tokens decoded to bin centers, normalized dims mapped
    through low/high, other dims untouched. Raises ChunkError on a malformed chunk."""
    check_layout(chunk)
    shape = (chunk.horizon, chunk.dim)
    if chunk.uses_tokens:
        x = tokens_to_normalized(chunk.tokens, chunk.num_bins).reshape(shape)
    else:
        x = chunk.values.astype(np.float64).reshape(shape)
    if chunk.normalized.any():
        x = unnormalize(x, chunk.low, chunk.high, chunk.normalized)
    return x


class EeComponents(NamedTuple):
    """Physical ee actions split by name into translation, rotation and gripper columns."""

    xyz: np.ndarray  # (H, 3) [m], 0 where the chunk has no such dimension
    rpy: np.ndarray  # (H, 3) [rad], 0 where absent
    gripper: np.ndarray | None  # (H,) raw gripper action, None when the chunk has no gripper dimension
    present: np.ndarray  # bool (6,): which of x y z roll pitch yaw the chunk names


def ee_components(actions: np.ndarray, dimension_names: tuple[str, ...]) -> EeComponents:
    """Split physical ee actions (H, D) by name into translation, rotation and gripper columns."""
    actions = np.asarray(actions, dtype=np.float64)
    index = {name: i for i, name in enumerate(dimension_names)}
    pose = np.zeros((actions.shape[0], 6))
    present = np.zeros(6, dtype=bool)
    for k, name in enumerate(EE_TRANSLATION + EE_ROTATION):
        if name in index:
            pose[:, k] = actions[:, index[name]]
            present[k] = True
    gripper = actions[:, index[GRIPPER]].copy() if GRIPPER in index else None
    return EeComponents(pose[:, :3], pose[:, 3:], gripper, present)


__all__ = [
    "Chunk",
    "EeComponents",
    "check_layout",
    "chunk_to_array",
    "ee_components",
    "resolve_delta_frame",
    "validate_chunk",
]
