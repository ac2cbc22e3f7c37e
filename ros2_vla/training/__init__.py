"""Training on converted datasets: the flow backend and OpenVLA LoRA, with logs, checkpoints and validation."""
