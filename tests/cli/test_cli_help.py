"""Every verb has a --help that explains it, and unknown verbs fail clearly."""

from __future__ import annotations

import subprocess
import sys

import pytest

from hilrl.cli.main import VERBS, main
from hilrl.config.loader import split_overrides


@pytest.mark.parametrize("verb", [v.name for v in VERBS])
def test_every_verb_has_a_help_page(verb: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        main([verb, "--help"])
    assert exc.value.code == 0
    out = capsys.readouterr().out
    assert f"hilrl {verb}" in out
    assert len(out.splitlines()) >= 4


def test_top_level_help_lists_every_verb() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "hilrl.cli.main", "--help"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    for verb in VERBS:
        assert verb.name in out


def test_unknown_verb_exits_2_and_lists_the_verbs(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["trian"]) == 2
    err = capsys.readouterr().err
    assert "unknown verb 'trian'" in err and "teleop" in err


def test_dotted_overrides_are_split_from_flags() -> None:
    plain, overrides = split_overrides(
        ["--config", "c.yaml", "--env.fps=5", "--env.robot.task", "push_cube", "--fast"]
    )
    assert plain == ["--config", "c.yaml", "--fast"]
    assert overrides == ["--env.fps=5", "--env.robot.task=push_cube"]


def test_config_verb_prints_the_resolved_yaml(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["config", "--env.fps=7", "--env.robot.task=push_cube"]) == 0
    text = capsys.readouterr().out
    assert "fps: 7" in text and "task: push_cube" in text


def test_config_errors_exit_2_naming_the_field(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["config", "--env.fps=-1"]) == 2
    assert "env.fps" in capsys.readouterr().err
