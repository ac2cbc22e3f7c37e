"""pi0-style flow-matching policy: prefix once per observation, action expert denoises N Euler steps."""

from __future__ import annotations

from ros2_vla.policies.flow.backend import FlowPolicy
from ros2_vla.policies.flow.checkpoint import load_checkpoint, save_checkpoint
from ros2_vla.policies.flow.config import PRESETS, FlowConfig, config_for_robot, get_config
from ros2_vla.policies.flow.loss import flow_matching_loss
from ros2_vla.policies.flow.model import FlowModel, PrefixCache, PrefixInputs
from ros2_vla.policies.flow.norm import NormStats, compute_norm_stats, default_action_mask, identity_norm_stats

__all__ = [
    "PRESETS",
    "FlowConfig",
    "FlowModel",
    "FlowPolicy",
    "NormStats",
    "PrefixCache",
    "PrefixInputs",
    "compute_norm_stats",
    "config_for_robot",
    "default_action_mask",
    "flow_matching_loss",
    "get_config",
    "identity_norm_stats",
    "load_checkpoint",
    "save_checkpoint",
]
