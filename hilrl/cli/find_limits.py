"""``hilrl find-limits``: teleoperate for a while, then print the ranges seen as config YAML.

``--mode ee`` tracks the end-effector position and orientation and prints an
``env.workspace`` section (the box seen, widened by ``--margin``); ``--mode joint``
tracks every joint and prints their ranges. The session is one long episode (no time
limit, no reset on task success), so the arm is never teleported mid-exploration. The
env's workspace box and safety limits still apply while you drive: to explore beyond the
current box, widen it first with ``--env.workspace.low`` / ``--env.workspace.high``.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

from hilrl.cli.common import add_config_arguments, config_from_args
from hilrl.cli.teleop import add_session_arguments, run_session
from hilrl.config.loader import ConfigError
from hilrl.config.root import RootConfig
from hilrl.runtime.limits import (
    RangeTracker,
    ee_tracker,
    joint_limits_yaml,
    workspace_box,
    workspace_yaml,
)
from hilrl.runtime.teleop_session import PoseReading

MODES = ("ee", "joint")
DEFAULT_MARGIN = {"ee": 0.01, "joint": 0.02}
"""Metres on each side of the box (ee); joint units, radians for revolute joints (joint)."""
BOX_TOUCH_M = 2e-3
"""A bound within this distance of the configured workspace was probably stopped by it."""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--mode",
        choices=MODES,
        default="ee",
        help="'ee': end-effector position and orientation, printed as env.workspace; "
        "'joint': every joint's range (default ee)",
    )
    parser.add_argument(
        "--seconds",
        type=float,
        default=30.0,
        metavar="S",
        help="how long to teleoperate before printing the limits (default 30; the quit "
        "key or Ctrl-C ends earlier and still prints)",
    )
    parser.add_argument(
        "--margin",
        type=float,
        default=None,
        metavar="M",
        help="widen every bound by M on each side: metres for ee (default 0.01), joint "
        "units for joint (default 0.02; joints stay within the robot's limits)",
    )
    parser.add_argument(
        "--out",
        metavar="FILE",
        default=None,
        help="also write the YAML snippet to FILE",
    )
    add_session_arguments(parser)
    add_config_arguments(
        parser,
        RootConfig,
        example="hilrl find-limits --mode ee --seconds 60 --teleop.device=gamepad "
        "--env.workspace.low=[0.0,-0.3,0.0] --env.workspace.high=[0.4,0.3,0.3]",
    )


def run(args: argparse.Namespace) -> int:
    if args.mode not in MODES:  # argparse checks it too; callers may build args by hand
        raise ConfigError("--mode", args.mode, f"choose one of {MODES}")
    if not args.seconds > 0:
        raise ConfigError("--seconds", args.seconds, "must be positive")
    margin = DEFAULT_MARGIN[args.mode] if args.margin is None else float(args.margin)
    if not np.isfinite(margin) or margin < 0:
        raise ConfigError("--margin", args.margin, "must be a finite number >= 0")
    cfg = config_from_args(RootConfig, args)

    tracker: RangeTracker | None = None
    limits: tuple[np.ndarray, np.ndarray] | None = None

    def on_sample(reading: PoseReading) -> None:
        nonlocal tracker, limits
        if tracker is None:
            if args.mode == "ee":
                tracker = ee_tracker()
            else:
                tracker = RangeTracker(reading.joint_names)
                limits = (reading.joint_lower, reading.joint_upper)
        if args.mode == "ee":
            tracker.update(np.concatenate([reading.position, reading.rpy]))
        else:
            tracker.update(reading.joints)

    result = run_session(
        cfg,
        args,
        verb="find-limits",
        duration_s=args.seconds,
        on_sample=on_sample,
        continuous=True,
        status_out=sys.stderr,  # stdout carries only the YAML snippet
    )
    if isinstance(result, int):
        return result
    if tracker is None or tracker.count == 0:
        print("hilrl find-limits: no poses were read; nothing to report", file=sys.stderr)
        return 1
    header = [
        f"hilrl find-limits --mode {args.mode}: {tracker.count} poses over "
        f"{result.elapsed_s:.1f} s (stopped: {result.reason})"
    ]
    if args.mode == "ee":
        text = workspace_yaml(tracker, margin, header)
        _warn_if_boxed(tracker, margin, cfg)
    else:
        lower, upper = limits if limits is not None else (None, None)
        text = joint_limits_yaml(tracker, margin, lower, upper, header)
    print(text, end="")
    if args.out:
        try:
            Path(args.out).write_text(text)
        except OSError as exc:
            raise ConfigError("--out", args.out, f"cannot write: {exc.strerror}") from exc
        print(f"find-limits: wrote {args.out}", file=sys.stderr)
    return 0


def _warn_if_boxed(tracker: RangeTracker, margin: float, cfg: RootConfig) -> None:
    """Tell the operator when a bound sits on the configured box (the box stopped them)."""
    low, high = workspace_box(tracker, 0.0)
    box_low, box_high = cfg.env.workspace.low, cfg.env.workspace.high
    touched = [
        f"{axis} {side}"
        for i, axis in enumerate("xyz")
        for side, seen, limit in (("low", low[i], box_low[i]), ("high", high[i], box_high[i]))
        if abs(seen - limit) <= BOX_TOUCH_M
    ]
    if touched:
        print(
            f"find-limits: the current env.workspace stopped the arm at: {', '.join(touched)}; "
            "widen env.workspace.low / high and run again to explore further",
            file=sys.stderr,
        )
