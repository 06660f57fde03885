"""``hilrl train-reward``: train a reward classifier on a labelled LeRobot dataset.

The job lives in :func:`hilrl.rewards.train.train_reward_classifier`; this module picks
the dataset and output folders and prints the result.
"""

from __future__ import annotations

import argparse
import math
import sys

from hilrl.cli.common import add_config_arguments, config_from_args
from hilrl.config.root import RootConfig


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--dataset",
        metavar="DIR",
        default=None,
        help="labelled dataset folder (default: reward.train.dataset, else the dataset "
        "section's folder)",
    )
    parser.add_argument(
        "--output-dir",
        metavar="DIR",
        default=None,
        help="where the classifier, plots and logs go (default: reward.train.output_dir)",
    )
    parser.add_argument(
        "--no-progress", dest="progress", action="store_false", help="no progress bar"
    )
    add_config_arguments(
        parser,
        RootConfig,
        example="hilrl train-reward --dataset datasets/local/pick_cube_labels "
        "--reward.model.cameras=[front,wrist] --reward.train.epochs=20",
    )


def _fmt(value: float) -> str:
    return "n/a" if math.isnan(value) else f"{value:.4f}"


def run(args: argparse.Namespace) -> int:
    # start-up: torch and pyarrow load when the verb runs, not for its --help
    from hilrl.data.lerobot import DatasetError
    from hilrl.rewards.data import RewardDataError
    from hilrl.rewards.train import train_reward_classifier

    cfg = config_from_args(RootConfig, args)
    train_cfg = cfg.reward.train
    dataset = args.dataset or train_cfg.dataset or str(cfg.dataset.path)
    try:
        outcome = train_reward_classifier(
            dataset,
            cfg.reward.model,
            train_cfg,
            output_dir=args.output_dir or train_cfg.output_dir,
            progress=args.progress,
        )
    except (DatasetError, RewardDataError, RuntimeError) as exc:
        print(f"hilrl train-reward: {exc}", file=sys.stderr)
        return 2
    m = outcome.val_metrics
    fit = outcome.fit
    print(f"train-reward: dataset {dataset}")
    print(f"  train frames per class: {outcome.train_counts}")
    print(f"  validation frames per class: {outcome.val_counts}")
    stop = "early stop" if fit.stopped_early else "all epochs"
    print(f"  best epoch {fit.best_epoch} of {len(fit.history)} ({stop})")
    print(
        f"  threshold {outcome.meta.threshold:.4f} (max {outcome.meta.threshold_metric} on "
        "validation)"
    )
    print(
        "  validation: "
        + ", ".join(
            f"{k} {_fmt(m[k])}"
            for k in ("accuracy", "precision", "recall", "f1", "roc_auc", "balanced_accuracy")
        )
    )
    print(f"  saved to {outcome.output_dir} ({', '.join(p.name for p in outcome.files.values())})")
    print(f"  use it as the env reward with --reward.path={outcome.output_dir}")
    return 0
