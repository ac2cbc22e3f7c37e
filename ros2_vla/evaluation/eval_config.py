"""What one evaluation is (`EvalConfig`), apart from the harness that runs it, so the command line can be
made from its fields without loading the simulator."""

from __future__ import annotations

from dataclasses import dataclass

from ros2_vla.config_args import setting
from ros2_vla.errors import ConfigError
from ros2_vla.evaluation.seeds import HELD_OUT_SEED
from ros2_vla.sim.phrasings import DEFAULT_PHRASING, PHRASINGS
from ros2_vla.trajectory.blend_config import BlendConfig

DDS_DELAY = 0.002  # [s] delivery of a message between nodes on one machine (run_episode's default delays)


@dataclass(frozen=True)
class EvalConfig:
    """One evaluation: which seeds, how the episodes run. `ros2-vla eval`'s options are these fields."""

    episodes: int = setting(50, "episodes, one per seed")
    seed: int = setting(HELD_OUT_SEED, f"first seed (training demos use seeds below {HELD_OUT_SEED})")
    kind: str = setting(
        "",
        "task kind for every episode: pick | place | bimanual_pick (default: drawn from each seed, as sim_node does)",
    )
    phrasing: str = setting(
        DEFAULT_PHRASING,
        "instruction wording: the template, training paraphrases (train) or "
        "held-out paraphrases (heldout); ros2_vla.sim.phrasings",
        choices=PHRASINGS,
    )
    time_limit: float = setting(30.0, "[s] sim time before an episode counts as failed")
    policy_period: float | None = setting(
        None,
        "[s] sim time between chunk requests (default: one per frame of the "
        "fastest camera, 0.1 s for franka; vla_node asks at least that often)",
    )
    video_episodes: int = setting(3, "film the first N episodes (0: no video; needs an output folder)")
    video_camera: str = setting("", "camera filmed (default: the robot's first world-mounted camera)")
    blend: BlendConfig = BlendConfig()  # the bridge's chunk blending (bridge_node's blend_* parameters)
    chunk_delay: float = setting(
        DDS_DELAY,
        "[s] from an observation to its chunk reaching the bridge, the arm "
        "moving on meanwhile (`ros2-vla demo` prints what the graph gives); the default is "
        "DDS delivery alone",
    )

    def __post_init__(self) -> None:
        if self.episodes < 1:
            raise ConfigError(f"episodes must be >= 1, got {self.episodes}")
        if self.seed < 0:
            raise ConfigError(f"seed must be >= 0, got {self.seed}")
        if self.phrasing not in PHRASINGS:
            raise ConfigError(f"unknown phrasing {self.phrasing!r}; use one of {PHRASINGS}")
        if not (self.time_limit > 0 and (self.policy_period is None or self.policy_period > 0)):
            raise ConfigError(f"time_limit {self.time_limit} and policy_period {self.policy_period} must be > 0 [s]")
        if not 0 <= self.chunk_delay < float("inf"):
            raise ConfigError(f"chunk_delay must be finite and >= 0 [s], got {self.chunk_delay}")
        if self.video_episodes < 0:
            raise ConfigError(f"video_episodes must be >= 0, got {self.video_episodes}")

    @property
    def seeds(self) -> range:
        return range(self.seed, self.seed + self.episodes)
