"""``hilrl config``: show the resolved config, validated, as YAML (or every field's docs)."""

from __future__ import annotations

import argparse

from hilrl.cli.common import add_config_arguments, config_from_args
from hilrl.config.loader import dump_yaml, format_config_help
from hilrl.config.root import RootConfig


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--fields",
        action="store_true",
        help="list every config field with its type, default and documentation",
    )
    add_config_arguments(
        parser, RootConfig, example="hilrl config --config configs/sim_pick_cube.yaml --env.fps=5"
    )


def run(args: argparse.Namespace) -> int:
    if args.fields:
        print(format_config_help(RootConfig))
        return 0
    cfg = config_from_args(RootConfig, args)
    print(dump_yaml(cfg), end="")
    return 0
