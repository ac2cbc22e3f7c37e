"""Backends by name: `load_policy("flow", model_dir, ...)`. Imports are lazy, so a machine without
bitsandbytes can still run the flow backend and the other way round."""

from __future__ import annotations

import dataclasses
import difflib
from collections.abc import Callable
from dataclasses import dataclass

from ros2_vla.config import RobotConfig
from ros2_vla.cpu import inference_threads
from ros2_vla.errors import PolicyError
from ros2_vla.policies.base import Policy
from ros2_vla.policies.defaults import DEFAULT_BACKEND, default_model


@dataclass(frozen=True)
class LoadOptions:
    """What vla_node's parameters say about loading, whatever the backend."""

    model: str  # checkpoint directory
    device: str = "auto"  # auto | cpu | cuda
    quantization: str = ""  # openvla: 4bit | 8bit | bf16 | fp32; "" = the backend's default for the device
    unnorm_key: str = ""  # openvla: which dataset's statistics un-normalize the actions
    server: str = ""  # openpi: host:port of the policy server
    api_key: str = ""  # openpi: sent as `Authorization: Api-Key <key>`
    openpi_preset: str = ""  # openpi: droid | libero | aloha | a YAML path; "": the server is `ros2-vla serve`
    rtc: bool = False  # flow: real-time chunking (each chunk continues the one the robot is playing)


def _openvla(robot: RobotConfig, opts: LoadOptions) -> Policy:
    from ros2_vla.policies.openvla.backend import OpenVlaConfig, OpenVlaPolicy
    from ros2_vla.policies.openvla.loading import resolve_device

    if resolve_device(opts.device) == "cpu":  # (the flow backend does the same itself)
        import torch

        torch.set_num_threads(inference_threads())
    return OpenVlaPolicy(
        OpenVlaConfig(
            checkpoint=opts.model,
            dt=robot.action.dt,
            cameras=tuple(c.name for c in robot.cameras),
            unnorm_key=opts.unnorm_key or None,
            quantization=opts.quantization or None,
            device=opts.device,
            action_space=robot.action.space,
            dimension_names=robot.action.dimension_names,
        )
    )


def _openpi(robot: RobotConfig, opts: LoadOptions) -> Policy:
    from ros2_vla.policies.openpi.backend import OpenpiConfig, OpenpiPolicy

    if not opts.server:
        raise PolicyError("policy 'openpi' needs the policy server's address: set the `server` parameter (host:port)")
    return OpenpiPolicy(OpenpiConfig(server=opts.server, preset=opts.openpi_preset, api_key=opts.api_key), robot)


def _flow(robot: RobotConfig, opts: LoadOptions) -> Policy:
    from ros2_vla.policies.flow.backend import FlowPolicy

    return FlowPolicy.from_options(robot, opts)


BACKENDS: dict[str, Callable[[RobotConfig, LoadOptions], Policy]] = {
    "openvla": _openvla,
    "flow": _flow,
    "openpi": _openpi,
}
REMOTE_BACKENDS = ("openpi",)  # no model directory: the model lives behind a server
RTC_BACKENDS = ("flow",)  # real-time chunking needs the sampler: a flow model in this process


def load_policy(backend: str, robot: RobotConfig, opts: LoadOptions) -> Policy:
    """Build a backend; unknown names get a did-you-mean, any loading failure a PolicyError."""
    if backend not in BACKENDS:
        close = difflib.get_close_matches(backend, BACKENDS, n=1)
        hint = f" Did you mean {close[0]!r}?" if close else ""
        raise PolicyError(f"unknown policy backend {backend!r}; backends: {sorted(BACKENDS)}.{hint}")
    if opts.rtc and backend not in RTC_BACKENDS:
        raise PolicyError(
            f"real-time chunking (rtc) needs a flow model sampled here ({list(RTC_BACKENDS)}); "
            f"policy {backend!r} cannot do it: set rtc to false"
        )
    if not opts.model and backend == DEFAULT_BACKEND:
        opts = dataclasses.replace(opts, model=str(default_model(robot.name)))  # the shipped policy, if any
    if not opts.model and backend not in REMOTE_BACKENDS:
        raise PolicyError(f"policy {backend!r} needs a model directory: set the `model` parameter")
    try:
        return BACKENDS[backend](robot, opts)
    except PolicyError:
        raise
    except ModuleNotFoundError as exc:
        raise PolicyError(f"policy {backend!r} needs the Python package {exc.name!r}, which is not installed") from exc
    except (OSError, RuntimeError, ValueError) as exc:  # what torch/transformers raise on bad files or memory
        raise PolicyError(f"policy {backend!r} failed to load {opts.model}: {type(exc).__name__}: {exc}") from exc
