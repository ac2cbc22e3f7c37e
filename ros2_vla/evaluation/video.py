"""Evaluation videos: the scene camera with the bridge's predicted TCP path drawn, and captions.

`Film.monitor` is an `episode.Monitor`: run_episode calls it at every success check (10 Hz of sim
time), so a frame shows the scene then and the path the bridge is about to drive each arm along
(yellow), as RViz would show /vla/bridge/predicted_path. The instruction runs along the top, episode
and time along the bottom, and the episode ends on a second of SUCCESS or FAILED.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ros2_vla.bridge.bridge import Bridge
from ros2_vla.config import RobotConfig
from ros2_vla.errors import ConfigError
from ros2_vla.evaluation.font import caption, wrap
from ros2_vla.sim.scene import base_transform
from ros2_vla.sim.world import Simulation
from ros2_vla.viz import draw_polyline, project

FPS = 10.0  # frames per second of sim time (the success-check rate) and of the mp4
UPSCALE = 2  # the mp4 is drawn at twice the camera's size, so the captions can be read
GREEN, RED, WHITE = (90, 230, 90), (255, 90, 90), (255, 255, 255)


def video_camera(robot: RobotConfig, camera: str = "") -> str:
    """`camera`, or the robot's first world-mounted camera (the scene view) when empty."""
    names = [c.name for c in robot.cameras]
    if camera:
        if camera not in names:
            raise ConfigError(f"{robot.name} has no camera {camera!r}; cameras: {names}")
        return camera
    world = [c.name for c in robot.cameras if c.mount == "world"]
    if not world and not names:
        raise ConfigError(f"{robot.name} has no camera to film (config/{robot.name}.yaml `cameras`)")
    return (world or names)[0]


class Film:
    """Frames of several episodes, one after another; `write` makes the mp4 and a small GIF."""

    def __init__(self, robot: RobotConfig, camera: str = "") -> None:
        self.robot = robot
        self.camera = video_camera(robot, camera)
        self.T_world_base = {arm.name: base_transform(arm) for arm in robot.arms}
        self.frames: list[np.ndarray] = []
        self._title: list[str] = []
        self._header = ""
        self._last: np.ndarray | None = None  # the episode's last image with its path, before captions

    def start(self, header: str, instruction: str) -> None:
        """A new episode: `header` (e.g. "episode 1 seed 100000") and the instruction go into its captions."""
        self._header = header
        spec = next(c for c in self.robot.cameras if c.name == self.camera)
        self._title = title_lines(instruction, spec.width)

    def monitor(self, sim: Simulation, bridge: Bridge, now: float) -> None:
        """One frame: the camera image now, the bridge's predicted path, the captions."""
        rgb = sim.render(self.camera)
        k = sim.camera_intrinsics(self.camera)
        T_world_camera = sim.camera_pose(self.camera)
        for arm in self.robot.arms:
            path = bridge.predicted_path(arm.name, now)
            if len(path):
                T = self.T_world_base[arm.name]
                rgb = draw_polyline(rgb, project(T_world_camera, k.fx, k.fy, k.cx, k.cy, path @ T[:3, :3].T + T[:3, 3]))
        self._last = rgb
        self.frames.append(captioned(rgb, self._title, *episode_status(self._header, now)))

    def finish(self, success: bool, seconds: float = 1.0) -> None:
        """Hold the episode's last image for `seconds` with the verdict in the bottom caption."""
        if self._last is None:
            return
        frame = captioned(self._last, self._title, *episode_status(self._header, verdict=success))
        self.frames += [frame] * max(1, round(seconds * FPS))
        self._last = None

    def write(self, folder: Path, stem: str = "episodes") -> list[Path]:
        """`stem`.mp4 and `stem`.gif (`write_film`)."""
        return write_film(self.frames, folder, stem)


def write_film(frames: list[np.ndarray], folder: Path, stem: str) -> list[Path]:
    """`stem`.mp4 (H.264, `frames` as they are, FPS) and `stem`.gif (1/UPSCALE the size, every other
    frame) in `folder`; nothing when there are no frames."""
    import imageio.v2 as imageio

    if not frames:
        return []
    folder.mkdir(parents=True, exist_ok=True)
    mp4, gif = folder / f"{stem}.mp4", folder / f"{stem}.gif"
    imageio.mimwrite(mp4, frames, fps=FPS, macro_block_size=1)
    small = [f[::UPSCALE, ::UPSCALE] for f in frames[::2]]  # the captions stay legible at the camera's size
    imageio.mimwrite(gif, small, duration=2000.0 / FPS, loop=0)  # [ms] per frame (pillow)
    return [mp4, gif]


def episode_status(header: str, seconds: float = 0.0, verdict: bool | None = None) -> tuple[str, tuple[int, int, int]]:
    """The bottom caption and its color: `header` and the episode's time [s] while it runs, then its verdict."""
    if verdict is None:
        return f"{header}  t {seconds:4.1f} s", WHITE
    return f"{header}  {'SUCCESS' if verdict else 'FAILED'}", GREEN if verdict else RED


def title_lines(instruction: str, camera_width: int) -> list[str]:
    """The quoted instruction wrapped to a frame of a `camera_width` [px] camera at UPSCALE."""
    return wrap(f'"{instruction}"', camera_width * UPSCALE - 6 * UPSCALE, UPSCALE)


def captioned(rgb: np.ndarray, title: list[str], status: str, color=WHITE) -> np.ndarray:
    """`rgb` at UPSCALE times its size, `title` lines along the top and `status` along the bottom."""
    big = np.repeat(np.repeat(rgb, UPSCALE, axis=0), UPSCALE, axis=1)
    if title:
        caption(big, title, top=True, scale=UPSCALE)
    return caption(big, [status], top=False, scale=UPSCALE, color=color)
