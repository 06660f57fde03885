"""Secrets never reach run files: config.yaml and checkpoint meta.json hold "<redacted>",
and a redacted file is never used as if "<redacted>" were the token."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest
import torch

from hilrl.config.loader import (
    REDACTED,
    ConfigError,
    dump_yaml,
    load_config,
    read_config_file,
    redact_secrets,
    save_config,
    secret_env,
)
from hilrl.config.root import RootConfig
from hilrl.runtime.checkpoint import read_meta, restore_checkpoint, save_checkpoint

SECRET = "s3cr3t-Tok3n-do-not-write"
ENV = "HILRL_TRANSPORT_TOKEN"


@pytest.fixture(autouse=True)
def _no_token_in_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(ENV, raising=False)


def _with_token(token: str = SECRET) -> RootConfig:
    cfg = RootConfig()
    return replace(cfg, transport=replace(cfg.transport, token=token))


class Tiny:
    def state_dict(self) -> dict[str, object]:
        return {"tensors": {"w": torch.ones(2, 2)}, "meta": {}}

    def load_state_dict(self, state: object) -> None:
        pass

    def architecture(self) -> dict[str, list[int]]:
        return {"w": [2, 2]}

    def architecture_config(self) -> dict[str, object]:
        return {}


def test_redact_secrets_replaces_every_secret_field_and_keeps_file_paths() -> None:
    plain = {
        "transport": {"token": "a", "token_file": "/run/secrets/t", "port": 1},
        "wandb": {"api_token": "b", "password": "c", "client_secret": "d", "user": "me"},
        "empty": {"token": "", "db_password": None},
        "items": [{"token": "e"}],
    }
    out = redact_secrets(plain)
    assert out == {
        "transport": {"token": REDACTED, "token_file": "/run/secrets/t", "port": 1},
        "wandb": {
            "api_token": REDACTED,
            "password": REDACTED,
            "client_secret": REDACTED,
            "user": "me",
        },
        "empty": {"token": "", "db_password": None},
        "items": [{"token": REDACTED}],
    }
    assert plain["transport"]["token"] == "a"  # a copy: the input is unchanged
    assert redact_secrets(_with_token())["transport"]["token"] == REDACTED


def test_save_config_and_dump_yaml_never_contain_the_token(tmp_path: Path) -> None:
    path = tmp_path / "config.yaml"
    save_config(_with_token(), path)
    text = path.read_text()
    assert SECRET not in text and REDACTED in text
    assert read_config_file(path)["transport"]["token"] == REDACTED
    assert SECRET not in dump_yaml(_with_token())
    save_config(RootConfig(), path)  # no token: nothing to redact, the file loads as it is
    assert REDACTED not in path.read_text()
    assert load_config(RootConfig, path).transport.token == ""
    # token_file is a path, not a secret: kept, and the file loads back as it was.
    token_file = tmp_path / "token.txt"
    token_file.write_text(SECRET + "\n")
    save_config(load_config(RootConfig, None, [f"--transport.token_file={token_file}"]), path)
    assert SECRET not in path.read_text()
    again = load_config(RootConfig, path)
    assert again.transport.token_file == str(token_file) and again.transport.token == ""
    assert again.transport.read_token() == SECRET


def test_checkpoint_files_never_contain_the_token(tmp_path: Path) -> None:
    folder = save_checkpoint(tmp_path, 1, Tiny(), config=_with_token())
    for path in folder.iterdir():
        assert SECRET.encode() not in path.read_bytes(), path.name
    assert read_meta(folder)["config"]["transport"]["token"] == REDACTED
    info = restore_checkpoint(folder, Tiny())
    assert info.config is not None and info.config["transport"]["token"] == REDACTED
    plain = save_checkpoint(tmp_path, 2, Tiny(), config={"transport": {"token": SECRET}})
    assert SECRET.encode() not in (plain / "meta.json").read_bytes()


def test_loading_a_redacted_config_fails_naming_the_field(tmp_path: Path) -> None:
    path = tmp_path / "config.yaml"
    save_config(_with_token(), path)
    with pytest.raises(ConfigError) as err:
        load_config(RootConfig, path)
    assert err.value.field == "transport.token"
    message = str(err.value)
    assert "--transport.token" in message and "transport.token_file" in message
    assert ENV in message and SECRET not in message


def test_a_redacted_config_takes_the_token_from_the_command_line_file_or_env(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "config.yaml"
    save_config(_with_token(), path)
    cfg = load_config(RootConfig, path, [f"--transport.token={SECRET}"])
    assert cfg.transport.token == SECRET
    token_file = tmp_path / "token.txt"
    token_file.write_text("from-file\n")
    cfg = load_config(RootConfig, path, [f"--transport.token_file={token_file}"])
    assert cfg.transport.token == "" and cfg.transport.read_token() == "from-file"
    monkeypatch.setenv(ENV, SECRET)
    cfg = load_config(RootConfig, path)
    assert cfg.transport.token == SECRET


def test_secret_env_gives_what_a_child_process_needs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A launcher passing --config <run>/config.yaml adds secret_env(cfg) to the children."""
    cfg = _with_token()
    assert secret_env(cfg) == {ENV: SECRET}
    assert secret_env(RootConfig()) == {}
    path = tmp_path / "config.yaml"
    save_config(cfg, path)
    for name, value in secret_env(cfg).items():
        monkeypatch.setenv(name, value)
    assert load_config(RootConfig, path).transport.token == SECRET
