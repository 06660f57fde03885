"""``hilrl train-offline``: SAC on a recorded dataset only (no env steps), then a checkpoint.

The loop lives in :mod:`hilrl.runtime.offline`.
"""

from __future__ import annotations

import argparse
import sys

from hilrl.cli.common import add_config_arguments, config_from_args
from hilrl.config.root import RootConfig


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--dataset",
        required=True,
        metavar="PATH",
        help="LeRobot dataset folder (e.g. recorded with hilrl record) to train on",
    )
    parser.add_argument(
        "--updates", type=int, default=5000, metavar="N", help="SAC updates to run (default 5000)"
    )
    parser.add_argument(
        "--no-progress", dest="progress", action="store_false", help="no progress bar"
    )
    add_config_arguments(
        parser,
        RootConfig,
        example="hilrl train-offline --config configs/sim_pick_cube.yaml "
        "--dataset datasets/local/sim_pick_cube_demos --updates 2000",
    )


def run(args: argparse.Namespace) -> int:
    # start-up: torch and pyarrow load when the verb runs, not for its --help
    from hilrl.data.lerobot import DatasetError
    from hilrl.runtime.learner import LearnerFailed
    from hilrl.runtime.offline import train_offline

    cfg = config_from_args(RootConfig, args)
    try:
        result = train_offline(cfg, args.dataset, args.updates, progress=args.progress)
    except DatasetError as exc:
        print(f"hilrl train-offline: {exc}", file=sys.stderr)
        return 2
    except LearnerFailed as exc:
        print(f"hilrl train-offline: {exc}", file=sys.stderr)
        return 1
    return 130 if result.interrupted else 0
