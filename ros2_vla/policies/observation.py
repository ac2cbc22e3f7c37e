"""From camera frames and joint states to an Observation: freshness, order (decoding: encodings.py).

No ROS: vla_node hands raw message fields in. Every refusal is a PolicyError whose message says
what was wrong (vla_node reports it as OBSERVATION_REFUSED and publishes no chunk).
"""

from __future__ import annotations

import io
from collections import deque
from dataclasses import dataclass

import numpy as np

from ros2_vla.errors import PolicyError
from ros2_vla.policies.base import Observation


def state_names(robot) -> tuple[str, ...]:
    """Joint names of a policy's state vector (S,), in order: every arm joint (config order), then each
    arm's gripper joint. `robot` is a RobotConfig. vla_node and `ros2-vla eval` both build it from this."""
    return tuple(robot.joint_names) + tuple(a.gripper.joint for a in robot.arms if a.gripper)


def decode_compressed(data: bytes, fmt: str) -> np.ndarray:
    """sensor_msgs/CompressedImage (jpeg or png) -> (H, W, 3) uint8 RGB."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(io.BytesIO(bytes(data))) as im:
            return np.asarray(im.convert("RGB"), dtype=np.uint8).copy()
    except (UnidentifiedImageError, OSError) as exc:
        raise PolicyError(f"compressed image ({fmt or 'no format'}) could not be decoded: {exc}") from exc


FRAMES_KEPT = 4  # per camera: enough to find a set of one moment when cameras are a frame or two apart
DEFAULT_SYNC_SLOP = 0.05  # [s] vla_node's `sync_slop` default: frames of one set are at most this far apart


@dataclass
class _Frame:
    stamp: float  # [s] capture time (header stamp)
    rgb: np.ndarray


class ObservationBuffer:
    """The last few frames of each camera and the newest joint state; `assemble` builds an Observation
    from the newest set of frames taken within `sync_slop` of each other (approximate-time matching, as
    message_filters' ApproximateTimeSynchronizer), not the newest frame of each camera: two cameras a
    frame apart would show the policy two different moments."""

    def __init__(
        self,
        cameras: tuple[str, ...],
        state_names: tuple[str, ...],
        max_age: float,
        expected_size: dict[str, tuple[int, int]] | None = None,
        sync_slop: float = DEFAULT_SYNC_SLOP,
    ) -> None:
        if not sync_slop >= 0.0:
            raise PolicyError(f"sync_slop must be >= 0 [s] (0: identical stamps only); got {sync_slop}")
        self.cameras, self.state_names, self.max_age, self.sync_slop = cameras, state_names, max_age, sync_slop
        # Frames of every configured camera are kept; `cameras` (narrowed to the model's own once it is
        # loaded) are the ones an observation needs. A camera the model ignores is not an error.
        self.known_cameras = tuple(cameras)
        self.expected_size = expected_size or {}  # camera -> (height, width) from config; others refused
        self._frames: dict[str, deque[_Frame]] = {}
        self._state: tuple[float, np.ndarray] | None = None

    def add_frame(self, camera: str, stamp: float, rgb: np.ndarray) -> None:
        if camera not in self.known_cameras:
            raise PolicyError(f"camera {camera!r} is not one the policy uses: {self.known_cameras}")
        want = self.expected_size.get(camera)
        if want is not None and rgb.shape[:2] != want:
            raise PolicyError(
                f"camera {camera}: image is {rgb.shape[1]}x{rgb.shape[0]}, config says {want[1]}x{want[0]}"
            )
        frames = self._frames.setdefault(camera, deque(maxlen=FRAMES_KEPT))
        if frames and stamp < frames[-1].stamp:
            frames.clear()  # the clock went back (a sim reset, a bag loop): older stamps mean nothing now
        frames.append(_Frame(stamp, rgb))

    def add_joint_state(self, stamp: float, names: list[str], positions: list[float]) -> None:
        index = {n: i for i, n in enumerate(names)}
        missing = [n for n in self.state_names if n not in index]
        if missing:
            return  # another publisher's partial state (a gripper alone): keep the last complete one
        q = np.array([positions[index[n]] for n in self.state_names], dtype=np.float32)
        if np.all(np.isfinite(q)):
            self._state = (stamp, q)

    def assemble(self, now: float, instruction: str) -> Observation:
        """The observation at `now` from the newest inputs; PolicyError when any is missing or stale."""
        missing = [c for c in self.cameras if not self._frames.get(c)]
        if missing:
            raise PolicyError(f"no image yet from camera(s) {missing}")
        frames = self._synchronized_set()
        stale = {c: now - f.stamp for c, f in frames.items() if now - f.stamp > self.max_age}
        if stale:
            ages = ", ".join(f"{c} {a:.2f} s" for c, a in stale.items())
            raise PolicyError(f"stale image(s): {ages} old (limit {self.max_age:.2f} s)")
        if self._state is None:
            raise PolicyError(f"no complete joint state yet (need {list(self.state_names)})")
        if now - self._state[0] > self.max_age:
            raise PolicyError(f"joint state is {now - self._state[0]:.2f} s old (limit {self.max_age:.2f} s)")
        return Observation(
            stamp=min(f.stamp for f in frames.values()),  # the oldest input bounds what the chunk could know
            images={c: f.rgb for c, f in frames.items()},
            state=self._state[1].copy(),
            instruction=instruction,
        )

    def _synchronized_set(self) -> dict[str, _Frame]:
        """The newest frames, one per camera, whose stamps lie within sync_slop; PolicyError when none do."""
        best: dict[str, _Frame] | None = None
        for anchor in reversed(self._frames[self.cameras[0]]):  # newest first
            chosen = {c: min(self._frames[c], key=lambda f: abs(f.stamp - anchor.stamp)) for c in self.cameras}
            stamps = [f.stamp for f in chosen.values()]
            if max(stamps) - min(stamps) <= self.sync_slop + 1e-9:
                if best is None or min(stamps) > min(f.stamp for f in best.values()):
                    best = chosen
        if best is None:
            newest = ", ".join(f"{c} {self._frames[c][-1].stamp:.3f} s" for c in self.cameras)
            raise PolicyError(
                f"no set of camera frames within sync_slop {self.sync_slop * 1e3:.0f} ms of each other "
                f"(newest stamps: {newest}): are the cameras' clocks and rates right?"
            )
        return best
