"""``hilrl replay``: the sim reproduces recorded episodes; pacing; bad input."""

from __future__ import annotations

import re
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from dataset_cli_helpers import record_sim, sim_config

from hilrl.cli.main import main
from hilrl.cli.replay import replay_actions
from hilrl.data.lerobot import LeRobotDatasetReader
from hilrl.envs import make_env
from hilrl.runtime.record import read_record_meta, record_seed

pytest.importorskip("hilrl.robots.sim.arm")

SUMMARY = re.compile(r"state error mean (\S+) max (\S+) last frame (\S+)")


@pytest.fixture(scope="module")
def recorded(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Three episodes in which the operator moves the arm and the gripper."""
    root = tmp_path_factory.mktemp("replay") / "ds"
    record_sim(root, 3)
    return root


def test_cli_replay_reproduces_every_recorded_episode(recorded: Path, capsys: Any) -> None:
    for e in range(3):
        assert main(["replay", str(recorded), "--episode", str(e), "--fast"]) == 0
        line = capsys.readouterr().out
        match = SUMMARY.search(line)
        assert match is not None, line
        _mean, worst, last = (float(v) for v in match.groups())
        assert worst < 1e-5 and last < 1e-5, line
        assert "15/15 frames" in line and f"seed {record_seed(0, e)}" in line


def test_tracking_error_sees_a_different_trajectory(recorded: Path) -> None:
    """The error measure is not trivially zero: other actions give a large error."""
    reader = LeRobotDatasetReader(recorded)
    ep0, ep1 = reader.episode(0), reader.episode(1)
    assert np.abs(ep0["action"] - ep1["action"]).max() > 0.1
    seed = read_record_meta(recorded)["episodes"]["1"]["seed"]
    cfg = replace(sim_config(recorded, 1).env, mode="replay", use_cameras=False)
    env = make_env(cfg)
    try:
        same = replay_actions(
            env, ep1["observation.state"], ep1["action"], seed=seed, fps=10, realtime=False
        )
        other = replay_actions(
            env, ep1["observation.state"], ep0["action"], seed=seed, fps=10, realtime=False
        )
    finally:
        env.close()
    assert same.errors.max() < 1e-5
    assert other.errors.max() > 1e-2
    assert other.errors[0] < 1e-6  # same reset pose: the trajectories only part afterwards


def test_realtime_replay_sleeps_one_period_per_frame(recorded: Path) -> None:
    reader = LeRobotDatasetReader(recorded)
    ep = reader.episode(2)
    now = [0.0]
    slept: list[float] = []

    def sleep(dt: float) -> None:
        slept.append(dt)
        now[0] += dt

    cfg = replace(sim_config(recorded, 1).env, mode="replay", use_cameras=False)
    env = make_env(cfg)
    try:
        result = replay_actions(
            env,
            ep["observation.state"],
            ep["action"],
            seed=read_record_meta(recorded)["episodes"]["2"]["seed"],
            fps=10,
            realtime=True,
            clock=lambda: now[0],
            sleep=sleep,
        )
    finally:
        env.close()
    assert result.frames == 15
    assert len(slept) == 15 and sum(slept) == pytest.approx(1.5)


def test_episode_out_of_range_is_an_error(recorded: Path, capsys: Any) -> None:
    assert main(["replay", str(recorded), "--episode", "3", "--fast"]) == 2
    err = capsys.readouterr().err
    assert "--episode" in err and "3 episodes (0..2)" in err


def test_missing_dataset_is_an_error(tmp_path: Path, capsys: Any) -> None:
    assert main(["replay", str(tmp_path / "none"), "--fast"]) == 2
    assert "dataset folder not found" in capsys.readouterr().err


def test_env_with_another_action_layout_is_refused(recorded: Path, capsys: Any) -> None:
    rc = main(["replay", str(recorded), "--fast", "--env.action.use_gripper=false"])
    assert rc == 2
    assert "action shape" in capsys.readouterr().err
