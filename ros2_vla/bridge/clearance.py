"""What the collision check does to a plan: each step's clearance, the speed it allows, where it must stop.

A step is judged only while it closes in on something (its clearance is smaller than the step before's,
the first against the start pose), so a plan that backs away from the table or out of a fold is never
slowed or stopped: that is how the arm leaves a halt. Inside a proximity threshold the speed is MoveIt
Servo's exp(-ln(1000) (threshold - d) / threshold), step by step: the bridge stretches the time to that
step by 1 / factor, so the plan runs at full speed until it nears contact. Closer than `halt_distance`
the step and the rest of the plan are dropped, and the arm stops at the step before (HALT_FOR_COLLISION).
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

from ros2_vla.collision_config import CollisionSpec
from ros2_vla.kinematics.collision import NO_PAIR, ArmCollisionModel, ArmPairCollision, Clearance

_DECAY = math.log(1000.0)  # MoveIt Servo: the speed falls to 0.001 at contact


@dataclass(frozen=True)
class StepClearance:
    """The collision check of one arm's planned steps."""

    kept: int  # steps before the first that would come within halt_distance (all when none)
    factors: np.ndarray  # (kept,) each kept step's speed factor (1: nothing near)
    closest: Clearance  # the pair of the slowest step, or the one that stops the plan at step `kept`
    halted: bool  # a step was dropped for collision

    @property
    def scale(self) -> float:
        """The slowest step's factor (1 when none is slowed)."""
        return float(self.factors.min(initial=1.0))

    @property
    def slowest_step(self) -> int:
        """The slowest step (-1 when none is slowed)."""
        return int(np.argmin(self.factors)) if self.scale < 1.0 else -1


def speed_factor(distance: float, previous: float, threshold: float) -> float:
    """MoveIt Servo's collision scaling [0, 1] for a step that ends `distance` [m] from contact after
    starting `previous` [m] from it; 1 when moving away or outside the threshold."""
    if distance >= previous or distance >= threshold:
        return 1.0
    return math.exp(-_DECAY * (threshold - max(distance, 0.0)) / threshold)


def check_steps(
    model: ArmCollisionModel, spec: CollisionSpec, q_start: np.ndarray, positions: np.ndarray
) -> StepClearance:
    """Judge the steps `positions` [rad] (K, n) that follow `q_start` [rad] (n,): self and scene."""
    rows = (model.clearances(q) for q in (q_start, *positions))
    return _judge(rows, len(positions), (spec.self_proximity, spec.scene_proximity), spec.halt_distance)


def check_between(
    pair: ArmPairCollision,
    spec: CollisionSpec,
    q_start: tuple[np.ndarray, np.ndarray],
    positions: tuple[np.ndarray, np.ndarray],
) -> StepClearance:
    """Judge two arms' steps (K, n) each, after their start poses, against each other (as self-collision)."""
    both = [np.vstack([start[None, :], steps]) for start, steps in zip(q_start, positions)]
    rows = ((c,) for c in pair.clearances(*both))  # every step at once: one vectorized distance call
    return _judge(rows, len(positions[0]), (spec.self_proximity,), spec.halt_distance)


def _judge(
    rows: Iterator[tuple[Clearance, ...]], steps: int, thresholds: tuple[float, ...], halt: float
) -> StepClearance:
    """`rows`: the closest pair of each kind at the start, then after each step (computed as needed: the
    check ends at the first step that halts)."""
    before = next(rows)
    factors = np.ones(steps)
    closest, lowest = NO_PAIR, 1.0  # the pair behind the smallest factor so far
    for k, now in enumerate(rows):
        for pair, last, threshold in zip(now, before, thresholds):
            if pair.distance < last.distance and pair.distance < halt:
                return StepClearance(k, factors[:k], pair, True)
            factor = speed_factor(pair.distance, last.distance, threshold)
            if factor < lowest:
                closest, lowest = pair, factor
            factors[k] = min(factors[k], factor)
        before = now
    return StepClearance(steps, factors, closest, False)
