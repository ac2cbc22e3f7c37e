"""Phrasings: training and held-out wordings are disjoint, name the colors, and leave the task alone."""

from __future__ import annotations

import re

import numpy as np
import pytest

from ros2_vla.errors import ConfigError
from ros2_vla.sim.phrasings import HELD_OUT, PHRASINGS, TRAINING, instruction_for, parse_instruction, phrase, phrasings
from ros2_vla.sim.scene import SceneSpec
from ros2_vla.sim.tasks import TEMPLATES, Task

KINDS = tuple(TEMPLATES)


def words(text: str) -> set[str]:
    return set(re.findall(r"[a-z]+", text.lower()))


@pytest.mark.parametrize("kind", KINDS)
def test_held_out_shares_no_phrasing_with_training_or_the_template(kind):
    train = set(phrasings(kind, "train"))
    held = set(phrasings(kind, "heldout"))
    assert TEMPLATES[kind] in train and not train & held
    assert len(held) == len(HELD_OUT[kind]) and len(train) == len(TRAINING[kind]) + 1  # no duplicates


@pytest.mark.parametrize("kind", KINDS)
def test_every_held_out_phrasing_has_a_word_training_never_uses(kind):
    train_words = set().union(*(words(p) for k in KINDS for p in phrasings(k, "train")))
    for p in phrasings(kind, "heldout"):
        assert words(p) - train_words, f"{p!r} uses only training words"
    assert "block" not in train_words  # the held-out noun


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("phrasing", PHRASINGS)
def test_every_phrasing_names_each_color_in_task_order(kind, phrasing):
    colors = SceneSpec().cube_colors
    need = TEMPLATES[kind].count("{")
    for p in phrasings(kind, phrasing):
        for i in range(len(colors) - need + 1):
            task = Task(kind, tuple(colors[i : i + need]))
            text = p.format(*task.colors)
            positions = [text.find(f" {c} ") for c in task.colors]
            assert all(k >= 0 for k in positions), f"{text!r} does not name {task.colors}"
            assert positions == sorted(positions), f"{text!r} names {task.colors} out of order"
            assert ("bowl" in text) == (kind == "place"), f"{text!r}: only place tasks mention the bowl"


@pytest.mark.parametrize("kind", KINDS)
def test_training_wordings_parse_back_to_their_task_and_held_out_ones_do_not(kind):
    colors = SceneSpec().cube_colors
    task = Task(kind, tuple(colors[: TEMPLATES[kind].count("{")]))
    for p in phrasings(kind, "train"):
        assert parse_instruction(p.format(*task.colors)) == (task.kind, task.colors), p
    assert parse_instruction(task.instruction.upper() + " ") == (task.kind, task.colors)
    for p in phrasings(kind, "heldout"):  # re-wording in training must never produce held-out wording
        assert parse_instruction(p.format(*task.colors)) is None, p
    assert parse_instruction("please tidy up the table") is None


def test_template_phrasing_is_the_task_instruction():
    task = Task("place", ("green",))
    assert phrase(task, "template", np.random.default_rng(0)) == task.instruction
    assert instruction_for(task, "template", 123) == task.instruction


def test_instruction_for_a_seed_is_fixed_and_seeds_vary_it():
    task = Task("pick", ("red",))
    assert instruction_for(task, "train", 7) == instruction_for(task, "train", 7)
    said = {instruction_for(task, "heldout", s) for s in range(40)}
    assert said == {p.format("red") for p in HELD_OUT["pick"]}  # every held-out wording gets used


def test_the_phrasing_draw_leaves_the_seeds_random_stream_alone():
    # sim_node draws the scene and task from default_rng(seed); the phrasing uses a stream of its own.
    before = np.random.default_rng(5).random(3)
    instruction_for(Task("pick", ("red",)), "train", 5)
    np.testing.assert_array_equal(np.random.default_rng(5).random(3), before)
    assert instruction_for(Task("pick", ("red",)), "train", -1)  # any int seed works


def test_unknown_phrasing_or_kind_is_refused():
    with pytest.raises(ConfigError, match="unknown phrasing 'heldin'.*template"):
        phrasings("pick", "heldin")
    with pytest.raises(ConfigError, match="unknown task kind"):
        phrasings("stack", "train")
