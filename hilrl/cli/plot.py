"""``hilrl plot``: PNG plots of a run's metrics (see :mod:`hilrl.runtime.plots`)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("run_dir", metavar="RUN_DIR", help="the run folder (run.output_dir)")
    parser.add_argument(
        "--window",
        type=int,
        default=None,
        metavar="N",
        help="rolling-mean window in episodes (default: about a tenth of them, 1..100)",
    )


def run(args: argparse.Namespace) -> int:
    # start-up: matplotlib load when the verb runs, not for its --help
    from hilrl.runtime.plots import METRICS_DIR, plot_run

    run_dir = Path(args.run_dir)
    if not run_dir.is_dir():
        print(f"hilrl plot: run folder not found: {run_dir}", file=sys.stderr)
        return 1
    if args.window is not None and args.window < 1:
        print(f"hilrl plot: --window must be >= 1, got {args.window}", file=sys.stderr)
        return 2
    written = plot_run(run_dir, window=args.window)
    if not written:
        print(f"hilrl plot: nothing to plot: no readable metrics in {run_dir / METRICS_DIR}")
        return 0
    for path in written:
        print(f"wrote {path}")
    return 0
