"""``hilrl learner``: the learner process (replay, SAC updates, weights out, checkpoints).

The loop lives in :mod:`hilrl.runtime.learner`. It serves actors on
``transport.host:port`` (``hilrl actor`` on this or other machines) and writes the run
folder ``run.output_dir``. SIGINT / SIGTERM stop it after a final checkpoint. Exit code
1 when training fails (``train.max_consecutive_skips`` update calls in a row skipped or
non-finite), 2 for a config or demo dataset problem.
"""

from __future__ import annotations

import argparse
import logging
import sys

from hilrl.cli.common import add_config_arguments, config_from_args
from hilrl.config.root import RootConfig
from hilrl.runtime.stopping import StopFlag, handle_signals


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--resume",
        action="store_true",
        help="continue the run in run.output_dir from its newest complete checkpoint",
    )
    parser.add_argument(
        "--local-actors",
        type=int,
        default=0,
        metavar="N",
        help="actors sharing this machine (the learner then uses one torch thread unless "
        "train.learner_torch_threads says otherwise)",
    )
    add_config_arguments(
        parser,
        RootConfig,
        example="hilrl learner --config configs/sim_pick_cube.yaml --transport.host=0.0.0.0 "
        "--transport.token_file=token.txt",
    )


def run(args: argparse.Namespace) -> int:
    # start-up: torch and gRPC load when the verb runs, not for its --help
    from hilrl.runtime.learner import LearnerFailed, run_learner_process

    cfg = config_from_args(RootConfig, args)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    stop = StopFlag()
    with handle_signals(stop):  # held to the end: a late SIGTERM must not kill the exit
        try:
            reason = run_learner_process(
                cfg, resume=args.resume, local_actors=max(args.local_actors, 0), stop=stop
            )
        except LearnerFailed as exc:
            print(f"hilrl learner: {exc}", file=sys.stderr)
            return 1
        print(f"learner: stopped ({reason})", file=sys.stderr)
    return 0
