"""The `openvla` backend: OpenVLA-format Vision2Seq checkpoints (4-bit, 8-bit, bf16, fp32) as a Policy.

Modules: `checkpoint` (JSON checks of a dir), `loading` (quantization, devices, OOM), `norm_stats`
(q01/q99/mask by unnorm_key), `prompt` (OpenVLA's prompt and trailing token), `inputs` (image and prompt
to tensors), `decoding` (greedy, constrained to action ids), `backend` (OpenVlaConfig, OpenVlaPolicy),
`tiny` (random test checkpoints), `published_stats` (OpenVLA's bridge_orig numbers).
"""

from ros2_vla.policies.openvla.backend import OpenVlaConfig, OpenVlaPolicy

__all__ = ["OpenVlaConfig", "OpenVlaPolicy"]
