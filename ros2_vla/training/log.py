"""The training log (OUT/train_log.jsonl, one JSON object a line) and its loss-curve plot.

Records: {"step", "loss", "lr", "grad_norm", "steps_per_s", "wall_s"} every `log_every` steps (loss
averaged over those steps), and {"step", "val_loss"} at each validation. On resume, records past the
checkpoint's step are dropped, so the log reads as one uninterrupted run.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

LOG_FILE = "train_log.jsonl"
PLOT_FILE = "loss_curve.png"


class TrainLog:
    """A run's training log, OUT/train_log.jsonl: reads, appends and truncates its records."""

    def __init__(self, out: str | Path) -> None:
        self.path = Path(out) / LOG_FILE

    def read(self) -> list[dict[str, Any]]:
        if not self.path.is_file():
            return []
        records = []
        for line in self.path.read_text().splitlines():
            try:
                records.append(json.loads(line))
            except json.JSONDecodeError:  # a line cut short by a crash: the rest is still good
                continue
        return records

    def append(self, record: dict[str, Any]) -> None:
        with self.path.open("a") as f:
            f.write(json.dumps(record) + "\n")

    def truncate(self, step: int) -> None:
        """Keep only the records at or before `step`."""
        kept = [r for r in self.read() if r.get("step", 0) <= step]
        self.path.write_text("".join(json.dumps(r) + "\n" for r in kept))


def plot_loss(records: list[dict[str, Any]], path: str | Path, title: str = "") -> Path:
    """Train (and validation) loss against step as a PNG (log scale once it spans a decade); returns its path."""
    import matplotlib

    matplotlib.use("Agg")  # no display needed; set before pyplot is imported
    import matplotlib.pyplot as plt

    train = [(r["step"], r["loss"]) for r in records if "loss" in r]
    val = [(r["step"], r["val_loss"]) for r in records if "val_loss" in r]
    fig, ax = plt.subplots(figsize=(7, 4), dpi=100)
    if train:
        ax.plot(*zip(*train), label="train", lw=1.2, marker="." if len(train) < 50 else None)
    if val:
        ax.plot(*zip(*val), "o-", label="validation", lw=1.2, ms=3)
    values = [v for _, v in train + val if v > 0]
    if values and max(values) > 10 * min(values):  # log only when the loss spans a decade or more
        ax.set_yscale("log")
    ax.set_xlabel("step")
    ax.set_ylabel("flow-matching loss")
    ax.set_title(title)
    ax.grid(True, alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return Path(path)
