"""What one evaluation is (`EvalConfig`) and one episode of it (`EpisodeConfig`), apart from the harness that
runs them, so the command line can be made from their fields without loading the simulator."""

from __future__ import annotations

from dataclasses import dataclass

from ros2_vla.collision_config import CHECK_COLLISIONS
from ros2_vla.config_args import setting
from ros2_vla.errors import ConfigError
from ros2_vla.evaluation.seeds import HELD_OUT_SEED
from ros2_vla.parameters import EXPERT_PERIOD
from ros2_vla.sim.phrasings import DEFAULT_PHRASING, PHRASINGS
from ros2_vla.trajectory.blend_config import BlendConfig

DDS_DELAY = 0.002  # [s] delivery of a message between nodes on one machine (run_episode's default delays)


def check_timing(
    time_limit: float, policy_period: float, chunk_delay: float, success_period: float = 0.1, command_delay: float = 0.0
) -> None:
    """ConfigError unless the episode time limit and periods [s] are > 0 and the delays [s] finite and >= 0."""
    if not (time_limit > 0 and policy_period > 0 and success_period > 0):
        raise ConfigError(
            f"time_limit {time_limit}, policy_period {policy_period} and success_period {success_period} "
            "must all be > 0 [s]"
        )
    for name, delay in (("chunk_delay", chunk_delay), ("command_delay", command_delay)):
        if not 0 <= delay < float("inf"):
            raise ConfigError(f"{name} must be finite and >= 0 [s], got {delay}")


@dataclass(frozen=True)
class EpisodeConfig:
    """How one episode runs (`episode.run_episode`), apart from the robot, the scene and the policy."""

    instruction: str = ""  # what the policy is told ("" = the task's template; a paraphrase for language tests)
    time_limit: float = 30.0  # [s] of sim time before the episode counts as failed
    policy_period: float = EXPERT_PERIOD  # [s] between chunk requests (sim_node's expert_period)
    success_period: float = 0.1  # [s] between success checks (sim_node checks at 10 Hz)
    cameras: tuple[str, ...] = ()  # names rendered into each observation
    blend: BlendConfig | None = None  # the bridge's blending (bridge_node's default when None)
    chunk_delay: float = DDS_DELAY  # [s] from an observation to the bridge taking its chunk (any length)
    command_delay: float = DDS_DELAY  # [s] from a bridge tick to the controller taking it (below every period)
    start_jitter: float = 0.0  # [rad] each arm joint starts up to this far from home (`Simulation.reset`)
    disturbance: float = 0.0  # [rad] std of the sim's wandering servo offset (`Simulation.reset`; 0: none)
    slip: float = 0.0  # chance [0, 1] that the first grasp is made to fail (`ros2_vla.sim.slip`; 0: never)
    check_collisions: bool = CHECK_COLLISIONS  # the bridge checks each planned step for collisions
    hold: float = 0.0  # [s] the episode runs on this long after success, no chunks asked for (a recorded demo's end)

    def __post_init__(self) -> None:
        check_timing(self.time_limit, self.policy_period, self.chunk_delay, self.success_period, self.command_delay)
        if not 0 <= self.hold < float("inf"):
            raise ConfigError(f"hold must be finite and >= 0 [s], got {self.hold}")


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
    check_collisions: bool = CHECK_COLLISIONS  # the bridge checks planned steps for collisions
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
        # policy_period None: one request per camera frame, resolved when the robot is known
        check_timing(self.time_limit, 1.0 if self.policy_period is None else self.policy_period, self.chunk_delay)
        if self.video_episodes < 0:
            raise ConfigError(f"video_episodes must be >= 0, got {self.video_episodes}")

    @property
    def seeds(self) -> range:
        return range(self.seed, self.seed + self.episodes)
