"""Ways to say each task: the canonical template, training paraphrases, and held-out paraphrases.

A policy that only ever heard "pick up the red cube" has learned a string, not the task. Demos can
be recorded with varied wording (sim_node `phrasing:=train`) and a policy evaluated on wording it
never saw (`ros2-vla eval --phrasing heldout`). Rules the sets keep (tests check them):
- every phrasing names each of the task's colors, in the task's order ({0}, {1}): the color is what
  names the object, and for two arms the order says which arm takes which cube;
- "train" is the template plus TRAINING paraphrases; HELD_OUT shares no phrasing with it, and uses
  verbs and a noun ("block") that no training phrasing uses, so a held-out success is generalization.
TRAINING varies the verb and the noun too ("fetch", "box", "brick"), so a policy learns that the
color and the bowl name the task and the other words may change. `parse_instruction` reads a
template or training wording back into its task, so training can re-word recorded demos (`--rephrase`).
The choice for a seed comes from its own random stream, so the scene and task of a seed do not
change with the phrasing.
"""

from __future__ import annotations

import re
from functools import lru_cache

import numpy as np

from ros2_vla.errors import ConfigError
from ros2_vla.sim.tasks import TEMPLATES, Task

PHRASINGS = ("template", "train", "heldout")  # template: TEMPLATES only; train: TEMPLATES + TRAINING
DEFAULT_PHRASING = "template"  # sim_node, eval, record and demo word tasks this way unless told otherwise
_STREAM = 0x70687261  # mixed with the seed: the phrasing draw never touches the scene's random stream

TRAINING: dict[str, tuple[str, ...]] = {
    "pick": (
        "pick the {0} cube up",
        "lift the {0} cube",
        "grasp the {0} cube",
        "lift up the {0} cube",
        "raise the {0} cube off the table",
        "pick up the {0} cube from the table",
        "grasp the {0} cube and lift it",
        "fetch the {0} cube",
        "pick out the {0} cube",
        "collect the {0} cube",
        "lift the {0} box",
        "raise the {0} box",
        "pick up the {0} brick",
    ),
    "place": (
        "place the {0} cube into the bowl",
        "put the {0} cube into the bowl",
        "place the {0} cube in the bowl",
        "move the {0} cube to the bowl",
        "set the {0} cube in the bowl",
        "put the {0} cube inside the bowl",
        "pick up the {0} cube and put it in the bowl",
        "carry the {0} cube to the bowl",
        "deposit the {0} cube in the bowl",
        "fetch the {0} cube and place it in the bowl",
        "put the {0} box in the bowl",
        "load the {0} box into the bowl",
        "transfer the {0} brick into the bowl",
    ),
    "bimanual_pick": (
        "lift the {0} cube and the {1} cube",
        "grasp the {0} cube and the {1} cube",
        "pick the {0} cube and the {1} cube up",
        "lift up the {0} cube and the {1} cube",
        "raise the {0} cube and the {1} cube off the table",
    ),
}

HELD_OUT: dict[str, tuple[str, ...]] = {
    "pick": (
        "grab the {0} block",
        "take the {0} block",
        "get the {0} block",
        "hold up the {0} block",
        "snatch the {0} block",
    ),
    "place": (
        "drop the {0} block in the bowl",
        "take the {0} block to the bowl",
        "grab the {0} block and drop it in the bowl",
        "stash the {0} block in the bowl",
        "get the {0} block into the bowl",
    ),
    "bimanual_pick": (
        "grab the {0} block and the {1} block",
        "take the {0} block and the {1} block",
        "hold up the {0} block and the {1} block",
        "get both the {0} block and the {1} block",
    ),
}


def phrasings(kind: str, phrasing: str) -> tuple[str, ...]:
    """The format strings a task `kind` may be said with under `phrasing` (one of PHRASINGS)."""
    if kind not in TEMPLATES:
        raise ConfigError(f"unknown task kind {kind!r}; kinds: {sorted(TEMPLATES)}")
    if phrasing == "template":
        return (TEMPLATES[kind],)
    if phrasing == "train":
        return (TEMPLATES[kind], *TRAINING[kind])
    if phrasing == "heldout":
        return HELD_OUT[kind]
    raise ConfigError(f"unknown phrasing {phrasing!r}; use one of {PHRASINGS}")


def phrase(task: Task, phrasing: str, rng: np.random.Generator) -> str:
    """The task in words: one of its `phrasing` format strings drawn with `rng`, colors filled in."""
    options = phrasings(task.kind, phrasing)
    return options[int(rng.integers(len(options)))].format(*task.colors)


def instruction_for(task: Task, phrasing: str, seed: int) -> str:
    """The instruction of episode `seed` under `phrasing`: the same for the same seed everywhere (sim_node,
    `ros2-vla eval`), and drawn from a stream of its own, so the seed's scene and task are unchanged."""
    return phrase(task, phrasing, np.random.default_rng((_STREAM, int(seed) & 0xFFFFFFFF)))


def parse_instruction(text: str) -> tuple[str, tuple[str, ...]] | None:
    """(kind, colors) of an instruction said with the template or a training phrasing; None for any
    other wording (a held-out phrasing, or a user's own demo)."""
    for kind, pattern in _patterns():
        match = pattern.fullmatch(text.strip().lower())
        if match:
            return kind, match.groups()
    return None


@lru_cache(maxsize=1)
def _patterns() -> tuple[tuple[str, re.Pattern], ...]:
    """One full-match regex per (kind, phrasing); a color is one word."""
    out = []
    for kind in TEMPLATES:
        for fmt in phrasings(kind, "train"):
            out.append((kind, re.compile(re.escape(fmt).replace(r"\{0\}", "([a-z]+)").replace(r"\{1\}", "([a-z]+)"))))
    return tuple(out)
