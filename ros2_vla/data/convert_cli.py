"""`ros2-vla convert BAG [BAG ...] --to lerobot OUT`: recorded episodes -> a LeRobot v3.0 dataset.

A BAG is an episode folder (rosbag2, as `ros2-vla record` writes) or a folder of them. Episodes
labelled failures are left out unless --include-failed; unlabelled ones are kept. Actions are the
measured motion between frames, or with --labels commanded the chunks the robot was sent on
/vla/action_chunk (the expert's, a teleoperator's or a policy's), as the bridge played them.
"""

from __future__ import annotations

import argparse
import signal
import sys

from ros2_vla.data.episode import LABEL_SOURCES, MEASURED

FORMATS = ("lerobot",)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "bags", nargs="+", metavar="BAG", help="episode folder(s), or folder(s) holding episode folders"
    )
    # One option with two values: positional OUT after BAG... and --to would be swallowed by BAG's nargs.
    parser.add_argument(
        "--to",
        nargs=2,
        metavar=("FORMAT", "OUT"),
        required=True,
        help="dataset format (lerobot: LeRobot v3.0) and the dataset folder to create",
    )
    parser.add_argument("--overwrite", action="store_true", help="replace OUT if it exists and is not empty")
    parser.add_argument("--include-failed", action="store_true", help="also convert episodes labelled success: false")
    parser.add_argument(
        "--labels",
        choices=LABEL_SOURCES,
        default=MEASURED,
        help="action labels: the TCP/joint motion between frames (default), or the commanded chunk step "
        "under way at each frame (needs /vla/action_chunk in every bag)",
    )
    parser.add_argument(
        "--video-codec",
        choices=("h264", "av1"),
        default="h264",
        help="h264 (default) or av1 (what LeRobot's own recorder writes by default: datasets merge with "
        "LeRobot's aggregate_datasets only when their codecs match)",
    )
    parser.add_argument(
        "--crf", type=int, default=18, help="video quality (lower is better; h264: 0 lossless .. 51, av1: 0 .. 63)"
    )


def run(args: argparse.Namespace) -> int:
    from ros2_vla.data.convert import ConvertOptions, convert_to_lerobot
    from ros2_vla.data.video import VideoSettings
    from ros2_vla.errors import DatasetError

    fmt, out = args.to
    if fmt not in FORMATS:
        raise DatasetError(f"unknown dataset format {fmt!r}; known: {', '.join(FORMATS)}")

    # SIGTERM ends the conversion like Ctrl-C: the partial output is removed on the way out.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    options = ConvertOptions(
        overwrite=args.overwrite,
        include_failed=args.include_failed,
        video=VideoSettings(codec=args.video_codec, crf=args.crf),
        progress=sys.stderr.isatty(),
        labels=args.labels,
    )
    report = convert_to_lerobot(args.bags, out, options)
    print(
        f"wrote {report.out}: {report.episodes} episode(s), {report.frames} frames, {report.tasks} task(s), "
        f"{report.bytes_written / 1e6:.1f} MB in {report.seconds:.1f} s"
    )
    if report.skipped_failed:
        print(f"skipped {len(report.skipped_failed)} episode(s) labelled failure; --include-failed converts them")
    return 0
