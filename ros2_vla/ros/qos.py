"""QoS profiles, chosen on purpose and named for what they carry."""

from __future__ import annotations

from rclpy.qos import (
    DurabilityPolicy,
    HistoryPolicy,
    QoSProfile,
    ReliabilityPolicy,
    qos_profile_sensor_data,
)

# Camera frames and joint states: newest wins, a late sample is worthless (best effort, depth 1-5).
SENSOR = qos_profile_sensor_data

# Commands (chunks, trajectories, instructions): every message matters; volatile so that
# `ros2 topic pub` (volatile) publishers match.
COMMAND = QoSProfile(
    depth=10,
    reliability=ReliabilityPolicy.RELIABLE,
    durability=DurabilityPolicy.VOLATILE,
    history=HistoryPolicy.KEEP_LAST,
)

# Status: reliable, small queue.
STATUS = QoSProfile(
    depth=5,
    reliability=ReliabilityPolicy.RELIABLE,
    durability=DurabilityPolicy.VOLATILE,
    history=HistoryPolicy.KEEP_LAST,
)

# Latched facts (current task, robot description): late joiners get the last value.
LATCHED = QoSProfile(
    depth=1,
    reliability=ReliabilityPolicy.RELIABLE,
    durability=DurabilityPolicy.TRANSIENT_LOCAL,
    history=HistoryPolicy.KEEP_LAST,
)
