"""Typed configs: dataclasses loaded from YAML/JSON files and dotted CLI overrides."""

from hilrl.config.loader import (
    ConfigError,
    build,
    config_help,
    dump_yaml,
    format_config_help,
    load_config,
    parse_overrides,
    save_config,
    to_dict,
)

__all__ = [
    "ConfigError",
    "build",
    "config_help",
    "dump_yaml",
    "format_config_help",
    "load_config",
    "parse_overrides",
    "save_config",
    "to_dict",
]
