"""``hilrl train``: the main job: learner + actors on this machine, demos first if missing.

The launcher lives in :mod:`hilrl.runtime.launcher`; the run folder layout in
:mod:`hilrl.runtime.run_dir`.
"""

from __future__ import annotations

import argparse

from hilrl.cli.common import add_config_arguments, config_from_args
from hilrl.config.root import RootConfig


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--resume",
        action="store_true",
        help="continue the run in run.output_dir from its newest complete checkpoint "
        "(env steps, updates, weight versions and replay carry on)",
    )
    parser.add_argument(
        "--no-status",
        dest="status",
        action="store_false",
        help="no live status line (and no demo-recording progress bar)",
    )
    add_config_arguments(
        parser,
        RootConfig,
        example="hilrl train --config configs/sim_pick_cube.yaml --train.num_actors=2",
    )


def run(args: argparse.Namespace) -> int:
    # start-up: torch and gRPC load when the verb runs, not for its --help
    from hilrl.runtime.launcher import train

    cfg = config_from_args(RootConfig, args)
    return train(cfg, resume=args.resume, status=args.status).exit_code
