"""The step loop both trainers share: progress bar, windowed log records, periodic saves, Ctrl-C.

A trainer gives a `step()` returning that step's metrics (a dict with "loss"; every value is averaged
over the log window), `extras()` for values logged as they are at the record (the learning rate...),
and `save(step)`. The loop stops at `total` steps or at SIGINT (the step in progress finishes first).
"""

from __future__ import annotations

import signal
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import numpy as np

from ros2_vla.training.log import TrainLog


@dataclass(frozen=True)
class LoopResult:
    """Where the step loop started and stopped, its last window's loss, its wall time, and whether SIGINT ended it."""

    first: int  # the step the loop started from
    step: int  # the step it stopped at
    loss: float  # mean loss of the last log window (NaN when no step ran)
    wall: float  # [s]
    interrupted: bool  # stopped by SIGINT before `total`

    @property
    def steps_per_s(self) -> float:
        return (self.step - self.first) / self.wall if self.wall > 0 else 0.0


@contextmanager
def sigint_flag() -> Iterator[dict[str, bool]]:
    """Yields a dict whose "stop" turns True on SIGINT (main thread only; elsewhere nothing is caught)."""
    flag = {"stop": False}
    if threading.current_thread() is not threading.main_thread():
        yield flag
        return
    previous = signal.signal(signal.SIGINT, lambda *_: flag.update(stop=True))
    try:
        yield flag
    finally:
        signal.signal(signal.SIGINT, previous)


def run_steps(
    first: int,
    total: int,
    step: Callable[[], dict[str, float]],
    extras: Callable[[], dict[str, float]],
    save: Callable[[int], None],
    log: TrainLog | None,
    log_every: int,
    save_every: int,
    progress: bool,
    postfix: Callable[[dict[str, float]], dict[str, str]],
    agree: Callable[[bool], bool] = lambda stop: stop,
) -> LoopResult:
    """Steps first+1..total. A log record every `log_every` steps (and at `total`): metric means over the
    window, `extras()`, steps/s (time spent saving excluded) and wall time; `save(step)` every
    `save_every` steps before `total` (the caller saves the last one). `log` None: no records (a process
    other than rank 0). `agree(stop)`: whether to stop, given this process's Ctrl-C, so that the processes
    of a distributed run stop at one step."""
    from tqdm import tqdm

    n, t0 = first, time.perf_counter()
    window: list[dict[str, float]] = []
    window_t0, loss = t0, float("nan")
    bar = tqdm(total=total, initial=n, unit="step", dynamic_ncols=True, disable=not progress)
    with sigint_flag() as flag, bar:
        while n < total and not agree(flag["stop"]):
            metrics = step()
            n += 1
            window.append(metrics)
            bar.update(1)
            bar.set_postfix(**postfix(metrics))
            if n % log_every == 0 or n == total:
                now = time.perf_counter()
                record = {k: float(np.mean([m[k] for m in window])) for k in window[0]}
                loss = record["loss"]
                if log is not None:
                    log.append(
                        {
                            "step": n,
                            **record,
                            **extras(),
                            "steps_per_s": len(window) / (now - window_t0),
                            "wall_s": now - t0,
                        }
                    )
                window, window_t0 = [], now
            if n % save_every == 0 and n < total:
                saving = time.perf_counter()
                save(n)
                window_t0 += time.perf_counter() - saving  # steps/s counts training, not saving
    if window:
        loss = float(np.mean([m["loss"] for m in window]))
    return LoopResult(first, n, loss, time.perf_counter() - t0, n < total)
