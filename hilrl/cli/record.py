"""``hilrl record``: record operator episodes into a LeRobotDataset v3.0 folder.

The loop lives in :mod:`hilrl.runtime.record`; this module reads the options, picks the
pacing and the default device, and reports the result. In the sim the simulated
operator (``teleop.device=sim``) is the default device when the config does not name
one; it then drives every tick (``teleop.sim.drive_always`` defaults to true here:
recording means demonstrations) and the loop runs as fast as the sim steps. A human
device is paced in real time.
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import replace
from typing import Any

from hilrl.cli.common import add_config_arguments, config_from_args
from hilrl.config.loader import ConfigError, config_data
from hilrl.config.root import RootConfig
from hilrl.teleop.errors import TeleopError

UNATTENDED_DEVICES = ("sim", "none")
"""Devices with no human at the controls: the sim may run them faster than real time."""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--resume",
        action="store_true",
        help="add dataset.num_episodes episodes to the existing dataset at dataset.root "
        "(its features and fps must match the env)",
    )
    pace = parser.add_mutually_exclusive_group()
    pace.add_argument(
        "--fast",
        action="store_const",
        const="fast",
        dest="pace",
        help="step as fast as the sim can (sim only); the default for teleop.device sim / none",
    )
    pace.add_argument(
        "--realtime",
        action="store_const",
        const="realtime",
        dest="pace",
        help="pace every step at env.fps; the default for human devices and real robots",
    )
    parser.set_defaults(pace="auto")
    parser.add_argument(
        "--no-progress", dest="progress", action="store_false", help="no progress bar"
    )
    add_config_arguments(
        parser,
        RootConfig,
        example="hilrl record --dataset.repo_id=me/pick_cube --dataset.num_episodes=20 "
        "--teleop.device=keyboard",
    )


def field_given(args: argparse.Namespace, dotted: str) -> bool:
    """Whether the config file or an override sets the field ``dotted`` (e.g. teleop.device)."""
    node: Any = config_data(args.config, getattr(args, "overrides", []) or [])
    for part in dotted.split("."):
        if not isinstance(node, dict) or part not in node:
            return False
        node = node[part]
    return True


def run(args: argparse.Namespace) -> int:
    # start-up: MuJoCo and pyarrow load when the verb runs, not for its --help
    from hilrl.data.lerobot import DatasetError
    from hilrl.runtime.record import HubError, push_to_hub, record_dataset

    cfg = config_from_args(RootConfig, args)
    is_sim = cfg.env.gym_id is None and cfg.env.robot.type == "sim"
    if is_sim and not field_given(args, "teleop.device"):
        cfg = replace(cfg, teleop=replace(cfg.teleop, device="sim"))
    if cfg.teleop.device == "sim" and not field_given(args, "teleop.sim.drive_always"):
        # recording demonstrations: the simulated operator drives every tick
        sim = replace(cfg.teleop.sim, drive_always=True)
        cfg = replace(cfg, teleop=replace(cfg.teleop, sim=sim))
    unattended = cfg.teleop.device in UNATTENDED_DEVICES
    simulated = cfg.env.gym_id is not None or cfg.env.robot.type == "sim"
    if args.pace == "fast" and not simulated:
        raise ConfigError("--fast", True, "only a simulation may run faster than real time")
    realtime = args.pace == "realtime" or (args.pace == "auto" and not (simulated and unattended))
    try:
        summary = record_dataset(cfg, resume=args.resume, realtime=realtime, progress=args.progress)
    except (DatasetError, TeleopError, NotImplementedError) as exc:
        print(f"hilrl record: {exc}", file=sys.stderr)
        return 2
    root = cfg.dataset.path
    print(
        f"record: stopped ({summary.reason}); saved {len(summary.saved)} episodes, "
        f"{summary.frames} frames ({summary.successes} success, {summary.failures} failure, "
        f"{summary.rerecorded} re-recorded) to {root}"
    )
    if summary.reason == "interrupted":
        return 130
    if cfg.dataset.push_to_hub and summary.saved:
        try:
            url = push_to_hub(root, cfg.dataset.repo_id, private=cfg.dataset.private)
        except HubError as exc:
            print(f"hilrl record: {exc}", file=sys.stderr)
            return 1
        print(f"record: uploaded to {url}")
    return 0
