"""The safety layer: limits shrink steps (never abort), counted in info; the hold watchdog."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
from env_fakes import FakeRobot
from env_helpers import fake_config
from fake_clock import FakeClock

from hilrl.config.env import SafetyConfig
from hilrl.envs import SafetyLayer, SafetyWrapper, make_env
from hilrl.envs.safety import WORKSPACE_TOLERANCE_M
from hilrl.kinematics import KinematicChain
from hilrl.kinematics.spec import SIM_ARM

CHAIN = KinematicChain(SIM_ARM)
LOWER = np.append(CHAIN.lower, 0.0)
UPPER = np.append(CHAIN.upper, 0.07)
Q0 = np.array([0.0, 0.3, 1.2, 1.2, 0.0, 0.07])
BOX = (np.array([0.1, -0.2, 0.02]), np.array([0.35, 0.2, 0.3]))


def _layer(clock: FakeClock | None = None, **cfg: float) -> SafetyLayer:
    return SafetyLayer(
        SafetyConfig(**cfg),  # type: ignore[arg-type]
        LOWER,
        UPPER,
        chain=CHAIN,
        workspace=BOX,
        clock=clock or FakeClock(),
    )


def _ee(q: np.ndarray) -> np.ndarray:
    return CHAIN.fk(q[:5])[:3, 3]


def test_small_steps_pass_unchanged() -> None:
    target = Q0 + np.array([0.05, -0.05, 0.05, 0.0, 0.1, -0.01])
    result = _layer().limit(target, Q0)
    assert not result.clipped and result.reasons == ()
    np.testing.assert_array_equal(result.targets, target)


def test_joint_limits_are_respected() -> None:
    target = Q0.copy()
    target[5] = 0.5
    target[2] = 10.0
    result = _layer(max_joint_step_rad=100.0, max_ee_step_m=100.0).limit(target, Q0)
    assert "joint_limits" in result.reasons
    assert np.all(result.targets <= UPPER) and np.all(result.targets >= LOWER)
    assert result.targets[5] == 0.07


def test_each_joint_change_is_limited() -> None:
    target = Q0 + np.array([1.0, -1.0, 0.05, 0.0, 0.0, 0.0])
    result = _layer(max_joint_step_rad=0.2, max_ee_step_m=10.0).limit(target, Q0)
    assert result.reasons[0] == "joint_step"
    step = result.targets - Q0
    assert np.all(np.abs(step[:5]) <= 0.2 + 1e-12)
    # Limited, not dropped: each joint still moves as far as allowed, in its direction.
    assert step[0] == pytest.approx(0.2) and step[1] == pytest.approx(-0.2)
    assert step[2] == pytest.approx(0.05)


def test_ee_displacement_is_limited() -> None:
    target = Q0 + np.array([0.3, 0.0, 0.0, 0.0, 0.0, 0.0])  # pan: ~6.7 cm of tool motion
    assert np.linalg.norm(_ee(target) - _ee(Q0)) > 0.05
    result = _layer(max_ee_step_m=0.03).limit(target, Q0)
    assert "ee_step" in result.reasons
    moved = np.linalg.norm(_ee(result.targets) - _ee(Q0))
    assert 0.028 < moved <= 0.03 + 1e-9


def test_workspace_box_is_enforced_without_freezing_an_outside_arm() -> None:
    # Inside: a step that leaves the box stops at its face.
    layer = _layer(max_joint_step_rad=1.0, max_ee_step_m=1.0)
    q_in = Q0.copy()
    assert np.all(_ee(q_in) > BOX[0]) and np.all(_ee(q_in) < BOX[1])
    target = q_in + np.array([0.0, 0.5, 0.0, 0.0, 0.0, 0.0])  # lean forward: tool dips
    assert _ee(target)[2] < BOX[0][2]  # the raw step would go below the box floor
    result = layer.limit(target, q_in)
    assert "workspace" in result.reasons
    p = _ee(result.targets)
    tol = WORKSPACE_TOLERANCE_M
    assert np.all(p >= BOX[0] - tol) and np.all(p <= BOX[1] + tol)
    assert p[2] == pytest.approx(BOX[0][2], abs=tol)  # stopped at the floor, not before
    # Outside (straight up): moves that do not go further out are allowed.
    q_up = np.array([0.0, 0.0, 0.0, 0.0, 0.0, 0.07])
    toward = q_up + np.array([0.0, 0.2, 0.2, 0.0, 0.0, 0.0])
    assert not _layer(max_joint_step_rad=1.0, max_ee_step_m=1.0).limit(toward, q_up).clipped


def test_nan_commands_hold_the_measured_position() -> None:
    target = Q0.copy()
    target[1] = np.nan
    result = _layer().limit(target, Q0)
    assert np.all(np.isfinite(result.targets)) and result.targets[1] == Q0[1]


def test_disabled_layer_still_respects_joint_limits() -> None:
    target = Q0 + np.array([1.0, 0.0, 0.0, 0.0, 0.0, 1.0])
    result = _layer(enabled=False).limit(target, Q0)  # type: ignore[arg-type]
    assert result.targets[0] == pytest.approx(1.0)
    assert result.targets[5] == 0.07


def test_watchdog_holds_position_after_the_timeout(fake_robot: FakeRobot) -> None:
    clock = FakeClock()
    cfg = fake_config(use_cameras=False)
    cfg = replace(cfg, safety=replace(cfg.safety, hold_timeout_s=0.5))
    env = make_env(cfg, robot=fake_robot, clock=clock)
    env.reset(seed=0)
    watchdog = env.get_wrapper_attr("watchdog")
    clock.now += 0.4
    assert watchdog() is False
    env.step(np.array([1.0, 0.0, 0.0, 0.0], dtype=np.float32))
    sent = len(fake_robot.sent)
    clock.now += 0.45
    assert watchdog() is False and len(fake_robot.sent) == sent
    clock.now += 0.1  # 0.55 s since the last command
    assert watchdog() is True
    np.testing.assert_array_equal(fake_robot.sent[-1], fake_robot.read_joint_positions())
    assert watchdog() is False  # held; the next hold is due one timeout later
    clock.now += 0.6
    assert watchdog() is True
    assert env.get_wrapper_attr("holds") == 2


def test_clipped_steps_are_counted_in_info(fake_robot: FakeRobot) -> None:
    cfg = fake_config(use_cameras=False)
    cfg = replace(
        cfg,
        action=replace(cfg.action, control_mode="joint_delta", joint_step_rad=0.5),
        safety=replace(cfg.safety, max_joint_step_rad=0.1),
    )
    env = make_env(cfg, robot=fake_robot)
    _, info = env.reset(seed=0)
    assert info["safety_clipped_steps"] == 0
    q0 = fake_robot.read_joint_positions()
    _, _, _, _, info = env.step(np.array([1.0, 0, 0, 0, 0, 0], dtype=np.float32))
    assert info["safety_clipped"] is True and info["safety_clipped_steps"] == 1
    assert fake_robot.read_joint_positions()[0] - q0[0] == pytest.approx(0.1)
    _, _, _, _, info = env.step(np.array([0.1, 0, 0, 0, 0, 0], dtype=np.float32))
    assert info["safety_clipped"] is False and info["safety_clipped_steps"] == 1
    _, _, terminated, truncated, info = env.step(np.array([-1.0, 0, 0, 0, 0, 0], dtype=np.float32))
    assert info["safety_clipped_steps"] == 2 and not terminated and not truncated


def test_real_robots_cannot_switch_safety_off() -> None:
    from hilrl.config.env import EnvConfig
    from hilrl.config.loader import ConfigError

    cfg = EnvConfig()
    cfg.safety.enabled = False
    cfg.validate()  # the sim may
    cfg.robot.type = "so100"
    with pytest.raises(ConfigError) as info:
        cfg.validate()
    assert info.value.field == "safety.enabled"


def test_wrapper_is_in_every_robot_stack(fake_robot: FakeRobot) -> None:
    env = make_env(fake_config(use_cameras=False), robot=fake_robot)
    wrappers = []
    e = env
    while hasattr(e, "env"):
        wrappers.append(type(e))
        e = e.env
    assert SafetyWrapper in wrappers


def test_watchdog_hold_keeps_squeezing_a_grasped_object(fake_robot: FakeRobot) -> None:
    """Arm joints hold where they are; the gripper keeps its last commanded target.

    A held cube stops the fingers at the cube's width; re-sending that measured opening as
    the target would apply no force and drop the cube.
    """
    clock = FakeClock()
    cfg = fake_config(use_cameras=False)
    cfg = replace(cfg, safety=replace(cfg.safety, hold_timeout_s=0.5))
    env = make_env(cfg, robot=fake_robot, clock=clock)
    env.reset(seed=0)
    env.step(np.array([0.0, 0.0, 0.0, -1.0], dtype=np.float32))  # close the gripper
    commanded_gripper = fake_robot.sent[-1][-1]
    fake_robot._q[-1] = commanded_gripper + 0.03  # fingers blocked open by an object
    clock.now += 0.6
    assert env.get_wrapper_attr("watchdog")() is True
    held = fake_robot.sent[-1]
    np.testing.assert_array_equal(held[:-1], fake_robot.read_joint_positions()[:-1])
    assert held[-1] == commanded_gripper
