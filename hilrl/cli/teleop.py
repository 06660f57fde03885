"""``hilrl teleop``: drive the sim (or a robot) with an input device and watch the pose.

The loop lives in :mod:`hilrl.runtime.teleop_session`; this module reads the options,
builds the session and reports how it ended. ``hilrl find-limits`` reuses the helpers.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from typing import TextIO

from hilrl.cli.common import add_config_arguments, config_from_args
from hilrl.config.loader import ConfigError
from hilrl.config.root import RootConfig
from hilrl.runtime.teleop_session import PoseReading, SessionSummary
from hilrl.teleop.errors import TeleopError

DISPLAY_CHOICES = ("auto", "on", "off")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--duration",
        type=float,
        default=None,
        metavar="S",
        help="stop after S seconds (default: run until quit, Ctrl-C or --episodes)",
    )
    parser.add_argument(
        "--episodes",
        type=int,
        default=None,
        metavar="N",
        help="stop after N finished episodes (success, failure or time limit; "
        "re-recorded episodes do not count)",
    )
    add_session_arguments(parser)
    add_config_arguments(
        parser,
        RootConfig,
        example="hilrl teleop --teleop.device=keyboard --env.use_cameras=false --duration 30",
    )


def add_session_arguments(parser: argparse.ArgumentParser) -> None:
    """Options shared by ``teleop`` and ``find-limits``."""
    parser.add_argument(
        "--print-every",
        type=int,
        default=10,
        metavar="N",
        help="when stdout is not a terminal, print the pose every N ticks (default 10); "
        "on a terminal one line refreshes every tick",
    )
    parser.add_argument(
        "--display",
        choices=DISPLAY_CHOICES,
        default="auto",
        help="camera window: 'auto' shows it when a display exists (DISPLAY set) and "
        "env.use_cameras is true; 'on' requires it; 'off' never (cameras are then not "
        "rendered at all)",
    )
    parser.add_argument(
        "--no-engage",
        dest="engage",
        action="store_false",
        help="with a toggle device (the terminal keyboard) start each episode idle: press "
        "intervene (space) to drive. By default its keys drive at once",
    )


def run(args: argparse.Namespace) -> int:
    if args.duration is not None and args.duration <= 0:
        raise ConfigError("--duration", args.duration, "must be positive seconds")
    if args.episodes is not None and args.episodes <= 0:
        raise ConfigError("--episodes", args.episodes, "must be a positive count")
    cfg = config_from_args(RootConfig, args)
    result = run_session(cfg, args, verb="teleop", duration_s=args.duration, episodes=args.episodes)
    if isinstance(result, int):
        return result
    print(
        f"teleop: stopped ({result.reason}) after {result.elapsed_s:.1f} s, {result.ticks} "
        f"ticks, {result.episodes} episodes ({result.successes} success, {result.failures} "
        f"failure, {result.rerecorded} re-recorded)"
    )
    return 0


def run_session(
    cfg: RootConfig,
    args: argparse.Namespace,
    *,
    verb: str,
    duration_s: float | None,
    episodes: int | None = None,
    on_sample: Callable[[PoseReading], None] | None = None,
    continuous: bool = False,
    status_out: TextIO | None = None,
) -> SessionSummary | int:
    """Build and run one teleop session; an int is the exit status of a setup failure.

    The pose line goes to ``status_out`` (default stdout).
    """
    # start-up: MuJoCo and the input devices load when the verb runs, not for its --help
    from hilrl.runtime.teleop_session import (
        FrameViewer,
        SessionOptions,
        TeleopSession,
        open_teleop,
    )

    if args.print_every <= 0:
        raise ConfigError("--print-every", args.print_every, "must be a positive tick count")
    viewer = None
    if args.display == "on" and not cfg.env.use_cameras:
        raise ConfigError("--display", "on", "no camera images: env.use_cameras is false")
    if args.display != "off" and cfg.env.use_cameras:
        viewer = FrameViewer.open()
        if viewer is None and args.display == "on":
            print(f"hilrl {verb}: --display=on but {FrameViewer.why_not}", file=sys.stderr)
            return 2
        if viewer is None:
            print(f"{verb}: camera window off: {FrameViewer.why_not}", file=sys.stderr)
    options = SessionOptions(
        fps=cfg.env.fps,
        duration_s=duration_s,
        episodes=episodes,
        print_every=args.print_every,
        engage=args.engage,
    )
    try:
        with open_teleop(cfg, cameras=viewer is not None, continuous=continuous) as (
            env,
            controller,
            reader,
        ):
            session = TeleopSession(
                env,
                controller,
                reader,
                options,
                out=status_out,
                on_sample=on_sample,
                viewer=viewer,
            )
            return session.run()
    except NotImplementedError as exc:
        print(f"hilrl {verb}: {exc}", file=sys.stderr)
        return 2
    except TeleopError as exc:
        print(f"hilrl {verb}: {exc}", file=sys.stderr)
        return 2
    finally:
        if viewer is not None:
            viewer.close()
