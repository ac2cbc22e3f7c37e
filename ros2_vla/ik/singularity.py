"""Slowing down near kinematic singularities, after MoveIt Servo's idea.

MoveIt Servo watches the condition number of the Jacobian: below a lower threshold the arm moves at full
speed, between it and a hard-stop threshold the commanded motion is scaled down linearly, past the hard
stop it halts; moving away from a singularity is allowed up to a higher threshold so the arm can back out.
"""

from __future__ import annotations

import numpy as np

from ros2_vla.errors import ConfigError


def condition_number(J: np.ndarray) -> float:
    """sigma_max / sigma_min of the Jacobian (6, n) over its min(6, n) singular values; inf when singular."""
    sigma = np.linalg.svd(J, compute_uv=False)
    return float(sigma[0] / sigma[-1]) if sigma[-1] > 0.0 else float("inf")


def check_thresholds(decelerate: float, halt: float) -> None:
    """ConfigError unless 0 < decelerate < halt (SafetySpec.singularity_decelerate / _halt)."""
    if not (0.0 < decelerate < halt):
        raise ConfigError(
            f"singularity thresholds need 0 < decelerate < halt; got {decelerate}, {halt} (safety config)"
        )


def singularity_scale(
    condition: float, decelerate: float, halt: float, approaching: bool = True, leaving_multiplier: float = 1.0
) -> float:
    """Speed factor in [0, 1]: 1 up to `decelerate`, linear down to 0 at `halt`, 0 beyond (and for NaN).

    decelerate < halt are condition numbers (SafetySpec.singularity_decelerate / _halt). When the motion
    leads away from the singularity (approaching=False, e.g. the next step's condition number is lower),
    both thresholds are multiplied by leaving_multiplier >= 1 (MoveIt Servo uses 2) so the arm can back out.
    """
    check_thresholds(decelerate, halt)
    if leaving_multiplier < 1.0:
        raise ConfigError(f"leaving_multiplier must be >= 1; got {leaving_multiplier}")
    if not approaching:
        decelerate, halt = decelerate * leaving_multiplier, halt * leaving_multiplier
    if np.isnan(condition) or condition >= halt:
        return 0.0
    if condition <= decelerate:
        return 1.0
    return float((halt - condition) / (halt - decelerate))
