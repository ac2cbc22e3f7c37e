"""Recorded episodes read back without ROS: rosbags' Reader and the package's type store.

Every failure is a DatasetError naming the bag (and topic) and what to do, whether the folder is not
a bag, was never closed (no metadata.yaml), or its storage file is truncated or corrupted (whatever
rosbags or the CDR decoder raised underneath).

    bag = open_episode("demos/episode_0003")      # metadata checked, topics listed
    for topic, t_ns, msg in read_messages(bag, ["/joint_states"]):
        ...
"""

from __future__ import annotations

from collections.abc import Collection, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import yaml

from ros2_vla.data.episode import EpisodeMeta, read_episode_meta
from ros2_vla.errors import ConfigError, DatasetError

STORAGE_SUFFIXES = (".mcap", ".db3")
_YamlLoader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # libyaml when PyYAML has it: 10x faster
_RECOVER_HINT = "a recording cut short can sometimes be saved with `mcap recover`; otherwise leave this episode out"


@dataclass(frozen=True)
class EpisodeBag:
    """One episode's rosbag2 folder, opened and checked: its metadata and what it recorded."""

    path: Path  # the bag folder
    meta: EpisodeMeta
    topics: dict[str, str]  # topic -> message type ("sensor_msgs/msg/Image")
    counts: dict[str, int]  # topic -> messages recorded


def is_bag_folder(path: Path) -> bool:
    """A rosbag2 folder: metadata.yaml, or at least a storage file (an unclosed recording)."""
    return path.is_dir() and (
        (path / "metadata.yaml").is_file() or any(p.suffix in STORAGE_SUFFIXES for p in path.iterdir() if p.is_file())
    )


def find_episodes(paths: Sequence[str | Path]) -> list[Path]:
    """Bag folders from command-line arguments: each is a bag folder or a folder of bag folders
    (taken in name order; hidden entries skipped). DatasetError for anything else."""
    found: list[Path] = []
    for arg in paths:
        path = Path(arg)
        if not path.exists():
            raise DatasetError(f"{path}: no such file or folder")
        if is_bag_folder(path):
            found.append(path)
            continue
        if not path.is_dir():
            raise DatasetError(f"{path}: not a rosbag2 episode folder (give the folder holding metadata.yaml)")
        children = [p for p in sorted(path.iterdir()) if not p.name.startswith(".") and is_bag_folder(p)]
        if not children:
            raise DatasetError(f"{path}: neither a rosbag2 episode folder nor a folder of them")
        found.extend(children)
    resolved = [p.resolve() for p in found]
    twice = sorted({str(p) for p in resolved if resolved.count(p) > 1})
    if twice:
        raise DatasetError(f"episode(s) given more than once: {', '.join(twice)}")
    return found


def open_episode(path: str | Path) -> EpisodeBag:
    """A bag folder's metadata and topics, from its metadata.yaml (storage files are read later, by
    `read_messages`, where truncation or corruption shows); DatasetError naming the folder otherwise."""
    path = Path(path)
    try:
        meta = read_episode_meta(path)
    except ConfigError as exc:
        raise DatasetError(str(exc)) from exc
    try:
        info = yaml.load((path / "metadata.yaml").read_text(), Loader=_YamlLoader)["rosbag2_bagfile_information"]
        topics, counts = {}, {}
        for entry in info.get("topics_with_message_count") or []:
            name = entry["topic_metadata"]["name"]
            topics[name] = entry["topic_metadata"]["type"]
            counts[name] = counts.get(name, 0) + int(entry["message_count"])
        files = [path / f for f in info.get("relative_file_paths") or []]
    except (yaml.YAMLError, KeyError, TypeError, ValueError) as exc:
        raise DatasetError(f"{path}/metadata.yaml: unreadable rosbag2 metadata ({type(exc).__name__}: {exc})") from exc
    missing = [f.name for f in files if not f.is_file()]
    if missing or not files:
        raise DatasetError(
            f"{path}: storage file(s) {missing or 'none'} named in metadata.yaml are missing; copy the whole bag folder"
        )
    return EpisodeBag(path, meta, topics, counts)


def read_messages(
    bag: EpisodeBag, topics: Collection[str], raw_topics: Collection[str] = ()
) -> Iterator[tuple[str, int, object]]:
    """(topic, log time [ns], message) of `topics` in log-time order; the message is rosbags' decoded
    dataclass, or the raw CDR bytes for topics in `raw_topics` (decode those with `decode`).
    DatasetError on a damaged bag."""
    from rosbags.rosbag2 import Reader

    unknown = sorted(t for t in topics if t not in bag.topics)
    if unknown:
        raise DatasetError(f"{bag.path}: no topic(s) {unknown} in this bag; it has {sorted(bag.topics)}")
    try:
        with Reader(bag.path) as reader:
            connections = [c for c in reader.connections if c.topic in topics]
            for connection, t_ns, raw in reader.messages(connections=connections):
                if connection.topic in raw_topics:
                    yield connection.topic, t_ns, raw
                else:
                    yield connection.topic, t_ns, decode(bag, connection.topic, t_ns, raw)
    except DatasetError:
        raise
    except Exception as exc:
        raise _storage_error(bag.path, exc) from exc


def decode(bag: EpisodeBag, topic: str, t_ns: int, raw: bytes | memoryview) -> object:
    """One CDR message of `topic` to rosbags' dataclass; DatasetError naming the bag when the bytes are garbled."""
    from ros2_vla.data.typestore import typestore

    msgtype = bag.topics[topic]
    try:
        return typestore().deserialize_cdr(raw, msgtype)
    except Exception as exc:  # garbled bytes fail in many ways inside the decoder
        raise DatasetError(
            f"{bag.path}: a {msgtype} message on {topic} at {t_ns} ns cannot be decoded "
            f"({type(exc).__name__}: {exc}); the bag is corrupted"
        ) from exc


def _storage_error(path: Path, exc: Exception) -> DatasetError:
    if isinstance(exc, FileNotFoundError):
        return DatasetError(
            f"{path}: a storage file named in metadata.yaml is missing ({exc}); copy the whole bag folder"
        )
    files = sorted(p.name for p in path.iterdir() if p.suffix in STORAGE_SUFFIXES) if path.is_dir() else []
    where = f"{path}/{files[0]}" if len(files) == 1 else str(path)
    detail = str(exc) if type(exc).__name__ == "ReaderError" else f"{type(exc).__name__}: {exc}"
    return DatasetError(f"{where}: truncated or corrupted bag ({detail}); {_RECOVER_HINT}")
