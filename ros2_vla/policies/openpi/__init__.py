"""The `openpi` backend: a policy server speaking openpi's WebSocket protocol (pi0, pi0-FAST, pi0.5 behind
openpi's `serve_policy.py`, or `ros2-vla serve`), mapped to and from the robot by a preset."""
