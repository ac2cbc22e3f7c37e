"""The rosbags type store for this package's bags: the distro's standard messages plus our own.

Bags carry each connection's message definition, so `ros2 bag info`, `ros2 bag play` and readers
without this package (Foxglove, `rosbags`) all decode `ros2_vla/msg/*`. The definitions come from
the installed `msg/` files, the same text colcon generated the Python classes from.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from rosbags.typesys import Stores, get_types_from_msg, get_typestore
from rosbags.typesys.store import Typestore

from ros2_vla.config import config_dir
from ros2_vla.errors import ConfigError

PACKAGE_MESSAGES = ("ActionChunk", "PolicyStatus", "BridgeStatus")


def msg_dir() -> Path:
    """The package's `msg/` folder: beside `config/` in a checkout or in `share/ros2_vla`."""
    folder = config_dir().parent / "msg"
    if not (folder / "ActionChunk.msg").is_file():
        raise ConfigError(f"cannot find the package's message definitions in {folder}; run scripts/setup")
    return folder


@lru_cache(maxsize=1)
def typestore() -> Typestore:
    """Kilted's standard types plus `ros2_vla/msg/*` (built once per process)."""
    store = get_typestore(Stores.ROS2_KILTED)
    folder = msg_dir()
    types = {}
    for name in PACKAGE_MESSAGES:
        types.update(get_types_from_msg((folder / f"{name}.msg").read_text(), f"ros2_vla/msg/{name}"))
    store.register(types)
    return store
