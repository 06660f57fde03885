"""``hilrl check-env``: the table and the exit status."""

from __future__ import annotations

import argparse

import pytest

from hilrl.cli import check_env
from hilrl.config.loader import ConfigError

pytest.importorskip("hilrl.robots.sim.arm")


def _args(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    check_env.add_arguments(parser)
    return parser.parse_args(list(argv))


def test_all_checks_pass_and_print_a_table(capsys: pytest.CaptureFixture[str]) -> None:
    assert check_env.run(_args("--camera-size", "24")) == 0
    out = capsys.readouterr().out
    for env_id in ("hilrl/PickCube-v0", "hilrl/PushCube-v0"):
        for label in ("state only", "cameras 24x24"):
            rows = [line for line in out.splitlines() if env_id in line and label in line]
            assert len(rows) == 2 and all("PASS" in r for r in rows), out
    assert "8/8 checks passed" in out


def test_a_broken_env_fails_the_run(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    import hilrl.envs.robot_env as robot_env

    def bad_observation(self):
        return {"observation.state": self.robot.read_joint_positions()}  # float64: wrong dtype

    monkeypatch.setattr(robot_env.RobotEnv, "get_observation", bad_observation)
    assert check_env.run(_args("--state-only", "--tasks", "hilrl/PushCube-v0")) == 1
    out = capsys.readouterr().out
    assert "FAIL" in out and "0/2 checks passed" in out


def test_unknown_task_names_the_option() -> None:
    with pytest.raises(ConfigError) as info:
        check_env.run(_args("--tasks", "hilrl/Nope-v0"))
    assert info.value.field == "--tasks"
