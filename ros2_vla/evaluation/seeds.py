"""Which seeds are for training and which for evaluation (no imports: the CLI reads it for --help).

Scenes and tasks are drawn from a seed. Demos for training are recorded from seeds below
HELD_OUT_SEED (sim_node and `ros2-vla record` start at 0 and count up); `ros2-vla eval` starts at
HELD_OUT_SEED, so an evaluation scores scenes no training demo showed.
"""

HELD_OUT_SEED = 100_000  # the first evaluation seed; training demos use seeds below it


def is_held_out(seed: int) -> bool:
    return seed >= HELD_OUT_SEED
