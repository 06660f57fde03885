"""Config loading: files, dotted overrides, typed build, and errors that name the field."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from hilrl.config.loader import (
    ConfigError,
    build,
    config_data,
    config_help,
    dump_yaml,
    load_config,
    parse_overrides,
    split_overrides,
    to_dict,
)


@dataclass
class Inner:
    fps: int = 10
    """Control rate in Hz."""
    low: tuple[float, float] = (0.0, 0.0)
    """Lower corner."""
    high: tuple[float, float] = (1.0, 1.0)
    """Upper corner."""

    def validate(self) -> None:
        if self.fps <= 0:
            raise ConfigError("fps", self.fps, "must be positive")
        if any(lo >= hi for lo, hi in zip(self.low, self.high)):
            raise ConfigError("low", self.low, f"must be below high {self.high}")


@dataclass
class Outer:
    name: str = "run"
    """Run name."""
    scale: float = 1.0
    """A float field."""
    inner: Inner = field(default_factory=Inner)
    """Nested section."""
    maybe: Inner | None = None
    """Optional section."""


def test_overrides_parse_yaml_scalars_into_nested_dict() -> None:
    out = parse_overrides(
        ["--inner.fps=20", "--name", "abc", "--inner.low=[0.1, 0.2]", "--maybe=null"]
    )
    assert out == {"inner": {"fps": 20, "low": [0.1, 0.2]}, "name": "abc", "maybe": None}


def test_split_and_parse_read_both_spellings_the_same_way() -> None:
    argv = ["--inner.fps", "20", "-v", "--name=x", "--inner.low=[0, 1]", "--inner.high"]
    plain, overrides = split_overrides(argv)
    assert plain == ["-v", "--name=x"]  # not dotted: an ordinary flag
    assert overrides == ["--inner.fps=20", "--inner.low=[0, 1]", "--inner.high"]
    with pytest.raises(ConfigError, match="no value"):
        parse_overrides(overrides)
    assert parse_overrides(overrides[:2]) == parse_overrides(argv[:2] + argv[4:5])


def test_config_data_merges_overrides_over_the_file(tmp_path: Path) -> None:
    p = tmp_path / "c.yaml"
    p.write_text("name: fromfile\ninner:\n  fps: 5\n  high: [2, 3]\n")
    data = config_data(p, ["--inner.fps=7"])
    assert data == {"name": "fromfile", "inner": {"fps": 7, "high": [2, 3]}}
    assert config_data(None, ["--name=y"]) == {"name": "y"}


def test_file_then_overrides_with_override_winning(tmp_path: Path) -> None:
    p = tmp_path / "c.yaml"
    p.write_text("name: fromfile\ninner:\n  fps: 5\n  high: [2, 3]\n")
    cfg = load_config(Outer, p, ["--inner.fps=7"])
    assert cfg.name == "fromfile"
    assert cfg.inner.fps == 7
    assert cfg.inner.high == (2.0, 3.0)
    assert isinstance(cfg.inner.high, tuple)


def test_json_file_and_round_trip_through_yaml(tmp_path: Path) -> None:
    p = tmp_path / "c.json"
    p.write_text(json.dumps({"scale": 2, "maybe": {"fps": 3}}))
    cfg = load_config(Outer, p)
    assert cfg.scale == 2.0 and isinstance(cfg.scale, float)
    assert cfg.maybe is not None and cfg.maybe.fps == 3
    again = tmp_path / "again.yaml"
    again.write_text(dump_yaml(cfg))
    assert to_dict(load_config(Outer, again)) == to_dict(cfg)


def test_unknown_key_names_the_dotted_field_and_suggests() -> None:
    with pytest.raises(ConfigError) as info:
        load_config(Outer, None, ["--inner.fsp=10"])
    assert info.value.field == "inner.fsp"
    assert "fps" in str(info.value)


def test_wrong_type_names_field_and_value() -> None:
    with pytest.raises(ConfigError) as info:
        load_config(Outer, None, ["--inner.fps=fast"])
    assert info.value.field == "inner.fps"
    assert "fast" in str(info.value)


def test_validate_error_gets_dotted_prefix() -> None:
    with pytest.raises(ConfigError) as info:
        load_config(Outer, None, ["--inner.low=[2, 0]", "--inner.high=[1, 1]"])
    assert info.value.field == "inner.low"
    with pytest.raises(ConfigError) as info:
        build(Outer, {"maybe": {"fps": 0}})
    assert info.value.field == "maybe.fps"


def test_missing_or_malformed_file_is_named(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="file not found"):
        load_config(Outer, tmp_path / "nope.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: [unclosed\n")
    with pytest.raises(ConfigError, match=r"bad\.yaml"):
        load_config(Outer, bad)


def test_help_lists_leaf_fields_with_docstrings() -> None:
    rows = {key: (typ, default, doc) for key, typ, default, doc in config_help(Outer)}
    assert rows["inner.fps"] == ("int", "10", "Control rate in Hz.")
    assert rows["name"][2] == "Run name."
    assert "maybe.fps" in rows
