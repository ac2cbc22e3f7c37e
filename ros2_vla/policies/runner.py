"""The policy's own thread: load once, then observation -> chunk, never blocking the caller.

No ROS: vla_node feeds an ObservationBuffer from its callbacks and gets chunks and status through
two callbacks. One inference at a time; each uses the newest observation, and never the same one
twice. Loading (seconds to minutes) also runs here, so the node answers while a model loads.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from enum import Enum

from ros2_vla.actions.chunk import Chunk
from ros2_vla.errors import PolicyDone, PolicyError, PolicyUnavailable
from ros2_vla.policies.base import MAX_INSTRUCTION_CHARS, Observation, Policy, PolicyOutput, PolicySpec
from ros2_vla.policies.observation import ObservationBuffer


def output_chunk(
    embodiment: str,
    spec: PolicySpec,
    out: PolicyOutput,
    stamp: float,
    instruction: str,
    sequence: int,
    inference_time: float,
) -> Chunk:
    """A backend's output as the ActionChunk vla_node publishes: layout from `spec`, values / tokens /
    low / high / normalized from `out`, stamped [s] with the observation's capture time."""
    return Chunk(
        stamp=stamp,
        embodiment=embodiment,
        action_space=spec.action_space,
        dimension_names=spec.dimension_names,
        dt=spec.dt,
        horizon=spec.horizon,
        values=out.values,
        tokens=out.tokens,
        num_bins=out.num_bins,
        low=out.low,
        high=out.high,
        normalized=out.normalized,
        instruction=instruction,
        policy=spec.name,
        sequence=sequence,
        inference_time=inference_time,
    )


def infer_chunk(embodiment: str, policy: Policy, obs: Observation, sequence: int) -> Chunk:
    """One forward pass made into the chunk vla_node publishes (vla_node's policy thread and the in-process
    evaluation both come here): stamped with the observation, timed by the backend's own figure or else by
    the call's wall time. The backend's exceptions are the caller's to classify."""
    start = time.perf_counter()
    out = policy.infer(obs)
    elapsed = time.perf_counter() - start if out.inference_time is None else out.inference_time
    return output_chunk(embodiment, policy.spec, out, obs.stamp, obs.instruction, sequence, elapsed)


class PolicyCode(str, Enum):
    """vla_node's status codes, named as the PolicyStatus.msg constants (test_interfaces checks); a str, so a
    code compares equal to its name."""

    IDLE = "IDLE"  # no instruction (or an empty one): no chunks
    LOADING = "LOADING"  # the model is being loaded
    WAITING = "WAITING"  # instruction set, waiting for a complete, fresh observation
    RUNNING = "RUNNING"  # chunks are being published
    OBSERVATION_REFUSED = "OBSERVATION_REFUSED"  # the newest observation or the instruction was refused
    ERROR = "ERROR"  # the model failed to load or to run


@dataclass(frozen=True)
class RunnerStatus:
    """What vla_node publishes as PolicyStatus: the runner's code, message, policy, instruction and chunk figures."""

    code: PolicyCode
    message: str
    policy: str = ""
    instruction: str = ""
    sequence: int = 0
    inference_time: float = 0.0  # [s] of the last chunk
    rate_hz: float = 0.0  # chunks per second, smoothed


class PolicyRunner:
    """The policy's own thread: loads a model, then turns the newest observation into chunks, one at a time."""

    def __init__(
        self,
        embodiment: str,
        buffer: ObservationBuffer,
        clock: Callable[[], float],
        on_chunk: Callable[[Chunk], None],
        on_status: Callable[[RunnerStatus], None],
        max_instruction_chars: int = MAX_INSTRUCTION_CHARS,
    ) -> None:
        self.embodiment, self.buffer, self.clock = embodiment, buffer, clock
        self.on_chunk, self.on_status = on_chunk, on_status
        self.max_instruction_chars = max_instruction_chars
        self._lock = threading.Lock()  # guards buffer, instruction and policy between threads
        self._policy: Policy | None = None
        self._instruction = ""
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._sequence = 0
        self._last_stamp = -1.0
        self._rate = 0.0
        self._last_publish: float | None = None
        self._status = RunnerStatus(PolicyCode.IDLE, "no model loaded")
        # Not a daemon: at exit Python waits for the forward pass in progress. A daemon thread would be
        # killed by pthread_exit when it next takes the GIL inside torch's C++ frames, which aborts the
        # process ("terminate called without an active exception", exit -6) after Ctrl-C.
        self._thread = threading.Thread(target=self._loop, name="policy")
        self._loader: Callable[[], Policy] | None = None

    # --- called from the node's callbacks -----------------------------------------------------
    def start(self) -> None:
        self._thread.start()

    def load(self, loader: Callable[[], Policy]) -> None:
        """Load a (new) model on the policy thread; chunks stop until it is ready."""
        with self._lock:
            self._loader, self._policy = loader, None
        self._wake.set()

    def set_instruction(self, text: str) -> None:
        """A new instruction takes effect at the next chunk; empty stops the chunks."""
        text = text.strip()
        if len(text) > self.max_instruction_chars:
            with self._lock:
                self._instruction = ""
            self._report(
                PolicyCode.OBSERVATION_REFUSED,
                f"instruction of {len(text)} characters refused (limit {self.max_instruction_chars}): stopped",
            )
            return
        with self._lock:
            self._instruction = text
        if not text:
            self._report(PolicyCode.IDLE, "empty instruction: stopped")
        self._wake.set()

    def add_frame(self, camera: str, stamp: float, rgb) -> None:
        """A decoded camera frame (`ObservationBuffer.add_frame`); wakes the policy thread."""
        with self._lock:
            self.buffer.add_frame(camera, stamp, rgb)
        self._wake.set()

    def add_joint_state(self, stamp: float, names: list[str], positions: list[float]) -> None:
        """A joint state (`ObservationBuffer.add_joint_state`)."""
        with self._lock:
            self.buffer.add_joint_state(stamp, names, positions)

    def notify(self) -> None:
        """New input arrived (a frame): maybe time for the next inference."""
        self._wake.set()

    def stop(self, timeout: float = 5.0) -> bool:
        """Stop after the current load or forward pass; False if that is still running after `timeout` s."""
        self._stop.set()
        self._wake.set()
        self._thread.join(timeout=timeout)
        return not self._thread.is_alive()

    @property
    def status(self) -> RunnerStatus:
        return self._status

    # --- the policy thread --------------------------------------------------------------------
    def _loop(self) -> None:
        while not self._stop.is_set():
            self._wake.wait(timeout=0.1)
            self._wake.clear()
            with self._lock:
                loader, self._loader = self._loader, None
            if loader is not None:
                self._load(loader)
                continue
            self._step()

    def _load(self, loader: Callable[[], Policy]) -> None:
        self._report(PolicyCode.LOADING, "loading the model")
        try:
            policy = loader()
        except PolicyError as exc:
            self._report(PolicyCode.ERROR, f"model failed to load: {exc}")
            return
        except Exception as exc:  # a backend bug must not kill the thread: the node stays up
            self._report(PolicyCode.ERROR, f"model failed to load: {type(exc).__name__}: {exc}")
            return
        with self._lock:
            self._policy = policy
            self.buffer.cameras = policy.spec.cameras  # wait only for the cameras this model reads
        self._report(PolicyCode.WAITING if self._instruction else PolicyCode.IDLE, f"{policy.spec.name} ready")
        self._wake.set()

    def _step(self) -> None:
        with self._lock:
            policy, instruction = self._policy, self._instruction
            if policy is None or not instruction:
                return
            try:
                obs = self.buffer.assemble(self.clock(), instruction)
            except PolicyError as exc:
                self._report(PolicyCode.OBSERVATION_REFUSED, str(exc))
                return
        if obs.stamp <= self._last_stamp:
            return  # nothing new since the last chunk
        try:
            chunk = infer_chunk(self.embodiment, policy, obs, self._sequence + 1)
        except PolicyUnavailable as exc:  # a policy server down or failing: not the observation's fault
            self._report(PolicyCode.ERROR, str(exc))
            return
        except PolicyDone as exc:  # the policy says the task is over: no more chunks, the bridge holds
            with self._lock:
                self._instruction = ""
            self._report(PolicyCode.IDLE, f"{exc}: stopped until the next instruction")
            return
        except PolicyError as exc:
            self._report(PolicyCode.OBSERVATION_REFUSED, str(exc))
            return
        except Exception as exc:  # out of memory, a backend bug: say so, publish nothing, keep going
            self._report(PolicyCode.ERROR, f"inference failed: {type(exc).__name__}: {exc}")
            return
        self._last_stamp = obs.stamp
        self._sequence = chunk.sequence
        self.on_chunk(chunk)
        if hasattr(policy, "observe_delay"):  # real-time chunking measures its delay online
            policy.observe_delay(self.clock() - obs.stamp)
        now = time.monotonic()
        if self._last_publish is not None:  # chunks per second as published, smoothed
            hz = 1.0 / max(now - self._last_publish, 1e-6)
            self._rate = 0.8 * self._rate + 0.2 * hz if self._rate else hz
        self._last_publish = now
        self._report(PolicyCode.RUNNING, f"chunk {self._sequence}", inference_time=chunk.inference_time)
        self._wake.set()  # go again as soon as a newer observation is there

    def _report(self, code: PolicyCode, message: str, inference_time: float | None = None) -> None:
        policy = self._policy.spec.name if self._policy is not None else ""
        self._status = RunnerStatus(
            code,
            message,
            policy,
            self._instruction,
            self._sequence,
            self._status.inference_time if inference_time is None else inference_time,
            self._rate,
        )
        self.on_status(self._status)
