"""QoS profiles, chosen on purpose and named for what they carry."""

from __future__ import annotations

from rclpy.qos import (
    DurabilityPolicy,
    HistoryPolicy,
    QoSProfile,
    ReliabilityPolicy,
    qos_profile_sensor_data,
)

# Consuming camera frames and joint states (REP 2003): newest wins, a late sample is worthless
# (best effort, depth 5). A best-effort subscription matches reliable and best-effort publishers.
SENSOR = qos_profile_sensor_data

# Publishing them, as a sensor driver does (REP 2003): the system default, reliable and volatile, so
# that every subscriber matches: best-effort consumers (SENSOR) and reliable ones alike (RViz's image
# display, image_view, a plain `create_subscription(Image, topic, callback, 10)`), which a
# best-effort publisher would leave with nothing. Keep-last bounds the writer's memory and never
# blocks it: a reader that falls behind loses the oldest frames, not the publisher's time.
SENSOR_DRIVER = QoSProfile(
    depth=10,
    reliability=ReliabilityPolicy.RELIABLE,
    durability=DurabilityPolicy.VOLATILE,
    history=HistoryPolicy.KEEP_LAST,
)

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
