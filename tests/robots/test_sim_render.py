"""Sim cameras and the choice of the offscreen GL backend."""

from __future__ import annotations

import numpy as np
import pytest

from hilrl.config.robot import RobotConfig
from hilrl.robots.sim import RenderBackendError, SimArm, render


@pytest.fixture(scope="module")
def arm() -> SimArm:
    try:
        robot = SimArm(RobotConfig(cameras=("front", "wrist"), camera_height=72, camera_width=96))
        robot.connect()
        robot.read_cameras()
    except RenderBackendError as exc:  # no GL on this machine: the error says what to install
        pytest.skip(f"no offscreen rendering here: {exc}")
    return robot


def test_frames_have_the_configured_shape(arm: SimArm) -> None:
    frames = arm.read_cameras()
    assert list(frames) == ["front", "wrist"]
    for frame in frames.values():
        assert frame.shape == (72, 96, 3)
        assert frame.dtype == np.uint8
        assert frame.std() > 5  # a scene, not a blank buffer


def test_frames_change_when_the_arm_moves(arm: SimArm) -> None:
    arm.reset_task(0)
    before = arm.read_cameras()
    again = arm.read_cameras()
    for name in before:
        np.testing.assert_array_equal(before[name], again[name])  # deterministic
    q = arm.home_joint_positions + np.array([0.5, 0.2, -0.3, 0.0, 0.0, 0.0])
    arm.set_joint_positions(q)
    after = arm.read_cameras()
    for name in before:
        changed = np.abs(after[name].astype(int) - before[name].astype(int)).sum(axis=-1) > 30
        assert changed.mean() > 0.01, name


def test_no_cameras_renders_nothing() -> None:
    robot = SimArm(RobotConfig(cameras=()))
    robot.connect()
    assert robot.read_cameras() == {}
    assert robot.camera_names == ()


def test_bad_backend_name_is_rejected() -> None:
    with pytest.raises(ValueError, match="render backend"):
        render.ensure_backend("vulkan")


def test_no_working_backend_names_the_packages(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("MUJOCO_GL", raising=False)
    monkeypatch.setattr(render, "imported_backend", lambda: None)
    monkeypatch.setattr(render, "probe_backend", lambda backend, timeout_s=60.0: False)
    with pytest.raises(RenderBackendError) as err:
        render.ensure_backend("auto", need_render=True)
    for package in ("libegl1", "libgl1-mesa-dri", "libegl-mesa0", "libosmesa6"):
        assert package in str(err.value)
    assert render.ensure_backend("auto", need_render=False) is None


def test_auto_keeps_a_user_choice(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MUJOCO_GL", "osmesa")
    monkeypatch.setattr(render, "imported_backend", lambda: None)
    monkeypatch.setattr(
        render, "probe_backend", lambda backend, timeout_s=60.0: pytest.fail("probed")
    )
    assert render.ensure_backend("auto") == "osmesa"


def test_explicit_backend_conflicting_with_imported_mujoco_is_explained(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(render, "imported_backend", lambda: "egl")
    monkeypatch.setattr(render, "_imported_choice", lambda: "egl")
    with pytest.raises(RenderBackendError, match="MUJOCO_GL=osmesa"):
        render.ensure_backend("osmesa")
    assert render.ensure_backend("egl") == "egl"
