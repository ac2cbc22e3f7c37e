"""The one place the sim imports MuJoCo, so the offscreen GL backend is chosen before the import.

MuJoCo reads `MUJOCO_GL` when it is first imported. Headless machines (CI, the test machines)
render on the CPU through EGL + Mesa llvmpipe; GLFW, MuJoCo's default, needs a display. A caller
that set `MUJOCO_GL` (or imported mujoco earlier) keeps its choice.
"""

from __future__ import annotations

import os

from ros2_vla.errors import RequirementError

os.environ.setdefault("MUJOCO_GL", "egl")

try:
    import mujoco
except ImportError as exc:  # pragma: no cover - depends on the environment
    raise RequirementError(
        "the simulator needs the `mujoco` Python package (pip install mujoco); "
        "rendering also needs libegl1 libegl-mesa0 libgl1 libgles2 on headless machines"
    ) from exc

__all__ = ["mujoco"]
