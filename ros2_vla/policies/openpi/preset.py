"""How a robot's observation becomes an openpi server's observation map, and its `actions` a chunk.

A preset (`config/openpi/<name>.yaml`, or a YAML path) names, for one robot:
- `images`: server key -> robot camera; frames resized with padding to `image_size` by openpi-client's
  `image_tools.resize_with_pad`, as openpi's own clients do, channels first where the server wants it;
- `state`: server key -> a list of state items, concatenated;
- `prompt`: the key of the instruction;
- `actions`: the chunk's action space, the server's action columns as items, dt, and the steps played
  of each chunk.

Items, for state and action columns alike:
- `joints`: every arm joint of the robot, in config order; `arm:<arm>`: one arm's joints [rad];
- `gripper_open[:<arm>]`: the gripper's opening, 0 closed .. 1 open (this package's gripper convention);
- `gripper_closed[:<arm>]`: 1 - that (DROID's gripper position, 1 = closed);
- `gripper_signed[:<arm>]`: -1 open .. +1 closed (robosuite's gripper command, LIBERO's actions).
State only: `ee_position` (TCP [m], 3) and `ee_axis_angle` (TCP orientation as a rotation vector [rad],
3), both in the arm base frame from the joints by forward kinematics; `gripper_fingers[:<arm>]` (the
two fingers' positions [m], the second negated: robosuite's gripper qpos).
Actions only: `ee_delta` (x y z roll pitch yaw of an ee_delta chunk). `actions.scale` multiplies each
column (LIBERO's controller maps 1.0 to 5 cm and 0.5 rad).
Nested server keys are written with "/" between levels where the server expects nested maps
(ALOHA's `images/cam_high` is `{"images": {"cam_high": ...}}`); DROID's keys hold a "/" themselves and are
sent flat. `nested` in the preset says which (default false: flat keys).
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import yaml
from openpi_client.image_tools import resize_with_pad

from ros2_vla.actions.rotations import matrix_to_rotvec
from ros2_vla.actions.spaces import ACTION_SPACES, EE_ROTATION, EE_TRANSLATION, GRIPPER
from ros2_vla.config import RobotConfig, config_dir
from ros2_vla.errors import ConfigError, PolicyError
from ros2_vla.kinematics.model import ArmModel

PRESET_DIR = "openpi"


@dataclass(frozen=True)
class Column:
    """One state entry or action column: a joint, a gripper value, a finger, or a TCP coordinate."""

    kind: str  # joint | gripper_open | gripper_closed | gripper_signed | finger | ee_position | ee_axis_angle | ee
    name: str  # the joint's name in /joint_states (a gripper's joint for the gripper kinds), or the ee dimension
    arm: int  # index of the arm in the robot config
    index: int = 0  # which of the item's values (xyz, the two fingers)


def expand_items(items: list[str], robot: RobotConfig) -> tuple[Column, ...]:
    """Preset items -> columns, in order; ConfigError naming an unknown item or arm."""
    arms = {arm.name: i for i, arm in enumerate(robot.arms)}
    out: list[Column] = []
    for item in items:
        kind, _, arm_name = str(item).partition(":")
        if arm_name and arm_name not in arms:
            raise ConfigError(f"openpi preset item {item!r}: {robot.name} has no arm {arm_name!r} (arms: {list(arms)})")
        chosen = [arms[arm_name]] if arm_name else list(range(len(robot.arms)))
        if kind in ("joints", "arm"):
            out += [Column("joint", j, i) for i in chosen for j in robot.arms[i].chain.joint_names]
        elif kind in ("gripper_open", "gripper_closed", "gripper_signed", "gripper_fingers"):
            gripper = robot.arms[_one_arm(item, kind, chosen, robot)].gripper
            if gripper is None:
                raise ConfigError(f"openpi preset item {item!r}: arm {robot.arms[chosen[0]].name!r} has no gripper")
            if kind == "gripper_fingers":
                out += [Column("finger", gripper.joint, chosen[0], i) for i in range(2)]
            else:
                out.append(Column(kind, gripper.joint, chosen[0]))
        elif kind in ("ee_position", "ee_axis_angle", "ee_delta"):
            arm = _one_arm(item, kind, chosen, robot)
            names = (
                ("x", "y", "z")
                if kind == "ee_position"
                else ("rx", "ry", "rz")
                if kind == "ee_axis_angle"
                else EE_TRANSLATION + EE_ROTATION
            )
            column_kind = "ee" if kind == "ee_delta" else kind
            out += [Column(column_kind, n, arm, i) for i, n in enumerate(names)]
        else:
            raise ConfigError(
                f"openpi preset item {item!r} is not joints, arm:<arm>, gripper_open, gripper_closed, "
                "gripper_signed, gripper_fingers, ee_position, ee_axis_angle or ee_delta"
            )
    return tuple(out)


def _one_arm(item: str, kind: str, chosen: list[int], robot: RobotConfig) -> int:
    if len(chosen) != 1:
        raise ConfigError(f"openpi preset item {item!r}: {robot.name} has several arms; name one ({kind}:<arm>)")
    return chosen[0]


@dataclass(frozen=True)
class OpenpiPreset:
    """A robot's mapping to and from one family of openpi servers."""

    name: str
    robot: RobotConfig
    images: dict[str, str]  # server key -> robot camera
    image_size: tuple[int, int] | None  # (height, width) after resize-with-pad; None: as captured
    channels_first: bool  # (3, H, W) instead of (H, W, 3)
    state: dict[str, tuple[Column, ...]]  # server key -> columns
    prompt_key: str
    nested: bool  # "a/b" keys are nested maps
    action_space: str
    action_columns: tuple[Column, ...]
    dt: float  # [s]
    steps: int  # chunk steps played (the rest is dropped)
    scale: np.ndarray  # (D,) multiplies each action column

    @property
    def cameras(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(self.images.values()))

    @property
    def dimension_names(self) -> tuple[str, ...]:
        """The chunk's dimensions: joint names, gripper joints, or x y z roll pitch yaw (+ "gripper")."""
        ee = any(c.kind == "ee" for c in self.action_columns)
        return tuple(GRIPPER if ee and c.kind.startswith("gripper") else c.name for c in self.action_columns)

    def observation(
        self, images: dict[str, np.ndarray], state: np.ndarray, state_names: tuple[str, ...], prompt: str
    ) -> dict[str, Any]:
        """The server's observation map from the robot's frames, state (in `state_names` order) and prompt."""
        index = {name: i for i, name in enumerate(state_names)}
        flat: dict[str, Any] = {key: self._image(images[camera]) for key, camera in self.images.items()}
        poses: dict[int, np.ndarray] = {}  # arm -> T_base_tcp, computed once per observation
        for key, columns in self.state.items():
            flat[key] = np.array([self._state_value(c, state, index, poses) for c in columns], np.float32)
        flat[self.prompt_key] = prompt
        return _nest(flat) if self.nested else flat

    def chunk_values(self, actions: np.ndarray) -> np.ndarray:
        """The server's `actions` (H, D) as this package's chunk values (H', D), grippers as opening."""
        values = np.array(actions, np.float64)[: self.steps] * self.scale
        for j, c in enumerate(self.action_columns):
            if c.kind == "gripper_closed":
                values[:, j] = 1.0 - values[:, j]
            elif c.kind == "gripper_signed":
                values[:, j] = (1.0 - values[:, j]) / 2.0
        return values

    def _image(self, frame: np.ndarray) -> np.ndarray:
        if self.image_size is not None and frame.shape[:2] != self.image_size:
            frame = resize_with_pad(frame, *self.image_size)  # openpi-client's own, as openpi's clients do
        return np.ascontiguousarray(frame.transpose(2, 0, 1) if self.channels_first else frame)

    def _state_value(self, column: Column, state: np.ndarray, index: dict[str, int], poses: dict) -> float:
        if column.kind in ("ee_position", "ee_axis_angle"):
            if column.arm not in poses:
                arm = self.robot.arms[column.arm]
                poses[column.arm] = ArmModel.from_arm(arm).fk(
                    np.array([state[index[j]] for j in arm.chain.joint_names])
                )
            T = poses[column.arm]
            return float(
                T[column.index, 3] if column.kind == "ee_position" else matrix_to_rotvec(T[:3, :3])[column.index]
            )
        q = float(state[index[column.name]])
        if column.kind == "joint":
            return q
        if column.kind == "finger":
            return q if column.index == 0 else -q
        g = self.robot.arms[column.arm].gripper
        opening = (q - g.closed_position) / (g.open_position - g.closed_position)
        return {"gripper_open": opening, "gripper_closed": 1.0 - opening, "gripper_signed": 1.0 - 2.0 * opening}[
            column.kind
        ]


def _nest(flat: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in flat.items():
        *parents, leaf = key.split("/")
        node = out
        for p in parents:
            node = node.setdefault(p, {})
        node[leaf] = value
    return out


def preset_path(name_or_path: str) -> Path:
    """`config/openpi/<name>.yaml`, or a YAML path; ConfigError with the known presets otherwise."""
    path = Path(name_or_path).expanduser()
    if path.suffix in (".yaml", ".yml"):
        if not path.is_file():
            raise ConfigError(f"openpi preset file {path} does not exist")
        return path
    folder = config_dir() / PRESET_DIR
    path = folder / f"{name_or_path}.yaml"
    if not path.is_file():
        known = sorted(p.stem for p in folder.glob("*.yaml"))
        close = difflib.get_close_matches(name_or_path, known, n=1)
        hint = f" Did you mean {close[0]!r}?" if close else ""
        raise ConfigError(f"unknown openpi preset {name_or_path!r}; known: {', '.join(known)} (or a YAML path).{hint}")
    return path


def load_preset(name_or_path: str, robot: RobotConfig) -> OpenpiPreset:
    """Read and check a preset for `robot`; ConfigError naming the problem."""
    path = preset_path(name_or_path)
    raw = yaml.safe_load(path.read_text()) or {}
    try:
        if raw.get("robot") not in (None, robot.name):
            raise ConfigError(f"openpi preset {path.stem!r} is written for {raw['robot']!r}, not {robot.name!r}")
        cameras = {c.name for c in robot.cameras}
        unknown = sorted(set(raw["images"].values()) - cameras)
        if unknown:
            raise ConfigError(
                f"openpi preset {path.stem!r} names cameras {unknown} that {robot.name} lacks "
                f"(it has {sorted(cameras)})"
            )
        actions = raw["actions"]
        if actions["space"] not in ACTION_SPACES:
            raise ConfigError(f"openpi preset {path.stem!r}: unknown action space {actions['space']!r}")
        size = raw.get("image_size")
        columns = expand_items(actions["dimensions"], robot)
        scale = np.asarray(actions.get("scale", [1.0] * len(columns)), np.float64)
        if scale.shape != (len(columns),):
            raise ConfigError(
                f"openpi preset {path.stem!r}: actions.scale has {scale.size} values for {len(columns)} columns"
            )
        preset = OpenpiPreset(
            name=path.stem,
            robot=robot,
            images=dict(raw["images"]),
            image_size=(int(size[0]), int(size[1])) if size else None,
            channels_first=bool(raw.get("channels_first", False)),
            state={k: expand_items(v, robot) for k, v in raw.get("state", {}).items()},
            prompt_key=str(raw.get("prompt", "prompt")),
            nested=bool(raw.get("nested", False)),
            action_space=actions["space"],
            action_columns=columns,
            dt=float(actions["dt"]),
            steps=int(actions.get("steps", 1 << 30)),
            scale=scale,
        )
    except (KeyError, TypeError, ValueError, IndexError) as exc:
        raise ConfigError(f"openpi preset {path}: malformed ({type(exc).__name__}: {exc})") from exc
    if not preset.dt > 0 or preset.steps < 1:
        raise ConfigError(f"openpi preset {path}: dt must be > 0 and steps >= 1")
    return preset


def check_actions(actions: Any, columns: int, where: str) -> np.ndarray:
    """A reply's `actions` as float64 (H, D); PolicyError when the shape or the values are wrong."""
    try:
        a = np.asarray(actions, np.float64)
    except (TypeError, ValueError) as exc:
        raise PolicyError(f"{where}: 'actions' is not numeric ({exc})") from exc
    if a.ndim != 2 or a.shape[0] < 1 or a.shape[1] != columns:
        raise PolicyError(f"{where}: 'actions' has shape {a.shape}, expected (H, {columns})")
    if not np.all(np.isfinite(a)):
        raise PolicyError(f"{where}: 'actions' holds NaN or infinite values")
    return a
