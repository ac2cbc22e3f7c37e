"""Offscreen rendering of the configured cameras, with the pinhole model a CameraInfo needs.

Renderers are made on first use (one per image size) so a Simulation that never renders needs no
GL. MuJoCo cameras look along their -z axis with +y up; ROS optical frames look along +z with +y
down, a half turn about x apart.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np

from ros2_vla.config import CameraSpec
from ros2_vla.errors import ConfigError
from ros2_vla.sim.backend import mujoco

# R_mujococam_optical: a half turn about x.
_OPTICAL = np.diag([1.0, -1.0, -1.0])


class CameraIntrinsics(NamedTuple):
    """Pinhole model of a rendered camera, ROS CameraInfo convention (pixel centres at integers)."""

    width: int  # [px]
    height: int  # [px]
    fx: float  # [px]
    fy: float  # [px]
    cx: float  # [px]
    cy: float  # [px]


def intrinsics(cam: CameraSpec) -> CameraIntrinsics:
    """fx = fy from the vertical field of view (square pixels); principal point at the image centre."""
    f = 0.5 * cam.height / math.tan(math.radians(cam.fovy) / 2)
    return CameraIntrinsics(cam.width, cam.height, f, f, (cam.width - 1) / 2, (cam.height - 1) / 2)


def camera_sets(cameras: tuple[CameraSpec, ...]) -> dict[float, tuple[str, ...]]:
    """Period [s] -> the names of the cameras of that rate: each set is captured at one instant with one
    stamp, as a hardware-synchronized rig, so a policy pairs frames of one moment."""
    sets: dict[float, tuple[str, ...]] = {}
    for c in cameras:
        sets[1.0 / c.rate_hz] = (*sets.get(1.0 / c.rate_hz, ()), c.name)
    return sets


class CameraRig:
    """The robot's configured cameras in one compiled scene."""

    def __init__(self, model: mujoco.MjModel, cameras: tuple[CameraSpec, ...], robot_name: str) -> None:
        self._model = model
        self._specs = {c.name: c for c in cameras}
        self._robot = robot_name
        self._renderers: dict[tuple[int, int], mujoco.Renderer] = {}
        self._snapshot: mujoco.MjData | None = None  # the state a synchronized set is drawn from

    def spec(self, name: str) -> CameraSpec:
        if name not in self._specs:
            raise ConfigError(f"robot {self._robot} has no camera {name!r}; cameras: {sorted(self._specs)}")
        return self._specs[name]

    def render(self, data: mujoco.MjData, name: str, lock=None) -> np.ndarray:
        """RGB image (height, width, 3) uint8 at the camera's configured size.

        `lock` (optional) guards `data` only while the scene is copied out of it (a fraction of a
        millisecond); the slow GL drawing then runs without it, so physics can go on meanwhile.
        """
        renderer = self._renderer(name)
        if lock is None:
            renderer.update_scene(data, camera=name)
        else:
            with lock:
                renderer.update_scene(data, camera=name)
        return renderer.render().copy()

    def render_set(self, data: mujoco.MjData, names: tuple[str, ...], lock=None) -> dict[str, np.ndarray]:
        """RGB images of the cameras `names` at one instant, as a hardware-synchronized rig takes them: the
        state is copied once (under `lock`: 6 us for the Franka scene, a draw takes 7 ms), then each camera is
        drawn from the copy."""
        renderers = {name: self._renderer(name) for name in names}  # unknown names fail before the copy
        if self._snapshot is None:
            self._snapshot = mujoco.MjData(self._model)
        if lock is None:
            mujoco.mj_copyData(self._snapshot, self._model, data)
        else:
            with lock:
                mujoco.mj_copyData(self._snapshot, self._model, data)
        images = {}
        for name, renderer in renderers.items():
            renderer.update_scene(self._snapshot, camera=name)
            images[name] = renderer.render().copy()
        return images

    def _renderer(self, name: str) -> mujoco.Renderer:
        cam = self.spec(name)
        key = (cam.width, cam.height)
        if key not in self._renderers:
            self._renderers[key] = mujoco.Renderer(self._model, height=cam.height, width=cam.width)
        return self._renderers[key]

    def pose(self, data: mujoco.MjData, name: str, optical: bool = False) -> np.ndarray:
        """`T_world_camera` (4, 4), MuJoCo axes, or the ROS optical frame with optical=True."""
        self.spec(name)
        cid = self._model.camera(name).id
        T = np.eye(4)
        T[:3, :3] = data.cam_xmat[cid].reshape(3, 3) @ (_OPTICAL if optical else np.eye(3))
        T[:3, 3] = data.cam_xpos[cid]
        return T

    def close(self) -> None:
        """Free the renderers' GL contexts."""
        for r in self._renderers.values():
            r.close()
        self._renderers.clear()
