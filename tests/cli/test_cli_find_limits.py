"""``hilrl find-limits``: the range tracker, the YAML it prints, and the CLI end to end."""

from __future__ import annotations

import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml

from hilrl.cli.main import main
from hilrl.config.loader import load_config
from hilrl.config.root import RootConfig
from hilrl.core import TeleopCommand
from hilrl.runtime.limits import (
    MIN_SPAN,
    RangeTracker,
    ee_tracker,
    joint_limits_yaml,
    joint_ranges,
    workspace_box,
    workspace_yaml,
)
from hilrl.types import Observation

STATE_ONLY = "--env.use_cameras=false"


# --------------------------------------------------------------------------- tracker
def test_tracker_bounds_of_known_samples() -> None:
    t = RangeTracker(("a", "b"))
    for sample in ([1.0, -2.0], [3.0, 5.0], [2.0, 0.0], [-1.0, 4.0]):
        t.update(sample)
    assert t.count == 4
    assert t.bounds() == {"a": (-1.0, 3.0), "b": (-2.0, 5.0)}


def test_angles_are_unwrapped_across_pi() -> None:
    t = RangeTracker(("x", "yaw"), angular=(False, True))
    for yaw in (3.0, 3.1, -3.1, -3.0, 3.1):  # wanders across +-pi and back
        t.update([0.0, yaw])
    lo, hi = t.bounds()["yaw"]
    assert lo == pytest.approx(3.0)
    assert hi == pytest.approx(2 * math.pi - 3.0)  # -3.0 continued past pi
    # a plain (non-angular) dimension with the same numbers sees the full swing
    flat = RangeTracker(("yaw",))
    for yaw in (3.0, 3.1, -3.1, -3.0, 3.1):
        flat.update([yaw])
    assert flat.bounds()["yaw"] == (-3.1, 3.1)


def test_workspace_box_adds_the_margin_and_rounds_outwards() -> None:
    t = ee_tracker()
    for pose in ([0.10, -0.05, 0.02, 0, 0, 0], [0.23456, 0.051, 0.15, 0.1, 0, 0]):
        t.update(pose)
    low, high = workspace_box(t, margin_m=0.01)
    assert low == [0.09, -0.06, 0.01]
    assert high == [0.2446, 0.061, 0.16]  # 0.24456 rounded up to 0.1 mm
    # a box that did not see an axis move still has a valid (positive) span, centred
    still = ee_tracker()
    still.update([0.2, 0.0, 0.1, 0, 0, 0])
    low, high = workspace_box(still, margin_m=0.0)
    for lo, hi, seen in zip(low, high, (0.2, 0.0, 0.1)):
        assert hi - lo >= MIN_SPAN - 1e-12
        assert lo <= seen <= hi


def test_workspace_yaml_loads_back_into_the_config(tmp_path: Path) -> None:
    t = ee_tracker()
    t.update([0.12, -0.08, 0.03, 3.1, 0.0, -3.1])
    t.update([0.25, 0.09, 0.18, -3.1, 0.2, 3.1])
    text = workspace_yaml(t, 0.005, header=["a header line"])
    path = tmp_path / "ws.yaml"
    path.write_text(text)
    cfg = load_config(RootConfig, path)
    assert cfg.env.workspace.low == pytest.approx((0.115, -0.085, 0.025))
    assert cfg.env.workspace.high == pytest.approx((0.255, 0.095, 0.185))
    assert "# a header line" in text
    assert "#   roll: [3.1000, 3.1832]" in text  # unwrapped through pi


def test_joint_ranges_are_clipped_to_the_robot_limits() -> None:
    t = RangeTracker(("j1", "j2"))
    t.update([-1.0, 0.5])
    t.update([0.5, 0.6])
    ranges = joint_ranges(t, 0.1, lower=[-1.05, 0.0], upper=[2.0, 0.65])
    assert ranges == {"j1": (-1.05, 0.6), "j2": (0.4, 0.65)}
    data = yaml.safe_load(joint_limits_yaml(t, 0.1, [-1.05, 0.0], [2.0, 0.65]))
    assert data == {"joint_limits": {"j1": [-1.05, 0.6], "j2": [0.4, 0.65]}}


def test_tracker_rejects_bad_input() -> None:
    with pytest.raises(ValueError, match="no samples"):
        ee_tracker().bounds()
    t = RangeTracker(("a", "b"))
    with pytest.raises(ValueError, match="expected 2 values"):
        t.update([1.0])
    with pytest.raises(ValueError, match="non-finite"):
        t.update([1.0, float("nan")])
    t.update([0.0, 0.0])
    with pytest.raises(ValueError, match="margin"):
        workspace_box(ee_tracker(), -0.1)
    with pytest.raises(ValueError, match="margin"):
        joint_ranges(t, float("inf"))
    with pytest.raises(ValueError, match="unique"):
        RangeTracker(("a", "a"))
    with pytest.raises(ValueError, match="flags"):
        RangeTracker(("a", "b"), angular=(True,))


# --------------------------------------------------------------------------- CLI
def _home_ee_position() -> np.ndarray:
    """Where MuJoCo puts the tool site at the sim's home pose (the independent oracle)."""
    from hilrl.config.robot import RobotConfig
    from hilrl.robots.sim.arm import SimArm

    arm = SimArm(RobotConfig(cameras=()))
    arm.connect()
    try:
        arm.reset_task(0)
        return np.asarray(arm.task_state()["ee_pos"])
    finally:
        arm.disconnect()


def test_help_lists_the_options(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["find-limits", "--help"])
    assert exc.value.code == 0
    out = capsys.readouterr().out
    for option in ("--mode", "--seconds", "--margin", "--out", "--config", "--teleop.device"):
        assert option in out


def test_ee_limits_of_a_still_arm_load_back_into_the_config(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    pytest.importorskip("hilrl.robots.sim.arm")
    out_file = tmp_path / "limits.yaml"
    argv = ["find-limits", "--teleop.device=none", STATE_ONLY, "--seconds", "0.4"]
    rc = main([*argv, "--margin", "0.02", "--out", str(out_file)])
    captured = capsys.readouterr()
    assert rc == 0, captured.err
    assert captured.out == out_file.read_text()  # stdout carries only the snippet
    assert "x=" in captured.err  # the pose line went to stderr
    cfg = load_config(RootConfig, out_file)
    low, high = np.array(cfg.env.workspace.low), np.array(cfg.env.workspace.high)
    home = _home_ee_position()
    np.testing.assert_allclose(low, home - 0.02, atol=1e-3)
    np.testing.assert_allclose(high, home + 0.02, atol=1e-3)
    assert np.all(low <= home - 0.02 + 1e-9) and np.all(high >= home + 0.02 - 1e-9)


class PushForward:
    """A scripted operator that always drives +x (the arm reaches the workspace face)."""

    def start(self) -> None: ...

    def stop(self) -> None: ...

    def reset(self) -> None: ...

    def poll(self, observation: Observation, info: Mapping[str, object]) -> TeleopCommand:
        return TeleopCommand(True, np.array([1.0, 0.0, 0.0, 0.0], dtype=np.float32))


def test_ee_limits_follow_the_operator_and_warn_at_the_box(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    pytest.importorskip("hilrl.robots.sim.arm")

    def scripted(*args: Any, **kwargs: Any) -> PushForward:
        return PushForward()

    monkeypatch.setattr("hilrl.runtime.teleop_session.make_controller", scripted)
    argv = ["find-limits", "--teleop.device=keyboard", STATE_ONLY, "--env.fps=50"]
    assert main([*argv, "--seconds", "0.6", "--margin", "0"]) == 0
    captured = capsys.readouterr()
    data = yaml.safe_load(captured.out)
    low, high = data["env"]["workspace"]["low"], data["env"]["workspace"]["high"]
    home = _home_ee_position()
    assert low[0] == pytest.approx(home[0], abs=1e-3)
    assert high[0] == pytest.approx(0.28, abs=2e-3)  # the default box's x face stopped it
    assert high[1] - low[1] < 0.01  # no sideways motion
    assert "stopped the arm at: x high" in captured.err


def test_joint_limits_cover_the_still_arm_within_the_robot_limits(
    capsys: pytest.CaptureFixture[str],
) -> None:
    pytest.importorskip("hilrl.robots.sim.arm")
    from hilrl.config.robot import RobotConfig
    from hilrl.robots.sim.arm import SimArm

    argv = ["find-limits", "--mode=joint", "--teleop.device=none", STATE_ONLY, "--seconds=0.3"]
    assert main(argv) == 0
    data = yaml.safe_load(capsys.readouterr().out)["joint_limits"]
    arm = SimArm(RobotConfig(cameras=()))
    lower, upper = arm.joint_limits
    home = arm.home_joint_positions
    assert list(data) == list(arm.joint_names)
    for name, lo_lim, hi_lim, q in zip(arm.joint_names, lower, upper, home):
        lo, hi = data[name]
        assert lo_lim - 1e-9 <= lo <= q <= hi <= hi_lim + 1e-9, name
        assert hi - lo <= 0.04 + 2e-3  # margin 0.02 each side of a still joint


def test_bad_input_exits_nonzero_with_a_clear_message(
    capsys: pytest.CaptureFixture[str],
) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["find-limits", "--mode", "sideways"])
    assert exc.value.code == 2
    assert "invalid choice: 'sideways'" in capsys.readouterr().err
    base = ["find-limits", "--teleop.device=none", STATE_ONLY]
    assert main([*base, "--seconds", "0"]) == 2
    assert "--seconds" in capsys.readouterr().err
    assert main([*base, "--seconds", "0.2", "--margin", "-1"]) == 2
    assert "--margin" in capsys.readouterr().err
    assert main(["find-limits", "--teleop.device=wand", STATE_ONLY, "--seconds", "0.2"]) == 2
    assert "teleop.device" in capsys.readouterr().err
