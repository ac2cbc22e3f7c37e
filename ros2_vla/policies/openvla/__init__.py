"""The `openvla` backend: real OpenVLA checkpoints, loaded natively (no remote code), as a Policy.

Reading a checkpoint: `checkpoint` (config.json and other JSON), `architecture` (config.json's fields as
an architecture), `backbones` (Prismatic backbone ids), `weights` (sharded safetensors, key checks),
`processor` and `image_processing` (tokenizer and OpenVLA's image steps), `loading` (devices, dtypes,
quantization via `quantize`, out-of-memory). The network: `vit` (DINOv2 and SigLIP towers with timm's
names), `model` (backbone, projector, Llama). Acting: `prompt`, `inputs`, `decoding` (greedy, constrained
to action ids, with a cache), `norm_stats` (q01/q99/mask by unnorm_key), `backend` (OpenVlaConfig,
OpenVlaPolicy). For tests and benchmarks: `random_checkpoint` (the published layout, random weights),
`published_stats` (OpenVLA's bridge_orig numbers).
"""

from ros2_vla.policies.openvla.backend import OpenVlaConfig, OpenVlaPolicy

__all__ = ["OpenVlaConfig", "OpenVlaPolicy"]
