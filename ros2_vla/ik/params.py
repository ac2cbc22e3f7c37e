"""Settings and results of the damped-least-squares IK."""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

import numpy as np

from ros2_vla.errors import ConfigError


@dataclass(frozen=True)
class IkParams:
    """Settings of the damped-least-squares IK, checked when made."""

    damping: float = (
        1e-2  # DLS damping lambda [m or rad per rad]: larger is smoother near singularities, slower to converge
    )
    max_iterations: int = 100  # pose updates per target before giving up (converged=False)
    position_tolerance: float = 1e-4  # [m] TCP position error counted as reached
    rotation_tolerance: float = 1e-3  # [rad] TCP rotation error counted as reached
    nullspace_gain: float = 0.02  # fraction of (home - q) added per iteration in the task null space (redundant arms)
    max_step: float = 0.2  # [rad] largest joint change of one iteration; the step is scaled, not clipped per joint

    def __post_init__(self) -> None:
        for name in ("damping", "position_tolerance", "rotation_tolerance", "max_step"):
            value = getattr(self, name)
            if not (value > 0.0 and np.isfinite(value)):
                raise ConfigError(f"IkParams.{name} must be finite and > 0; got {value}")
        if self.max_iterations < 1:
            raise ConfigError(f"IkParams.max_iterations must be >= 1; got {self.max_iterations}")
        if not (0.0 <= self.nullspace_gain <= 1.0):
            raise ConfigError(
                f"IkParams.nullspace_gain must be in [0, 1] (0: no pull to home); got {self.nullspace_gain}"
            )


class IkResult(NamedTuple):
    """The IK answer for one target: joint positions, remaining errors, iterations, condition number, convergence."""

    q: np.ndarray  # [rad] (n,) the best joint positions found, within the joint limits
    position_error: float  # [m] TCP distance from the target at q
    rotation_error: float  # [rad] TCP rotation angle from the target at q
    iterations: int  # pose updates made
    condition_number: float  # of the TCP Jacobian at q (sigma_max / sigma_min; inf when singular)
    converged: bool  # both errors within tolerance


class ChunkIk(NamedTuple):
    """IK of H successive targets, each seeded from the solution before it."""

    positions: np.ndarray  # [rad] (H, n)
    position_errors: np.ndarray  # [m] (H,)
    rotation_errors: np.ndarray  # [rad] (H,)
    condition_numbers: np.ndarray  # (H,)
    converged: np.ndarray  # bool (H,)
    iterations: np.ndarray  # int (H,)
