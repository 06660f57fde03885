"""``hilrl eval-reward``: score a trained reward classifier on a labelled dataset.

Frames go through the same reward hook the env uses (same preprocessing, the saved
threshold unless --threshold is given); prints accuracy, precision, recall, F1 and
ROC-AUC and writes ROC / confusion PNGs.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path

from hilrl.cli.common import add_config_arguments, config_from_args
from hilrl.config.loader import ConfigError
from hilrl.config.root import RootConfig


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--model",
        metavar="DIR",
        default=None,
        help="trained classifier folder (default: reward.path, else reward.train.output_dir)",
    )
    parser.add_argument(
        "--dataset",
        metavar="DIR",
        default=None,
        help="labelled dataset folder (default: reward.train.dataset, else the dataset "
        "section's folder)",
    )
    parser.add_argument(
        "--threshold",
        type=float,
        default=None,
        help="success threshold to use instead of the calibrated one (default: reward.threshold)",
    )
    parser.add_argument(
        "--output-dir",
        metavar="DIR",
        default=None,
        help="where the ROC / confusion PNGs go (default: <model>/eval)",
    )
    parser.add_argument(
        "--json", action="store_true", help="also print the metrics as one JSON line"
    )
    add_config_arguments(
        parser,
        RootConfig,
        example="hilrl eval-reward --model outputs/reward_classifier "
        "--dataset datasets/local/pick_cube_heldout",
    )


def run(args: argparse.Namespace) -> int:
    # start-up: torch and pyarrow load when the verb runs, not for its --help
    from hilrl.data.lerobot import DatasetError
    from hilrl.rewards.data import RewardDataError
    from hilrl.rewards.evaluate import evaluate_classifier
    from hilrl.rewards.preprocess import RewardInputError

    cfg = config_from_args(RootConfig, args)
    model = args.model or cfg.reward.path or cfg.reward.train.output_dir
    dataset = args.dataset or cfg.reward.train.dataset or str(cfg.dataset.path)
    threshold = args.threshold if args.threshold is not None else cfg.reward.threshold
    if threshold is not None and not 0.0 <= threshold <= 1.0:
        raise ConfigError("--threshold", threshold, "must be in [0, 1]")
    out_dir = Path(args.output_dir) if args.output_dir else Path(model) / "eval"
    try:
        report = evaluate_classifier(
            model, dataset, device=cfg.reward.device, threshold=threshold, output_dir=out_dir
        )
    except (FileNotFoundError, DatasetError, RewardDataError, RewardInputError, ValueError) as exc:
        print(f"hilrl eval-reward: {exc}", file=sys.stderr)
        return 2
    m = report.metrics
    print(f"eval-reward: {model} on {dataset}")
    print(f"  frames {report.frames}, per class {report.class_counts}")
    print(f"  threshold {report.threshold:.4f}")
    for key in ("accuracy", "precision", "recall", "f1", "roc_auc", "balanced_accuracy"):
        value = m[key]
        print(f"  {key:<18} {'n/a' if math.isnan(value) else f'{value:.4f}'}")
    print(
        f"  confusion: tp {int(m['tp'])}, fp {int(m['fp'])}, tn {int(m['tn'])}, fn {int(m['fn'])}"
    )
    print(f"  batched inference {report.ms_per_frame:.3f} ms/frame")
    print(f"  plots: {', '.join(str(p) for p in report.files.values())}")
    if args.json:
        clean = {k: (None if isinstance(v, float) and math.isnan(v) else v) for k, v in m.items()}
        print(json.dumps({"frames": report.frames, **clean}))
    return 0
