"""Bridge status codes (mirroring msg/BridgeStatus.msg) and the status record the node publishes."""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum


class BridgeCode(IntEnum):
    """Same values as the BridgeStatus.msg constants (test_bridge_status checks it)."""

    OK = 0
    DECELERATE_FOR_SINGULARITY = 1
    HALT_FOR_SINGULARITY = 2
    JOINT_LIMIT = 3
    WORKSPACE_LIMIT = 4
    STALE_INPUT = 5
    DISARMED = 6
    CHUNK_REJECTED = 7
    IK_FAILED = 8
    IDLE = 9
    TRACKING_ERROR = 10
    CONTROLLER_ERROR = 11
    DECELERATE_FOR_COLLISION = 12
    HALT_FOR_COLLISION = 13


@dataclass(frozen=True)
class BridgeState:
    """What /vla/bridge/status says."""

    code: BridgeCode
    message: str = ""
    enabled: bool = False
    chunk_sequence: int = 0
    ik_position_residual: float = 0.0  # [m] worst over the chunk
    ik_rotation_residual: float = 0.0  # [rad] worst over the chunk
    condition_number: float = 0.0  # worst over the chunk
    speed_scale: float = 1.0  # 1 nominal, < 1 slowed near a singularity or a collision (the slowest step)
    chunk_lateness: float = 0.0  # [s] the chunk arrived this long after its first step's target time
    switch_jump: float = 0.0  # [rad] largest joint change the chunk made to the command one step (dt) ahead
