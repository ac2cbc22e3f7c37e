"""bitsandbytes quantization of the language model's linear layers, as transformers' 4-bit/8-bit loading does.

4-bit is NF4 (`Linear4bit`, weights in 64-wide blocks, matmuls in `compute_dtype`); 8-bit is LLM.int8
(`Linear8bitLt`, fp16 activations, outlier threshold 6). The output head (`lm_head`) stays unquantized,
as transformers leaves it, because the action tokens are read from its scores. The vision backbone and
the projector are never quantized (OpenVLA's 4-bit recipe).
"""

from __future__ import annotations

import torch
from torch import nn

KEEP = ("lm_head",)  # module names left in full precision


def _linear4bit(layer: nn.Linear, compute_dtype: torch.dtype) -> nn.Module:
    import bitsandbytes as bnb

    q = bnb.nn.Linear4bit(
        layer.in_features,
        layer.out_features,
        bias=layer.bias is not None,
        compute_dtype=compute_dtype,
        quant_type="nf4",
        device="meta",
    )
    q.weight = bnb.nn.Params4bit(layer.weight.data, requires_grad=False, quant_type="nf4")
    return q


def _linear8bit(layer: nn.Linear) -> nn.Module:
    import bitsandbytes as bnb

    q = bnb.nn.Linear8bitLt(
        layer.in_features,
        layer.out_features,
        bias=layer.bias is not None,
        has_fp16_weights=False,
        threshold=6.0,
        device="meta",
    )
    q.weight = bnb.nn.Int8Params(layer.weight.data.to(torch.float16), requires_grad=False, has_fp16_weights=False)
    return q


def quantize_linears(module: nn.Module, mode: str, compute_dtype: torch.dtype, device: str) -> int:
    """Replace every nn.Linear under `module` (but KEEP) by its quantized twin on `device`; returns how many.

    Each layer is quantized as it reaches `device`, so the full-precision model never needs to fit there.
    """
    if mode not in ("4bit", "8bit"):
        raise ValueError(f"quantization mode must be '4bit' or '8bit', got {mode!r}")
    count = 0
    for parent_name, parent in list(module.named_modules()):
        for name, child in list(parent.named_children()):
            full = f"{parent_name}.{name}" if parent_name else name
            if not isinstance(child, nn.Linear) or full in KEEP:
                continue
            q = _linear4bit(child, compute_dtype) if mode == "4bit" else _linear8bit(child)
            if child.bias is not None:
                bias_dtype = torch.float16 if mode == "8bit" else compute_dtype
                q.bias = nn.Parameter(child.bias.data.to(bias_dtype), requires_grad=False)
            setattr(parent, name, q.to(device))  # .to() quantizes
            count += 1
    return count
