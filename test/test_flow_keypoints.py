"""The keypoint head: spatial softmax lands on the peak, the instruction moves the points, tokens per camera."""

from __future__ import annotations

import pytest
import torch
from flow_helpers import one_torch_thread, random_model, tensor_batch, tiny_config  # noqa: F401

from ros2_vla.errors import PolicyError
from ros2_vla.policies.flow.vision import KeypointHead


def _peaked_head(channels: int = 4, width: int = 8) -> KeypointHead:
    """A head whose one heatmap is channel 0 of its (identity-like) input, sharpened."""
    head = KeypointHead(channels, keypoints=1, width=width)
    with torch.no_grad():
        head.conv.weight.zero_()
        head.conv.bias.zero_()
        for c in range(channels):
            head.conv.weight[c, c, 1, 1] = 1.0  # the 3x3 centre tap: x -> gelu(x)
        head.heatmaps.weight.zero_()
        head.heatmaps.bias.zero_()
        head.heatmaps.weight[0, 0] = 1.0
        head.log_temperature.fill_(-3.0)  # a near-argmax softmax
    return head


@pytest.mark.parametrize(("row", "col"), [(5, 20), (0, 0), (23, 11)])
def test_points_are_the_expected_coordinates_of_the_peak(row, col):
    head = _peaked_head()
    features = torch.zeros(1, 4, 24, 24)
    features[0, 0, row, col] = 3.0
    with torch.no_grad():
        point = head.points(features, torch.zeros(1, 8))[0, 0]
    grid = torch.linspace(-1.0, 1.0, 24)
    torch.testing.assert_close(point, torch.stack([grid[col], grid[row]]), atol=1e-3, rtol=0)


def test_the_instruction_picks_which_peak_the_points_follow():
    head = _peaked_head()
    features = torch.zeros(1, 4, 24, 24)
    features[0, 0, 3, 3] = 1.0  # one object's peak in channel 0
    features[0, 1, 20, 20] = 1.0  # another's in channel 1
    with torch.no_grad():
        head.conv.weight[0, 1, 1, 1] = 1.0  # both channels feed the heatmap
        # FiLM rows 0..3 scale channels 0..3 by (1 + row): instruction feature k switches channel 1 - k off.
        head.film.weight[1, 0] = -1.0
        head.film.weight[0, 1] = -1.0
        only_0, only_1 = torch.eye(8)[:1], torch.eye(8)[1:2]
        at_0, at_1 = head.points(features, only_0)[0, 0], head.points(features, only_1)[0, 0]
    grid = torch.linspace(-1.0, 1.0, 24)
    torch.testing.assert_close(at_0, torch.stack([grid[3], grid[3]]), atol=0.05, rtol=0)
    torch.testing.assert_close(at_1, torch.stack([grid[20], grid[20]]), atol=0.05, rtol=0)


def test_each_camera_gets_one_keypoint_token_and_the_words_reach_it():
    config = tiny_config(keypoints=3)
    model = random_model(config)
    batch = tensor_batch(config, ["pick up the red cube", "pick up the blue cube"], seed=1)
    with torch.no_grad():
        inputs = model.make_inputs(batch["images"], batch["state"], batch["instruction"])
        text = model.prefix.text(inputs.text).mean(1)
        tokens = model.prefix.vision(inputs.images, text)
        per_camera = config.tokens_per_camera + 1
        assert tokens.shape == (2, len(config.cameras) * per_camera, config.width)
        torch.nn.init.normal_(model.prefix.vision.keypoints.film.weight, std=1.0)
        swapped = model.prefix.vision(inputs.images, text.flip(0))  # same images, the other instruction
    keypoint_rows = [c * per_camera + config.tokens_per_camera for c in range(len(config.cameras))]
    assert (tokens[:, keypoint_rows] - swapped[:, keypoint_rows]).abs().max() > 1e-4  # the words move the points
    patch_rows = [i for i in range(tokens.shape[1]) if i not in keypoint_rows]
    torch.testing.assert_close(tokens[:, patch_rows], swapped[:, patch_rows])  # patches do not read the words


def test_a_keypoint_encoder_without_the_instruction_is_refused():
    config = tiny_config(keypoints=2)
    model = random_model(config)
    images = torch.zeros(1, len(config.cameras), 3, *config.image_size)
    with pytest.raises(PolicyError, match="pooled instruction"):
        model.prefix.vision(images)
