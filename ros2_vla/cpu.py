"""How many CPU cores this process may use (its affinity mask, not the machine's count)."""

from __future__ import annotations

import os


def cpu_cores() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


def inference_threads() -> int:
    """Torch threads for a policy running beside a robot graph: one core fewer than this process may
    use, at least one. Measured on the 2-core machine with other processes busy: the flow small preset
    ran at 17 Hz on 1 thread but under 3 Hz on 2, whose OpenMP threads spin-wait for a core held by
    someone else; the tiny 4-bit OpenVLA took 28 ms a step on two threads instead of 20 on one, and the
    spinning workers delayed vla_node's chunk delivery by up to 4 ms. The spare core serves the node's
    callbacks, DDS, the bridge and the sim."""
    return max(1, cpu_cores() - 1)
