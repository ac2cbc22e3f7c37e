"""The environment variables that set up DDS for the graph, spelled for the distro that runs it.

Fast DDS 3.x (Kilted on) reads its XML profile from FASTDDS_DEFAULT_PROFILES_FILE; Fast DDS 2.x
(Humble, Jazzy) only from FASTRTPS_DEFAULT_PROFILES_FILE, which 3.x's rmw still honours but with a
deprecation warning from every node: set the one the installed Fast DDS reads, or the profile is
silently ignored. Which one is told by the library the ROS prefix holds (2.x is libfastrtps, 3.x
libfastdds). Discovery limited to this host is ROS_AUTOMATIC_DISCOVERY_RANGE=LOCALHOST from Iron on;
Humble knows only ROS_LOCALHOST_ONLY=1, which later distros also honour, with a warning from every
node, ignoring the range setting: set it on Humble only. `scripts/env.sh` does the same in the shell.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, MutableMapping
from pathlib import Path

# The profile variable of Fast DDS 3.x, then 2.x's.
PROFILE_VARIABLES = ("FASTDDS_DEFAULT_PROFILES_FILE", "FASTRTPS_DEFAULT_PROFILES_FILE")
# Distros without ROS_AUTOMATIC_DISCOVERY_RANGE (it came with Iron).
LOCALHOST_ONLY_DISTROS = frozenset({"humble"})


def profile_variable(env: Mapping[str, str] = os.environ) -> str:
    """The profile variable the Fast DDS of the environment's ROS prefixes reads (AMENT_PREFIX_PATH)."""
    prefixes = [Path(p) for p in env.get("AMENT_PREFIX_PATH", "").split(os.pathsep) if p]
    fastdds_2 = any((prefix / "lib" / "libfastrtps.so").exists() for prefix in prefixes)
    return PROFILE_VARIABLES[1] if fastdds_2 else PROFILE_VARIABLES[0]


def profile_file(env: Mapping[str, str] = os.environ) -> str | None:
    """The Fast DDS profile the environment gives (None: Fast DDS's defaults)."""
    return env.get(profile_variable(env)) or None


def set_profile(env: MutableMapping[str, str], path: str | Path | None) -> None:
    """Point the environment's Fast DDS at `path`; None removes the profile (Fast DDS's defaults)."""
    for variable in PROFILE_VARIABLES:
        env.pop(variable, None)
    if path is not None:
        env[profile_variable(env)] = str(path)


def set_localhost_only(env: MutableMapping[str, str]) -> None:
    """Keep discovery on this host, unless the environment already says otherwise, for the distro
    it names (ROS_DISTRO; unset, as with the PyPI wheels: a distro after Humble)."""
    env.setdefault("ROS_AUTOMATIC_DISCOVERY_RANGE", "LOCALHOST")
    if env.get("ROS_DISTRO") in LOCALHOST_ONLY_DISTROS and env["ROS_AUTOMATIC_DISCOVERY_RANGE"] == "LOCALHOST":
        env.setdefault("ROS_LOCALHOST_ONLY", "1")


# Names Fast DDS's security plugin factory compares against (SecurityPluginFactory.cpp, 2.x and 3.x): a
# library built without security (-DSECURITY=OFF) holds none of them.
SECURITY_PLUGINS = (b"builtin.PKI-DH", b"builtin.Access-Permissions", b"builtin.AES-GCM-GMAC")


def fastdds_library(env: Mapping[str, str] = os.environ) -> Path | None:
    """The Fast DDS library of the environment's ROS prefixes (3.x's libfastdds, else 2.x's libfastrtps)."""
    prefixes = [Path(p) for p in env.get("AMENT_PREFIX_PATH", "").split(os.pathsep) if p]
    for name in ("libfastdds.so", "libfastrtps.so"):
        for prefix in prefixes:
            if (prefix / "lib" / name).exists():
                return (prefix / "lib" / name).resolve()
    return None


def security_support(env: Mapping[str, str] = os.environ) -> str:
    """Why the Fast DDS in use cannot do DDS Security (for skips and errors); empty when it has the plugins."""
    library = fastdds_library(env)
    if library is None:
        return "no Fast DDS library found under AMENT_PREFIX_PATH"
    data = library.read_bytes()
    missing = [p.decode() for p in SECURITY_PLUGINS if p not in data]
    if missing:
        return f"{library} was built without DDS Security: it lacks {', '.join(missing)}"
    return ""
