"""Chunk blending: each new chunk of joint waypoints takes over the executing plan without a jump.

Slow brain, fast body: chunks arrive at 1-30 Hz whenever the policy is done; the bridge samples the
current plan at its control rate and never waits. `add` builds the next plan from the robot's commanded
state at `now` (position and velocity of the plan being played), so position and velocity are continuous
at the switch, and times it within the joint limits (`time_waypoints`, stretching time, never moving
points). Pure: every time is passed in, nothing reads a clock.

Chunk convention (as the ActionChunk message): step k of a chunk whose observation was taken at `stamp`
is commanded from stamp + k*dt and reached at stamp + (k+1)*dt.
The arm kept moving while the policy thought, so the bridge plans a delta chunk from where the arm
was commanded to be at `stamp` (`commanded_at`), not from where it is when the chunk arrives: from
the later pose each chunk would add the motion made during the inference to its own, and a slow
policy would overshoot every target by the distance covered in its latency.

Modes:
- "replace": play the whole chunk from now (step k reached at now + (k+1)*dt), ignoring latency.
- "skip": latency compensation; drop steps whose target time already passed (stamp + (k+1)*dt <= now)
  and keep the rest at their own times. A step that began before now but ends after it is kept:
  dropping it would throw away most of a short chunk at any latency (a 2-step WidowX chunk at 5 Hz
  lost half its steps to a few ms of DDS delay).
- "ensemble": ACT temporal ensembling over every chunk still covering the future, steps dropped as in
  "skip" (see `ensemble.py` for the weights).
A chunk none of whose steps is still ahead (a model slower than its own dt: OpenVLA-7B takes 0.2-0.4 s
for a 0.1 s step) is played whole from now in every mode, still from the pose commanded at its stamp:
dropping it would leave the arm standing still for ever behind a slow model.
In "replace" and "skip" the first `blend_steps` waypoints are mixed from the old plan's path into the new
chunk's, w = smoothstep((k+1)/(blend_steps+1)) on the new one.
"""

from __future__ import annotations

import numpy as np

from ros2_vla.errors import TrajectoryError
from ros2_vla.trajectory.blend_config import BlendConfig
from ros2_vla.trajectory.ensemble import TimedChunk, ensemble_at
from ros2_vla.trajectory.plan import Plan
from ros2_vla.trajectory.timing import HERMITE_ACCELERATION_FACTOR, time_waypoints

PAST_TOLERANCE = 1e-6  # [s] a chunk step due this close to now counts as played
HISTORY = 30.0  # [s] of superseded plans kept for `commanded_at`: the stamp of a slow model's chunk (seconds on
# a small GPU, 10-20 s for OpenVLA on a CPU) still finds the pose commanded then


def blend_weights(count: int, blend_steps: int) -> np.ndarray:
    """Weight (count,) of the new chunk on each of its first `count` waypoints: smooth 0 -> 1, then 1."""
    x = np.minimum((np.arange(count) + 1.0) / (blend_steps + 1.0), 1.0)
    return x * x * (3.0 - 2.0 * x)


class TrajectoryBlender:
    """Holds the plan being executed and turns each new chunk into the next plan.

    velocity_limits [rad/s] (n,), acceleration_limits [rad/s^2] (n,): from the robot config. The sampled
    cubic stays within the acceleration limit: waypoints are timed with a third of it, the worst-case
    ratio of the cubic's acceleration to the finite-difference one (`timing.py`).
    """

    def __init__(self, config: BlendConfig, velocity_limits: np.ndarray, acceleration_limits: np.ndarray) -> None:
        self.config = config
        self._vmax = np.array(velocity_limits, dtype=np.float64)
        self._amax = np.array(acceleration_limits, dtype=np.float64)
        if self._vmax.ndim != 1 or self._amax.shape != self._vmax.shape:
            raise TrajectoryError(f"limits must be two (n,) arrays; got {self._vmax.shape} and {self._amax.shape}")
        self._plan: Plan | None = None
        self._history: list[Plan] = []  # plans played before `_plan`, oldest first
        self._chunks: list[TimedChunk] = []

    def set_config(self, config: BlendConfig) -> None:
        """Blend the next chunk with `config`; the plan being played is kept. On a change of mode the
        chunks kept for the ensemble are dropped (outside "ensemble" they are not kept up to date)."""
        if config.mode != self.config.mode:
            self._chunks = []
        self.config = config

    @property
    def plan(self) -> Plan | None:
        """The plan being executed; None before `reset`."""
        return self._plan

    def reset(self, now: float, q: np.ndarray) -> Plan:
        """Forget every chunk and hold q [rad] (n,) (the measured joint state) from now [s]."""
        q = np.asarray(q, dtype=np.float64)
        if q.shape != self._vmax.shape or not np.all(np.isfinite(q)):
            raise TrajectoryError(f"reset needs {self._vmax.size} finite joint positions [rad]; got {q!r}")
        self._chunks, self._history = [], []
        self._plan = Plan.hold(now, q)
        return self._plan

    def stop(self, now: float, period: float, at: float | None = None) -> Plan:
        """Forget every chunk and bring the commanded motion at `at` [s] (default `now`) to rest from `now`
        (`at` on the clock before a jump, `now` on the new one): every joint slows at a
        constant rate, all ending together (so the arm keeps the direction it had) and none faster than its
        acceleration limit; points every `period` [s] or less. A cubic through points of a constant
        deceleration with their velocities is that deceleration, so a controller plays it exactly.
        This is how the bridge holds when it cannot trust where the arm is (stale joint states) or must
        let go (disarm): from the command the controller is following, not from a measurement that may
        be old, and without the jump a hold at one point a period ahead would make from speed."""
        q0, v0 = self._require_plan().sample(now if at is None else at)
        duration = max(float(np.max(np.abs(v0) / self._amax)), period)
        count = int(np.ceil(duration / period - 1e-9))
        t = duration * np.arange(count + 1) / count
        slowing = v0 / duration
        positions = q0 + np.outer(t, v0) - 0.5 * np.outer(t**2, slowing)
        velocities = v0 - np.outer(t, slowing)
        velocities[-1] = 0.0
        self._chunks, self._history = [], []
        self._plan = Plan(now + t, positions, velocities)
        return self._plan

    def sample(self, t: float) -> tuple[np.ndarray, np.ndarray]:
        """Commanded position [rad] (n,) and velocity [rad/s] (n,) at time t [s]."""
        return self._require_plan().sample(t)

    def commanded_at(self, t: float) -> np.ndarray:
        """Position [rad] (n,) commanded at time t [s], also before the current plan took over (from
        the plan then in force, up to HISTORY back); before the last `reset`: the position held then."""
        plan = self._require_plan()
        for p in reversed(self._history):
            if t >= plan.start_time:
                break
            plan = p
        return plan.sample(t)[0]

    def chunk_start(self, now: float, stamp: float) -> np.ndarray:
        """Position [rad] (n,) a delta chunk stamped `stamp` [s] is played from, received at `now` [s]: the
        one commanded at its stamp, as its steps are timed from there; "replace" plays it from now (a stamp
        ahead of this clock is read as now)."""
        return self.commanded_at(now if self.config.mode == "replace" else min(stamp, now))

    def add(
        self,
        now: float,
        stamp: float,
        dt: float,
        positions: np.ndarray,
        blend: bool = True,
        stretch: np.ndarray | None = None,
    ) -> Plan:
        """Take in a chunk of joint waypoints [rad] (H, n) predicted from the observation at `stamp` [s]
        with step `dt` [s]; returns the new plan.
        blend=False skips the hand-over window ("replace", "skip"): the chunk's waypoints are kept as
        they are (the bridge does so when the old plan is already at rest).
        stretch: (H,) >= 1, step k takes stretch[k] * dt (the bridge slows the steps that near a collision)."""
        plan = self._require_plan()
        q = np.asarray(positions, dtype=np.float64)
        if q.ndim != 2 or q.shape[0] < 1 or q.shape[1] != plan.dof or not np.all(np.isfinite(q)):
            raise TrajectoryError(
                f"chunk positions must be (H, {plan.dof}) finite joint positions [rad]; got shape {q.shape}"
            )
        if not (dt > 0.0 and np.isfinite(dt)):
            raise TrajectoryError(f"chunk dt must be finite and > 0 [s]; got {dt}")
        offsets = dt * np.cumsum(np.ones(q.shape[0]) if stretch is None else np.asarray(stretch, dtype=np.float64))
        if offsets.shape != (q.shape[0],) or not np.all(np.isfinite(offsets)):
            raise TrajectoryError(f"stretch must be {q.shape[0]} finite factors; got {stretch}")
        if self.config.mode == "replace":
            times, keep = now + offsets, np.ones(q.shape[0], dtype=bool)
        else:
            times = stamp + offsets
            # A step whose target time is still ahead is kept, even if it began earlier; one due within
            # PAST_TOLERANCE of now is past (stamp + 3 * 0.1 lands 4e-17 s after stamp + 0.3 in floating point,
            # and a step "kept" for that long is a jump to its target now).
            keep = times > now + PAST_TOLERANCE
        if not keep.any():  # entirely late: its motion is played from now rather than lost
            times, keep = now + offsets, np.ones(q.shape[0], dtype=bool)
        if self.config.mode == "ensemble":
            targets = self._ensemble(now, stamp, times, q, keep)
        else:
            w = blend_weights(int(keep.sum()), self.config.blend_steps if blend else 0)[:, None]
            targets = (1.0 - w) * plan.sample_positions(times[keep]) + w * q[keep]
        self._plan = self._timed(plan, now, times[keep], targets)
        self._history.append(plan)
        while len(self._history) > 1 and self._history[1].start_time < now - HISTORY:
            self._history.pop(0)  # superseded before the window
        return self._plan

    def _ensemble(self, now: float, stamp: float, times: np.ndarray, q: np.ndarray, keep: np.ndarray) -> np.ndarray:
        self._chunks = [c for c in self._chunks if c.times[-1] > now] + [TimedChunk(stamp, times, q)]
        self._chunks = sorted(self._chunks, key=lambda c: c.stamp)[-self.config.max_chunks :]
        return np.array([ensemble_at(self._chunks, float(t), self.config.ensemble_m) for t in times[keep]])

    def _timed(self, plan: Plan, now: float, times: np.ndarray, targets: np.ndarray) -> Plan:
        """The plan from the commanded state at now through `targets` (M, n), no faster than `times`."""
        q_now, qd_now = plan.sample(now)
        timing = time_waypoints(
            np.vstack([q_now, targets]),
            np.diff(np.concatenate([[now], times])),
            self._vmax,
            self._amax / HERMITE_ACCELERATION_FACTOR,
            v0=qd_now,
            stop_at_end=True,
        )
        return Plan(
            np.concatenate([[now], now + timing.times]),
            np.vstack([q_now, targets]),
            np.vstack([qd_now, timing.velocities]),
        )

    def _require_plan(self) -> Plan:
        if self._plan is None:
            raise TrajectoryError("the blender has no plan yet: call reset(now, q_measured) when the bridge is enabled")
        return self._plan
