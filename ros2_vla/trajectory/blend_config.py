"""How the bridge takes over each new chunk: the blend modes and their settings (no numerics here, so the
CLI can offer the choices without loading the compiled timing; `blending.py` does the work)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ros2_vla.errors import TrajectoryError
from ros2_vla.trajectory.ensemble import ACT_ENSEMBLE_M

BLEND_MODES = ("replace", "skip", "ensemble")  # what each does: blending.py's docstring


@dataclass(frozen=True)
class BlendConfig:
    """How the bridge takes over each new chunk: the blend mode and its settings."""

    mode: str = "skip"  # one of BLEND_MODES
    blend_steps: int = 2  # waypoints over which the old path hands over to the new one ("replace", "skip")
    ensemble_m: float = ACT_ENSEMBLE_M  # ACT weight decay per chunk age ("ensemble")
    max_chunks: int = 64  # chunks kept for "ensemble"; the oldest go first

    def __post_init__(self) -> None:
        if self.mode not in BLEND_MODES:
            raise TrajectoryError(f"blend mode {self.mode!r} is unknown; use one of {BLEND_MODES}")
        if self.blend_steps < 0:
            raise TrajectoryError(f"blend_steps must be >= 0 (0: switch at once); got {self.blend_steps}")
        if not (self.ensemble_m >= 0.0 and np.isfinite(self.ensemble_m)):
            raise TrajectoryError(f"ensemble_m must be finite and >= 0 (ACT: {ACT_ENSEMBLE_M}); got {self.ensemble_m}")
        if self.max_chunks < 1:
            raise TrajectoryError(f"max_chunks must be >= 1; got {self.max_chunks}")
