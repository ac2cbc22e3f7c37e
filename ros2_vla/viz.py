"""Pictures people would rather see than read: the predicted end-effector path drawn on a camera
image, from config facts alone (world-mounted cameras)."""

from __future__ import annotations

import numpy as np

from ros2_vla.config import RobotConfig
from ros2_vla.errors import ConfigError
from ros2_vla.sim.scene import camera_rotation


def world_camera_pose(robot: RobotConfig, camera: str) -> np.ndarray:
    """`T_world_camera` (4, 4), MuJoCo camera axes (looking along -z, +y up), of a world-mounted camera."""
    cam = next((c for c in robot.cameras if c.name == camera), None)
    if cam is None or cam.mount != "world":
        raise ConfigError(f"{robot.name} has no world-mounted camera {camera!r}")
    T = np.eye(4)
    T[:3, :3] = camera_rotation(cam.rpy)
    T[:3, 3] = cam.xyz
    return T


def project(
    T_world_camera: np.ndarray, fx: float, fy: float, cx: float, cy: float, points_world: np.ndarray
) -> np.ndarray:
    """Pixel coordinates (N, 2) [u right, v down] of world points (N, 3); NaN rows behind the camera."""
    p = np.asarray(points_world, dtype=float).reshape(-1, 3)
    T_cam_world = np.linalg.inv(T_world_camera)
    pc = p @ T_cam_world[:3, :3].T + T_cam_world[:3, 3]
    depth = -pc[:, 2]  # MuJoCo cameras look along -z
    with np.errstate(divide="ignore", invalid="ignore"):
        uv = np.column_stack([cx + fx * pc[:, 0] / depth, cy - fy * pc[:, 1] / depth])
    uv[depth <= 1e-6] = np.nan
    return uv


def draw_polyline(image: np.ndarray, uv: np.ndarray, color=(255, 220, 0), radius: int = 1) -> np.ndarray:
    """A copy of `image` (H, W, 3) uint8 with the points uv (N, 2) joined by straight segments."""
    out = image.copy()
    h, w = out.shape[:2]
    pts = uv[np.all(np.isfinite(uv), axis=1)]
    for a, b in zip(pts[:-1], pts[1:]) if len(pts) > 1 else [(p, p) for p in pts]:
        n = int(max(abs(b - a).max(), 1))
        for t in np.linspace(0.0, 1.0, n + 1):
            u, v = np.rint(a + t * (b - a)).astype(int)
            out[max(v - radius, 0) : min(v + radius + 1, h), max(u - radius, 0) : min(u + radius + 1, w)] = color
    return out
