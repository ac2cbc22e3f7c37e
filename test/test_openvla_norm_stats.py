"""OpenVLA action statistics: where they are read from, how unnorm_key picks one, what is refused."""

from __future__ import annotations

import json

import numpy as np
import pytest

from ros2_vla.errors import PolicyError
from ros2_vla.policies.openvla.norm_stats import (
    action_stats,
    load_action_stats,
    read_norm_stats,
    resolve_unnorm_key,
)
from ros2_vla.policies.openvla.published_stats import BRIDGE_ORIG_ACTION, bridge_orig_norm_stats


def _entry(q01, q99, mask=None) -> dict:
    action = {"q01": q01, "q99": q99}
    if mask is not None:
        action["mask"] = mask
    return {"action": action}


def _write(dirpath, config_stats=None, dataset_stats=None):
    config = {"model_type": "llava"}
    if config_stats is not None:
        config["norm_stats"] = config_stats
    (dirpath / "config.json").write_text(json.dumps(config))
    if dataset_stats is not None:
        (dirpath / "dataset_statistics.json").write_text(json.dumps(dataset_stats))
    return dirpath


def test_single_key_is_chosen_without_unnorm_key(tmp_path):
    stats = load_action_stats(_write(tmp_path, bridge_orig_norm_stats()), None)
    assert stats.key == "bridge_orig"
    assert stats.dim == 7
    assert np.array_equal(stats.low, np.float32(BRIDGE_ORIG_ACTION["q01"]))
    assert np.array_equal(stats.high, np.float32(BRIDGE_ORIG_ACTION["q99"]))
    assert stats.mask.tolist() == [True] * 6 + [False]
    assert stats.low.dtype == np.float32 and stats.mask.dtype == np.bool_


def test_arrays_are_read_only(tmp_path):
    stats = load_action_stats(_write(tmp_path, bridge_orig_norm_stats()), None)
    with pytest.raises(ValueError):
        stats.low[0] = 1.0


def test_several_keys_need_unnorm_key_and_the_error_lists_them(tmp_path):
    both = {**bridge_orig_norm_stats(), "fractal20220817_data": _entry([-1.0] * 7, [1.0] * 7)}
    _write(tmp_path, both)
    with pytest.raises(PolicyError, match="unnorm_key") as err:
        load_action_stats(tmp_path, None)
    assert "bridge_orig" in str(err.value) and "fractal20220817_data" in str(err.value)
    assert load_action_stats(tmp_path, "fractal20220817_data").key == "fractal20220817_data"


def test_unknown_key_gets_did_you_mean(tmp_path):
    _write(tmp_path, bridge_orig_norm_stats())
    with pytest.raises(PolicyError, match="Did you mean 'bridge_orig'"):
        load_action_stats(tmp_path, "bridge_orgi")


def test_unknown_key_without_close_match_lists_known_keys(tmp_path):
    _write(tmp_path, bridge_orig_norm_stats())
    with pytest.raises(PolicyError, match="known keys: bridge_orig") as err:
        load_action_stats(tmp_path, "kuka")
    assert "Did you mean" not in str(err.value)


def test_no_statistics_anywhere_is_an_error(tmp_path):
    _write(tmp_path)
    with pytest.raises(PolicyError, match="no action statistics"):
        load_action_stats(tmp_path, None)


def test_dataset_statistics_file_alone_is_enough(tmp_path):
    # A fine-tune's dir: statistics only in dataset_statistics.json, as OpenVLA's fine-tuning writes them.
    _write(tmp_path, None, {"my_robot": _entry([-0.5, -0.5], [0.5, 0.7], [True, False])})
    stats = load_action_stats(tmp_path, None)
    assert stats.key == "my_robot" and stats.dim == 2
    assert stats.high.tolist() == pytest.approx([0.5, 0.7])


def test_dataset_statistics_file_replaces_same_key_and_adds_others(tmp_path):
    override = {"bridge_orig": _entry([-2.0] * 7, [2.0] * 7), "new": _entry([0.0], [1.0])}
    _write(tmp_path, bridge_orig_norm_stats(), override)
    merged = read_norm_stats(tmp_path)
    assert sorted(merged) == ["bridge_orig", "new"]
    assert load_action_stats(tmp_path, "bridge_orig").low.tolist() == [-2.0] * 7


def test_missing_mask_means_every_dim_normalized(tmp_path):
    # OpenVLA's predict_action: mask defaults to all True when the statistics have none
    _write(tmp_path, {"k": _entry([-1.0, 0.0], [1.0, 2.0])})
    assert load_action_stats(tmp_path, "k").mask.tolist() == [True, True]


@pytest.mark.parametrize(
    "entry, message",
    [
        ({"proprio": {}}, "no 'action'"),
        ({"action": {"q99": [1.0]}}, "no 'q01'"),
        (_entry([0.0, 0.0], [1.0]), "q01 has 2 dims but q99 has 1"),
        (_entry([1.0], [0.0]), "q99 is below q01"),
        (_entry([0.0], [float("nan")]), "finite"),
        (_entry([], []), "non-empty"),
        (_entry([0.0, 0.0], [1.0, 1.0], [True]), "mask"),
        (_entry(["a"], [1.0]), "not a list of numbers"),
    ],
)
def test_malformed_statistics_are_refused(entry, message):
    with pytest.raises(PolicyError, match=message):
        action_stats({"k": entry}, "k")


def test_unnormalized_dim_may_have_high_below_low():
    # a masked-out dimension is never mapped through low/high, so its numbers are not checked for order
    stats = action_stats({"k": _entry([0.0, 1.0], [1.0, 0.0], [True, False])}, "k")
    assert stats.mask.tolist() == [True, False]


def test_invalid_json_names_the_file(tmp_path):
    _write(tmp_path, bridge_orig_norm_stats())
    (tmp_path / "dataset_statistics.json").write_text("{not json")
    with pytest.raises(PolicyError, match="dataset_statistics.json"):
        read_norm_stats(tmp_path)


def test_resolve_empty_string_acts_like_none():
    assert resolve_unnorm_key({"only": {}}, "") == "only"
