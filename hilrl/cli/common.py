"""Argument helpers shared by the verbs: a config file plus dotted overrides."""

from __future__ import annotations

import argparse
from typing import TypeVar

from hilrl.config.loader import format_config_help, load_config

T = TypeVar("T")


def add_config_arguments(parser: argparse.ArgumentParser, cls: type, example: str = "") -> None:
    """``--config FILE`` plus ``--section.field=value`` overrides, listed in the epilog."""
    parser.add_argument(
        "--config",
        metavar="FILE",
        default=None,
        help="YAML or JSON config file (see configs/); any field can then be "
        "overridden on the command line as --section.field=value",
    )
    parser.set_defaults(overrides=[])
    lines = ["config fields (override any with --<field>=<value>):", format_config_help(cls)]
    if example:
        lines = [f"example:\n  {example}", "", *lines]
    parser.epilog = "\n".join(lines)


def config_from_args(cls: type[T], args: argparse.Namespace) -> T:
    return load_config(cls, args.config, list(getattr(args, "overrides", []) or []))
