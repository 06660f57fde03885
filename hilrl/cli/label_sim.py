"""``hilrl label-sim``: record sim frames labelled with ground-truth success.

The simulated operator's expert solves the task, keeps going for a while after success,
then random actions follow; some episodes give up early or are random throughout (see
``reward.label``). Every frame's ``next.reward`` is the ground truth of its own state,
the input ``hilrl train-reward`` expects (label offset 0).
"""

from __future__ import annotations

import argparse
import sys

from hilrl.cli.common import add_config_arguments, config_from_args
from hilrl.config.root import RootConfig


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--no-progress", dest="progress", action="store_false", help="no progress bar"
    )
    add_config_arguments(
        parser,
        RootConfig,
        example="hilrl label-sim --dataset.repo_id=local/pick_cube_labels "
        "--reward.label.num_episodes=60 --dataset.image_storage=image",
    )


def run(args: argparse.Namespace) -> int:
    # start-up: MuJoCo and pyarrow load when the verb runs, not for its --help
    from hilrl.data.lerobot import DatasetError
    from hilrl.rewards.label import label_sim_dataset

    cfg = config_from_args(RootConfig, args)
    try:
        root, stats = label_sim_dataset(cfg, progress=args.progress)
    except DatasetError as exc:
        print(f"hilrl label-sim: {exc}", file=sys.stderr)
        return 2
    kinds = ", ".join(f"{n} {k}" for k, n in sorted(stats.kinds.items()))
    print(
        f"label-sim: {stats.episodes} episodes ({kinds}), {stats.frames} frames: "
        f"{stats.successes} success, {stats.failures} failure -> {root}"
    )
    print(f"  train a classifier with: hilrl train-reward --dataset {root}")
    return 0
