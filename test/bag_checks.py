"""Checks that a bag the package wrote is one the ROS tools read, with readers independent of the writer.

- Messages: the `mcap` library with `mcap-ros2-support` (what Foxglove uses), which decodes each message
  from the ros2msg schema stored in the file, not from the package's type store: every message must
  decode, and the counts per topic must be metadata.yaml's.
- metadata.yaml: every field rosbag2's reader needs for the file's version (rosbag2_storage's yaml.hpp
  and qos.cpp: what `ros2 bag info` and `ros2 bag play` load), the QoS policy names rmw parses.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import yaml

# rosbag2_storage/yaml.hpp, decode of BagMetadata: (field, first version that reads it)
BAG_FIELDS = (
    ("version", 1),
    ("storage_identifier", 1),
    ("duration", 1),
    ("starting_time", 1),
    ("message_count", 1),
    ("topics_with_message_count", 1),
    ("relative_file_paths", 1),
    ("compression_format", 3),
    ("compression_mode", 3),
    ("files", 5),
    ("custom_data", 6),
    ("ros_distro", 8),
)
# decode of TopicMetadata
TOPIC_FIELDS = (("name", 1), ("type", 1), ("serialization_format", 1), ("offered_qos_profiles", 4))
TOPIC_FIELDS_V7 = ("type_description_hash",)
# qos.cpp, version >= 9: a map per profile; policies by rmw's names (rmw/qos_string_conversions.c)
QOS_FIELDS = (
    "history",
    "depth",
    "reliability",
    "durability",
    "deadline",
    "lifespan",
    "liveliness",
    "liveliness_lease_duration",
    "avoid_ros_namespace_conventions",
)
QOS_NAMES = {
    "history": {"system_default", "keep_last", "keep_all", "unknown"},
    "reliability": {"system_default", "reliable", "best_effort", "unknown", "best_available"},
    "durability": {"system_default", "transient_local", "volatile", "unknown", "best_available"},
    "liveliness": {"system_default", "automatic", "manual_by_topic", "unknown", "best_available"},
}


def check_metadata(bag: Path) -> dict:
    """metadata.yaml's rosbag2_bagfile_information, after checking it has what rosbag2 reads; returns it."""
    info = yaml.safe_load((bag / "metadata.yaml").read_text())["rosbag2_bagfile_information"]
    version = info["version"]
    missing = [f for f, since in BAG_FIELDS if version >= since and f not in info]
    assert not missing, f"{bag}: metadata.yaml (version {version}) lacks {missing}"
    assert "nanoseconds" in info["duration"] and "nanoseconds_since_epoch" in info["starting_time"]
    if version >= 5:
        for f in info["files"]:
            assert {"path", "starting_time", "duration", "message_count"} <= set(f), f
    for entry in info["topics_with_message_count"]:
        topic = entry["topic_metadata"]
        assert "message_count" in entry
        fields = [f for f, since in TOPIC_FIELDS if version >= since] + (list(TOPIC_FIELDS_V7) if version >= 7 else [])
        assert set(fields) <= set(topic), f"{bag}: topic {topic.get('name')} lacks {set(fields) - set(topic)}"
        if version >= 9:
            for profile in topic["offered_qos_profiles"]:
                assert set(QOS_FIELDS) <= set(profile), (topic["name"], profile)
                for policy, names in QOS_NAMES.items():
                    assert profile[policy] in names, (topic["name"], policy, profile[policy])
                for duration in ("deadline", "lifespan", "liveliness_lease_duration"):
                    assert {"sec", "nsec"} <= set(profile[duration]), (topic["name"], duration)
    return info


def check_with_independent_reader(bag: str | Path) -> Counter:
    """Read every message of `bag` with mcap + mcap-ros2-support; counts per topic must match metadata.yaml.
    Returns the counts."""
    from mcap.reader import make_reader
    from mcap_ros2.decoder import DecoderFactory

    bag = Path(bag)
    info = check_metadata(bag)
    counts: Counter = Counter()
    for name in info["relative_file_paths"]:
        with open(bag / name, "rb") as f:
            reader = make_reader(f, decoder_factories=[DecoderFactory()])
            for schema, channel, _message, decoded in reader.iter_decoded_messages():
                assert schema is not None and schema.encoding == "ros2msg", channel.topic
                assert decoded is not None
                counts[channel.topic] += 1
    expected = {e["topic_metadata"]["name"]: e["message_count"] for e in info["topics_with_message_count"]}
    assert dict(counts) == {t: n for t, n in expected.items() if n}, (dict(counts), expected)
    assert sum(counts.values()) == info["message_count"]
    return counts
