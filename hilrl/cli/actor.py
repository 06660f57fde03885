"""``hilrl actor``: one actor process (env, operator, policy inference, data to the learner).

The loop lives in :mod:`hilrl.runtime.actor`. It connects to the learner at
``transport.host:port``, waits for its first weights, and runs episodes until its step
budget is used (``--max-steps``; default ``run.total_env_steps / train.num_actors``) or
SIGINT / SIGTERM, then flushes what is still queued. With ``--state-file`` it reserves
each episode index there before the episode starts, so a restarted actor never repeats
an episode index or seed (``hilrl train`` restarts an actor that died this way).
"""

from __future__ import annotations

import argparse
import logging
import math
import re
import sys
from pathlib import Path

from hilrl.cli.common import add_config_arguments, config_from_args
from hilrl.config.loader import ConfigError
from hilrl.config.root import RootConfig
from hilrl.runtime.stopping import StopFlag, handle_signals


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--actor-id",
        required=True,
        metavar="ID",
        help="this actor's name (1-128 of A-Z a-z 0-9 _ . -), unique among the learner's actors",
    )
    parser.add_argument(
        "--actor-index",
        type=int,
        default=None,
        metavar="I",
        help="index for the episode seeds (the seed stream train/actor<I>, see hilrl.seeds); "
        "default: the number at the end of --actor-id, else 0",
    )
    parser.add_argument(
        "--max-steps",
        type=int,
        default=None,
        metavar="N",
        help="training env steps to take; default: run.total_env_steps / train.num_actors",
    )
    parser.add_argument(
        "--first-episode",
        type=int,
        default=0,
        metavar="K",
        help="index of the first episode (a resumed actor continues its seeds); with "
        "--state-file the larger of this and the file's next index",
    )
    parser.add_argument(
        "--state-file",
        type=Path,
        default=None,
        metavar="PATH",
        help="JSON file where the actor reserves each episode index before the episode starts "
        "(atomic writes); a restarted actor continues after the indices it finds there, so no "
        "episode index or seed is used twice (hilrl train passes <run>/actors/<id>.json)",
    )
    parser.add_argument(
        "--num-actors",
        type=int,
        default=None,
        metavar="N",
        help="actors sharing the learner's step allowance; default: train.num_actors",
    )
    parser.add_argument(
        "--run-id",
        default="",
        metavar="ID",
        help="the learner's run id (printed by the learner, in <run>/learner.json); empty: "
        "accept any learner",
    )
    add_config_arguments(
        parser,
        RootConfig,
        example="hilrl actor --config configs/sim_pick_cube.yaml --actor-id robot-1 "
        "--transport.host=gpu-box --transport.tls=true --transport.tls_ca=ca.pem",
    )


def actor_index(actor_id: str, given: int | None) -> int:
    if given is not None:
        if given < 0:
            raise ConfigError("--actor-index", given, "must be >= 0")
        return given
    m = re.search(r"(\d+)$", actor_id)
    return int(m.group(1)) if m else 0


def run(args: argparse.Namespace) -> int:
    # start-up: torch and gRPC load when the verb runs, not for its --help
    from hilrl.runtime.actor import ActorOptions, run_actor_process
    from hilrl.transport.errors import TransportError

    cfg = config_from_args(RootConfig, args)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    num = args.num_actors if args.num_actors is not None else cfg.train.num_actors
    if args.max_steps is not None and args.max_steps < 0:
        raise ConfigError("--max-steps", args.max_steps, "must be >= 0")
    max_steps = args.max_steps
    if max_steps is None:
        max_steps = math.ceil(cfg.run.total_env_steps / max(num, 1))
    options = ActorOptions.from_config(
        cfg,
        args.actor_id,
        actor_index(args.actor_id, args.actor_index),
        max_steps=max_steps,
        first_episode=max(args.first_episode, 0),
        num_actors=num,
        state_file=args.state_file,
    )
    stop = StopFlag()
    try:
        with handle_signals(stop):
            summary = run_actor_process(cfg, options, run_id=args.run_id, stop=stop)
    except (TransportError, TimeoutError, ValueError) as exc:
        print(f"hilrl actor: {exc}", file=sys.stderr)
        return 1
    print(
        f"actor {args.actor_id}: stopped ({summary.reason}) after {summary.steps} steps, "
        f"{summary.episodes} episodes ({summary.successes} successful), policy version "
        f"{summary.policy_version}",
        file=sys.stderr,
    )
    return 0
