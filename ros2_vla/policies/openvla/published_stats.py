"""Action statistics OpenVLA published with its checkpoints, for tiny test models and benchmarks.

Numbers are `norm_stats["bridge_orig"]["action"]` of openvla/openvla-7b (BridgeData V2 as released on
the project website): 1st and 99th percentiles of each action dimension over the training set, in the
dataset's units ([m] per step for x y z, [rad] per step for roll pitch yaw, gripper 0 = closed .. 1 = open).
The gripper is not normalized (mask False): its token's bin center passes through unchanged.
"""

from __future__ import annotations

BRIDGE_ORIG_KEY = "bridge_orig"

BRIDGE_ORIG_ACTION = {
    "q01": [
        -0.02872725307941437,
        -0.04170349963009357,
        -0.026093858778476715,
        -0.08092105075716972,
        -0.09288699507713317,
        -0.20718276381492615,
        0.0,
    ],
    "q99": [
        0.028309678435325586,
        0.040855254605412394,
        0.040161586627364146,
        0.08192047759890528,
        0.07792850524187081,
        0.20382574498653397,
        1.0,
    ],
    "mask": [True, True, True, True, True, True, False],
}


def bridge_orig_norm_stats() -> dict:
    """A fresh `{unnorm_key: {"action": {...}}}` dict in OpenVLA's config.json layout (safe to mutate)."""
    return {BRIDGE_ORIG_KEY: {"action": {k: list(v) for k, v in BRIDGE_ORIG_ACTION.items()}}}
