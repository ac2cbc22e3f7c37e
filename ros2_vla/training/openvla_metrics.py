"""What OpenVLA logs while fine-tuning besides the loss, and the run's curve.

Action-token accuracy (argmax id equals the label) and the L1 distance of the decoded bin centers, in
normalized units ([-1, 1] per dimension), over the action positions of a batch (the stop token excluded).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch

from ros2_vla.actions.tokenization import token_ids_to_bin_indices, tokens_to_normalized


def action_metrics(
    logits: torch.Tensor, labels: torch.Tensor, first_action_id: int, vocab_size: int, num_bins: int
) -> dict[str, float]:
    """`logits` (B, L + P, V) of a forward with `labels` (B, L); P image positions a model may insert
    after <s> (OpenVLA's: 256)."""
    shift = logits.shape[1] - labels.shape[1]
    predicted = logits[:, shift:-1].argmax(dim=-1)  # position t predicts token t + 1
    target = labels[:, 1:].to(predicted.device)
    mask = target >= first_action_id
    if not bool(mask.any()):
        return {"action_accuracy": float("nan"), "action_l1": float("nan")}
    accuracy = (predicted[mask] == target[mask]).float().mean().item()

    def centers(ids: torch.Tensor) -> np.ndarray:
        return tokens_to_normalized(token_ids_to_bin_indices(ids.cpu().numpy(), vocab_size, num_bins), num_bins)

    l1 = float(np.abs(centers(predicted[mask]) - centers(target[mask])).mean())
    return {"action_accuracy": accuracy, "action_l1": l1}


def plot_lora_log(records: list[dict[str, Any]], path: str | Path, title: str = "") -> Path:
    """Token cross-entropy (log scale) and action-token accuracy against step, as a PNG."""
    import matplotlib

    matplotlib.use("Agg")  # no display needed; set before pyplot is imported
    import matplotlib.pyplot as plt

    rows = [r for r in records if "loss" in r]
    fig, ax = plt.subplots(figsize=(7, 4), dpi=100)
    if rows:
        steps = [r["step"] for r in rows]
        ax.plot(steps, [r["loss"] for r in rows], lw=1.2, label="cross-entropy")
        if all(r["loss"] > 0 for r in rows):
            ax.set_yscale("log")
        acc = ax.twinx()
        acc.plot(
            steps,
            [r.get("action_accuracy", np.nan) for r in rows],
            color="tab:orange",
            lw=1.0,
            label="action-token accuracy",
        )
        acc.set_ylim(0, 1)
        acc.set_ylabel("action-token accuracy")
    ax.set_xlabel("step")
    ax.set_ylabel("action-token cross-entropy")
    ax.set_title(title)
    ax.grid(True, alpha=0.3)
    fig.legend(loc="upper right")
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return Path(path)
