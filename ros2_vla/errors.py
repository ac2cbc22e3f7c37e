"""The package's own exceptions: each names the thing that is wrong and how to fix it."""


def first_line(exc: BaseException) -> str:
    """`Type: first line of the message` of a foreign exception, for one-line errors and statuses."""
    lines = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {lines[0]}" if lines else type(exc).__name__


class Ros2VlaError(Exception):
    """Base class of every error this package raises on purpose."""


class ConfigError(Ros2VlaError):
    """A robot config is missing, unknown or malformed."""


class RequirementError(Ros2VlaError):
    """Something the package needs is not installed or not built."""


class ChunkError(Ros2VlaError):
    """An ActionChunk failed validation; the bridge rejects it and holds."""


class KinematicsError(Ros2VlaError):
    """A robot model could not be built or queried."""


class TrajectoryError(Ros2VlaError):
    """Joint waypoints, limits or a plan given to the timing or blending code are malformed."""


class PolicyError(Ros2VlaError):
    """A policy could not be loaded or could not use an observation; vla_node reports it and holds."""


class RecordingError(Ros2VlaError):
    """An episode could not be recorded or closed (folder not writable, disk full, closed twice)."""


class DatasetError(Ros2VlaError):
    """Recorded episodes or a converted dataset are unreadable, inconsistent or incomplete."""


class PolicyUnavailable(PolicyError):
    """A remote policy cannot answer now (down, refusing, slow, failing); vla_node reports ERROR and retries."""


class PolicyDone(PolicyError):
    """The policy ended the episode (RT-1's terminate); vla_node stops asking until the next instruction."""
