"""Real-time chunking against a slow policy: closed-loop success and chunk-boundary jumps, in the sim.

    python benchmarks/rtc_bench.py [--episodes 20] [--delay 0.3] [--policy-period 0.1] [--json] [--plot out/rtc.png]

The shipped Franka flow policy runs `ros2_vla.evaluation.episode.run_episode` episodes on held-out seeds, one
chunk asked for every `--policy-period` seconds (0.1: several chunks in flight, as a pipelined server;
equal to the delay: one at a time, as a model that takes that long), each reaching the bridge `--delay`
seconds after its observation (the arm moving on meanwhile), under these settings, all on the same seeds:
- no-delay (skip, delay 0): the reference (chunks at the bridge as soon as made);
- skip / ensemble, delay: the bridge's blending alone against the delay;
- rtc, delay: the flow backend's real-time chunking (frozen steps and soft guidance), bridge in skip;
- rtc-hard, delay: frozen steps only (RtcConfig.soft_mask = False).
For each: successes, and the switch jump at every chunk taken while moving (BridgeStatus.switch_jump:
the largest joint change the chunk made to the command one step ahead) p50 / p95 / max [rad].
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np

from ros2_vla.config import load_robot_config
from ros2_vla.evaluation.adapter import BackendPolicy
from ros2_vla.evaluation.episode import run_episode
from ros2_vla.evaluation.seeds import HELD_OUT_SEED
from ros2_vla.policies.flow.rtc import RtcConfig
from ros2_vla.policies.registry import LoadOptions, load_policy
from ros2_vla.trajectory.blend_config import BlendConfig

SETTINGS = {  # name -> (blend mode, RTC config or None, delayed)
    "no-delay": ("skip", None, False),
    "skip": ("skip", None, True),
    "ensemble": ("ensemble", None, True),
    "rtc": ("skip", RtcConfig(), True),
    "rtc-hard": ("skip", RtcConfig(soft_mask=False), True),
}


def run_setting(name: str, episodes: int, delay: float, policy_period: float) -> dict:
    mode, rtc, delayed = SETTINGS[name]
    robot = load_robot_config("franka")
    backend = load_policy("flow", robot, LoadOptions(model="", rtc=rtc is not None))
    if rtc is not None:
        backend.rtc = rtc
    policy = BackendPolicy(robot, backend)
    jumps: list[float] = []
    successes, start = 0, time.perf_counter()
    for seed in range(HELD_OUT_SEED, HELD_OUT_SEED + episodes):
        result = run_episode(
            robot,
            seed,
            "",
            policy,
            cameras=policy.cameras,
            blend=BlendConfig(mode=mode),
            chunk_delay=delay if delayed else 0.0,
            policy_period=policy_period,
            on_chunk=lambda chunk, state: jumps.append(state.switch_jump) if state.switch_jump else None,
        )
        successes += result.success
    jumps_arr = np.array(jumps) if jumps else np.zeros(1)
    return {
        "setting": name,
        "delay_s": delay if delayed else 0.0,
        "policy_period_s": policy_period,
        "episodes": episodes,
        "successes": successes,
        "jump_p50_rad": float(np.percentile(jumps_arr, 50)),
        "jump_p95_rad": float(np.percentile(jumps_arr, 95)),
        "jump_max_rad": float(jumps_arr.max()),
        "wall_s": time.perf_counter() - start,
    }


def _plot(rows: list[dict], path: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (a, b) = plt.subplots(1, 2, figsize=(10, 3.5))
    names = [f"{r['setting']}\n{r['delay_s']:g} s" for r in rows]
    a.bar(names, [r["successes"] / r["episodes"] for r in rows], color="tab:blue")
    a.set_ylabel("success rate"), a.set_ylim(0, 1)
    b.bar(names, [r["jump_p95_rad"] for r in rows], color="tab:orange", label="p95")
    b.bar(names, [r["jump_p50_rad"] for r in rows], color="tab:red", label="p50")
    b.set_ylabel("switch jump [rad]"), b.legend()
    for ax in (a, b):
        ax.tick_params(axis="x", labelsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--episodes", type=int, default=20)
    parser.add_argument("--delay", type=float, default=0.3, help="[s] observation to bridge, for the delayed settings")
    parser.add_argument("--policy-period", type=float, default=0.1, help="[s] between chunk requests")
    parser.add_argument("--settings", nargs="+", default=list(SETTINGS), choices=list(SETTINGS))
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--plot", default="", help="also draw the table into this PNG")
    args = parser.parse_args()
    rows = []
    for name in args.settings:
        rows.append(run_setting(name, args.episodes, args.delay, args.policy_period))
        if not args.json:
            r = rows[-1]
            print(
                f"{r['setting']:16} delay {r['delay_s']:.2f} s  success {r['successes']:>2}/{r['episodes']}  "
                f"jump p50 {r['jump_p50_rad']:.4f} p95 {r['jump_p95_rad']:.4f} max {r['jump_max_rad']:.4f} rad  "
                f"({r['wall_s']:.0f} s)",
                flush=True,
            )
    if args.json:
        print(json.dumps(rows, indent=2))
    if args.plot:
        _plot(rows, args.plot)


if __name__ == "__main__":
    main()
