"""FlowConfig: presets by name, checks in __post_init__, JSON round trip, robot-derived layout."""

from __future__ import annotations

import json

import pytest

from ros2_vla.config import load_robot_config
from ros2_vla.errors import PolicyError
from ros2_vla.policies.flow import PRESETS, FlowConfig, config_for_robot, get_config


def test_presets_exist_and_are_valid():
    assert {"tiny", "compact", "small", "pi0"} <= set(PRESETS)
    for name, config in PRESETS.items():
        assert config.preset == name
        assert config.flow_steps == 10
    assert PRESETS["pi0"].horizon == 50
    assert PRESETS["tiny"].text_encoder == "hash"
    assert PRESETS["small"].text_encoder == "minilm"


def test_unknown_preset_suggests_the_nearest():
    with pytest.raises(PolicyError, match="did you mean 'small'"):
        get_config("smal")
    with pytest.raises(PolicyError, match="known: tiny, compact, small, pi0"):
        get_config("zzzzzz")


def test_override_applies_and_unknown_override_is_refused():
    assert get_config("tiny", horizon=7).horizon == 7
    with pytest.raises(PolicyError, match="bad override"):
        get_config("tiny", no_such_field=1)


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"image_size": (30, 32)}, "multiple of patch_size"),
        ({"image_size": (32,)}, "image_size must be"),
        ({"cameras": ()}, "cameras must be"),
        ({"cameras": ("a", "a")}, "cameras must be"),
        ({"text_encoder": "bert"}, "text_encoder 'bert' unknown"),
        ({"action_space": "torque"}, "action_space 'torque' unknown"),
        ({"action_dim": 6}, "dimension_names has 7 names but action_dim is 6"),
        ({"heads": 3}, "multiple of heads"),
        ({"expert_heads": 3}, "multiple of expert_heads"),
        ({"horizon": 0}, "horizon must be a positive integer"),
        ({"flow_steps": 2.5}, "flow_steps must be a positive integer"),
        ({"dt": 0.0}, "dt must be > 0"),
        ({"vision_depth": -1}, "vision_depth must be >= 0"),
        ({"keypoints": -1}, "keypoints must be an integer >= 0"),
        ({"keypoints": 4, "patch_size": 4}, "patch_size 4 must be a multiple of 8"),
    ],
)
def test_bad_fields_are_refused_by_name(overrides, message):
    with pytest.raises(PolicyError, match=message):
        get_config("tiny", **overrides)


def test_json_round_trip_gives_an_equal_config():
    config = get_config("small", cameras=("a", "b", "c"))
    again = FlowConfig.from_dict(json.loads(json.dumps(config.to_dict())))
    assert again == config
    assert isinstance(again.image_size, tuple) and isinstance(again.cameras, tuple)


def test_from_dict_refuses_unknown_keys():
    with pytest.raises(PolicyError, match="unknown FlowConfig keys"):
        FlowConfig.from_dict({**get_config("tiny").to_dict(), "colour": "red"})


@pytest.mark.parametrize("robot_name", ["franka", "widowx", "aloha"])
def test_config_for_robot_takes_cameras_state_and_actions_from_the_robot(robot_name):
    robot = load_robot_config(robot_name)
    config = config_for_robot("tiny", robot)
    assert config.cameras == tuple(c.name for c in robot.cameras)
    assert config.dimension_names == tuple(robot.action.dimension_names)
    assert config.action_dim == len(robot.action.dimension_names)
    assert config.action_space == robot.action.space and config.dt == robot.action.dt
    joints = sum(len(a.chain.joints) for a in robot.arms)
    grippers = sum(a.gripper is not None for a in robot.arms)
    assert config.state_dim == joints + grippers
