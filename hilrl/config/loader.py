"""Load typed dataclass configs from YAML / JSON files and dotted command-line overrides.

Every config is a dataclass whose fields carry a docstring (the string literal written on
the line after the field). Loading goes file -> overrides -> typed build -> validation::

    cfg = load_config(TrainConfig, "configs/sim_pick_cube.yaml", ["--env.fps=10"])

Errors name the field by its dotted path and show the bad value, before anything runs.
A dataclass may define ``validate(self) -> None`` and raise :class:`ConfigError` with
the name of one of its own fields; the loader prefixes the dotted path.

Secrets never reach a written file: :func:`save_config` and :func:`dump_yaml` replace
every secret field (``token``, ``*_token``, ``*password``, ``*secret``; paths such as
``token_file`` are kept) by ``"<redacted>"`` (:func:`redact_secrets`). Loading a file
that holds ``"<redacted>"`` takes the value from the environment variable named after
the field (``transport.token`` -> ``HILRL_TRANSPORT_TOKEN``, see :func:`secret_env`), or
from the sibling ``*_file`` field when it is set, and otherwise fails with a
:class:`ConfigError` naming the field: a redacted placeholder is never used as a secret.
"""

from __future__ import annotations

import ast
import dataclasses
import difflib
import functools
import inspect
import itertools
import json
import os
import textwrap
import types
import typing
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any, TypeVar

import dacite
import yaml

from hilrl.fsutil import atomic_write_text

T = TypeVar("T")


class ConfigError(ValueError):
    """A config value is missing, unknown, of the wrong type or out of range."""

    def __init__(self, field: str, value: object, reason: str) -> None:
        self.field = field
        self.value = value
        self.reason = reason
        super().__init__(f"config field '{field}' = {value!r}: {reason}")

    def with_prefix(self, prefix: str) -> ConfigError:
        name = f"{prefix}.{self.field}" if prefix and self.field else (prefix or self.field)
        return ConfigError(name, self.value, self.reason)


def read_config_file(path: str | Path) -> dict[str, Any]:
    """Read a YAML (``.yaml``/``.yml``) or JSON (``.json``) file into a dict."""
    p = Path(path)
    if not p.is_file():
        raise ConfigError("--config", str(p), "file not found")
    text = p.read_text()
    try:
        data = json.loads(text) if p.suffix == ".json" else yaml.safe_load(text)
    except (json.JSONDecodeError, yaml.YAMLError) as exc:
        raise ConfigError("--config", str(p), f"cannot parse: {exc}") from exc
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError("--config", str(p), "top level must be a mapping of fields")
    return data


def _take_override(args: Sequence[str], i: int) -> tuple[str, str | None, int]:
    """The override at ``args[i]``, written ``--key=value`` or ``--key value``.

    Returns the key, the raw value (None: the arguments end before one) and the index of
    the argument after it.
    """
    key = args[i][2:]
    if "=" in key:
        key, raw = key.split("=", 1)
        return key, raw, i + 1
    if i + 1 < len(args):
        return key, args[i + 1], i + 2
    return key, None, i + 1


def split_overrides(args: Sequence[str]) -> tuple[list[str], list[str]]:
    """Separate dotted config overrides (``--env.fps=10`` or ``--env.fps 10``) from flags.

    Returns the other arguments and the overrides, each as one ``--key=value`` argument
    (a trailing ``--key`` without a value is kept as it is, for :func:`parse_overrides` to
    refuse).
    """
    plain: list[str] = []
    overrides: list[str] = []
    i = 0
    while i < len(args):
        arg = args[i]
        if not (arg.startswith("--") and "." in arg[2:].split("=", 1)[0]):
            plain.append(arg)
            i += 1
            continue
        key, raw, i = _take_override(args, i)
        overrides.append(arg if raw is None else f"--{key}={raw}")
    return plain, overrides


def parse_overrides(argv: Iterable[str]) -> dict[str, Any]:
    """Turn ``["--env.fps=10", "--robot.type", "sim"]`` into a nested dict.

    Values are parsed as YAML scalars / flow collections, so ``10`` is an int,
    ``[1, 2]`` a list, ``null`` None and ``true`` a bool.
    """
    args = list(argv)
    out: dict[str, Any] = {}
    i = 0
    while i < len(args):
        arg = args[i]
        if not arg.startswith("--"):
            raise ConfigError(arg, arg, "expected an override like --section.field=value")
        key, raw, i = _take_override(args, i)
        if raw is None:
            raise ConfigError(key, None, "override has no value")
        try:
            value = yaml.safe_load(raw) if raw != "" else ""
        except yaml.YAMLError:
            value = raw
        _set_dotted(out, key, value)
    return out


def config_data(path: str | Path | None, overrides: Iterable[str] = ()) -> dict[str, Any]:
    """Plain data of a config file (optional) with dotted overrides merged over it."""
    data: dict[str, Any] = read_config_file(path) if path else {}
    return deep_merge(data, parse_overrides(overrides))


def _set_dotted(target: dict[str, Any], key: str, value: Any) -> None:
    parts = key.split(".")
    node = target
    for part in parts[:-1]:
        child = node.setdefault(part, {})
        if not isinstance(child, dict):
            raise ConfigError(key, value, f"'{part}' is not a section")
        node = child
    node[parts[-1]] = value


def deep_merge(base: Mapping[str, Any], update: Mapping[str, Any]) -> dict[str, Any]:
    """Recursively merge ``update`` into a copy of ``base``."""
    out = dict(base)
    for key, value in update.items():
        if isinstance(value, Mapping) and isinstance(out.get(key), Mapping):
            out[key] = deep_merge(out[key], value)
        else:
            out[key] = value
    return out


_DACITE = dacite.Config(
    strict=True,
    cast=[tuple],
    type_hooks={float: lambda v: float(v) if isinstance(v, int) and not isinstance(v, bool) else v},
)


def build(cls: type[T], data: Mapping[str, Any], prefix: str = "") -> T:
    """Build and validate a config dataclass from plain data."""
    _check_keys(cls, data, prefix)
    try:
        cfg = dacite.from_dict(cls, dict(data), config=_DACITE)
    except dacite.WrongTypeError as exc:
        path = f"{prefix}.{exc.field_path}" if prefix else str(exc.field_path)
        raise ConfigError(path, exc.value, f"expected {_type_name(exc.field_type)}") from exc
    except dacite.MissingValueError as exc:
        path = f"{prefix}.{exc.field_path}" if prefix else str(exc.field_path)
        raise ConfigError(path, None, "missing value") from exc
    except dacite.DaciteError as exc:
        raise ConfigError(prefix or "<root>", None, str(exc)) from exc
    validate(cfg, prefix)
    return cfg


def _check_keys(cls: type, data: Mapping[str, Any], prefix: str) -> None:
    """Reject unknown keys with the closest known names, recursing into sections."""
    if not isinstance(data, Mapping):
        raise ConfigError(prefix or "<root>", data, "expected a mapping of fields")
    hints = _hints(cls)
    names = {f.name for f in dataclasses.fields(cls)}
    for key, value in data.items():
        path = f"{prefix}.{key}" if prefix else str(key)
        if key not in names:
            close = difflib.get_close_matches(str(key), sorted(names), n=3)
            hint = f"; did you mean {', '.join(close)}?" if close else ""
            raise ConfigError(path, value, f"unknown field{hint}")
        sub = _dataclass_of(hints[key])
        if sub is not None and isinstance(value, Mapping):
            _check_keys(sub, value, path)


def validate(cfg: object, prefix: str = "") -> None:
    """Run ``validate()`` on ``cfg`` and every nested config, naming the failing field."""
    for f in dataclasses.fields(cfg):  # type: ignore[arg-type]
        value = getattr(cfg, f.name)
        if dataclasses.is_dataclass(value) and not isinstance(value, type):
            validate(value, f"{prefix}.{f.name}" if prefix else f.name)
    check = getattr(cfg, "validate", None)
    if callable(check):
        try:
            check()
        except ConfigError as exc:
            raise exc.with_prefix(prefix) from None


def load_config(cls: type[T], path: str | Path | None = None, overrides: Iterable[str] = ()) -> T:
    """File (optional) + dotted overrides -> validated ``cls`` instance.

    A secret that a saved file holds as ``"<redacted>"`` is resolved by
    :func:`resolve_redacted` (environment variable or ``*_file`` sibling) or refused.
    """
    return build(cls, resolve_redacted(config_data(path, overrides)))


def to_dict(cfg: object) -> dict[str, Any]:
    """Plain-data form of a config (tuples become lists), for YAML / JSON."""

    def plain(v: Any) -> Any:
        if isinstance(v, tuple | list):
            return [plain(x) for x in v]
        if isinstance(v, dict):
            return {k: plain(x) for k, x in v.items()}
        return v

    return plain(dataclasses.asdict(cfg))  # type: ignore[call-overload, no-any-return]


def dump_yaml(cfg: object) -> str:
    """YAML text of a config (a dataclass or plain data) with its secrets redacted."""
    return yaml.safe_dump(redact_secrets(cfg), sort_keys=False)


def save_config(cfg: object, path: str | Path) -> None:
    """Write ``cfg`` as YAML, atomically; secret fields are written as ``"<redacted>"``."""
    atomic_write_text(path, dump_yaml(cfg))


# ------------------------------------------------------------------------------- secrets

REDACTED = "<redacted>"
"""What a written file holds in place of a secret value."""
SECRET_ENV_PREFIX = "HILRL_"
"""``transport.token`` is read from ``HILRL_TRANSPORT_TOKEN`` when a file holds it redacted."""


def is_secret_field(name: str) -> bool:
    """True for a field holding a secret: ``token``, ``*_token``, ``*password``, ``*secret``."""
    n = str(name).lower()
    return n == "token" or n.endswith(("_token", "password", "secret"))


def secret_env_name(dotted: str) -> str:
    """The environment variable that supplies a redacted secret (``HILRL_TRANSPORT_TOKEN``)."""
    return SECRET_ENV_PREFIX + "".join(c if c.isalnum() else "_" for c in dotted).upper()


def redact_secrets(cfg_or_plain: object) -> Any:
    """Plain-data copy of a config (dataclass or mapping) with every set secret redacted.

    Empty secrets (``""``, ``None``) stay as they are: they hold nothing, and writing a
    placeholder for them would make the file unloadable.
    """
    plain: Any = cfg_or_plain
    if dataclasses.is_dataclass(cfg_or_plain) and not isinstance(cfg_or_plain, type):
        plain = to_dict(cfg_or_plain)

    def walk(v: Any) -> Any:
        if isinstance(v, Mapping):
            return {
                k: REDACTED if is_secret_field(k) and _is_set(x) else walk(x) for k, x in v.items()
            }
        if isinstance(v, tuple | list):
            return [walk(x) for x in v]
        return v

    return walk(plain)


def secret_env(cfg_or_plain: object) -> dict[str, str]:
    """``{environment variable: value}`` for every set secret of a config.

    A launcher that starts children with ``--config <saved file>`` (where the secrets are
    redacted) adds this to their environment so that they get the real values.
    """
    plain: Any = cfg_or_plain
    if dataclasses.is_dataclass(cfg_or_plain) and not isinstance(cfg_or_plain, type):
        plain = to_dict(cfg_or_plain)
    out: dict[str, str] = {}

    def walk(v: Any, prefix: str) -> None:
        if not isinstance(v, Mapping):
            return
        for k, x in v.items():
            path = f"{prefix}.{k}" if prefix else str(k)
            if is_secret_field(k):
                if isinstance(x, str) and x and x != REDACTED:
                    out[secret_env_name(path)] = x
            else:
                walk(x, path)

    walk(plain, "")
    return out


def resolve_redacted(data: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """``data`` with each ``"<redacted>"`` secret replaced by its real source, or refused.

    The source is, in order: a set sibling ``<field>_file`` (the secret becomes empty and
    the file is used), the environment variable :func:`secret_env_name` names. Without
    either, raises :class:`ConfigError` naming the field and saying what to pass.
    """
    out = dict(data)
    for key, value in data.items():
        path = f"{prefix}.{key}" if prefix else str(key)
        if isinstance(value, Mapping):
            out[key] = resolve_redacted(value, path)
        elif is_secret_field(key) and value == REDACTED:
            sibling = data.get(f"{key}_file")
            env = secret_env_name(path)
            if isinstance(sibling, str) and sibling:
                out[key] = ""
            elif os.environ.get(env):
                out[key] = os.environ[env]
            else:
                file_hint = f", set {path}_file" if key.endswith("token") else ""
                raise ConfigError(
                    path,
                    REDACTED,
                    "this config file was saved with the secret removed; pass "
                    f"--{path}=<value>{file_hint} or set the environment variable {env}",
                )
    return out


def _is_set(value: object) -> bool:
    return value is not None and value != "" and value != REDACTED


# ----------------------------------------------------------------------------- help text


@functools.cache
def field_docs(cls: type) -> dict[str, str]:
    """Attribute docstrings of a dataclass (the string literal after each field)."""
    docs: dict[str, str] = {}
    for klass in reversed(cls.__mro__):
        if not dataclasses.is_dataclass(klass):
            continue
        try:
            tree = ast.parse(textwrap.dedent(inspect.getsource(klass)))
        except (OSError, TypeError, SyntaxError):
            continue
        body = tree.body[0].body if tree.body and isinstance(tree.body[0], ast.ClassDef) else []
        for node, nxt in itertools.pairwise(body):
            if (
                isinstance(node, ast.AnnAssign)
                and isinstance(node.target, ast.Name)
                and isinstance(nxt, ast.Expr)
                and isinstance(nxt.value, ast.Constant)
                and isinstance(nxt.value.value, str)
            ):
                docs[node.target.id] = inspect.cleandoc(nxt.value.value)
    return docs


def config_help(cls: type, prefix: str = "") -> list[tuple[str, str, str, str]]:
    """(dotted key, type, default, doc) for every leaf field of a config class."""
    rows: list[tuple[str, str, str, str]] = []
    hints = _hints(cls)
    docs = field_docs(cls)
    for f in dataclasses.fields(cls):
        key = f"{prefix}.{f.name}" if prefix else f.name
        sub = _dataclass_of(hints[f.name])
        if sub is not None:
            rows.extend(config_help(sub, key))
            continue
        if f.default is not dataclasses.MISSING:
            default = repr(f.default)
        elif f.default_factory is not dataclasses.MISSING:
            default = repr(f.default_factory())
        else:
            default = "(required)"
        rows.append((key, _type_name(hints[f.name]), default, docs.get(f.name, "")))
    return rows


def format_config_help(cls: type) -> str:
    lines = []
    for key, typ, default, doc in config_help(cls):
        lines.append(f"  --{key}  ({typ}, default {default})")
        if doc:
            lines.extend("      " + line for line in textwrap.wrap(doc.replace("\n", " "), 76))
    return "\n".join(lines)


@functools.cache
def _hints(cls: type) -> dict[str, Any]:
    return typing.get_type_hints(cls)


def _dataclass_of(tp: Any) -> type | None:
    """The dataclass type in ``tp`` (also through ``X | None``), or None."""
    if dataclasses.is_dataclass(tp) and isinstance(tp, type):
        return tp
    if typing.get_origin(tp) in (typing.Union, types.UnionType):
        for arg in typing.get_args(tp):
            if dataclasses.is_dataclass(arg) and isinstance(arg, type):
                return arg
    return None


def _type_name(tp: Any) -> str:
    if isinstance(tp, type):
        return tp.__name__
    return str(tp).replace("typing.", "")
