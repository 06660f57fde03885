"""Action wrappers: EE deltas through the real kinematics, joint modes, masking, gripper."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import numpy as np
import pytest
from env_fakes import GRIPPER_LIMITS, FakeRobot
from env_helpers import fake_config

from hilrl.config.env import ActionConfig, EnvConfig, ResetConfig, SafetyConfig, WorkspaceConfig
from hilrl.envs import make_env
from hilrl.envs.arm import freeze_joints
from hilrl.kinematics import KinematicChain, rotation_angle_between
from hilrl.kinematics.spec import SIM_ARM

CHAIN = KinematicChain(SIM_ARM)
TOL = ActionConfig().ik_tolerance_m + 1e-5
"""The IK stops within its tolerance of the target; the fake robot then tracks exactly."""


def _cfg(**action: Any) -> EnvConfig:
    cfg = fake_config(use_cameras=False)
    return replace(cfg, action=replace(cfg.action, **action))


def _tool(robot: FakeRobot) -> np.ndarray:
    return CHAIN.fk(robot.read_joint_positions()[:5])


@pytest.mark.parametrize("axis", [0, 1, 2])
@pytest.mark.parametrize("sign", [1.0, -1.0])
def test_ee_delta_moves_by_the_step_in_the_commanded_direction(
    fake_robot: FakeRobot, axis: int, sign: float
) -> None:
    env = make_env(_cfg(ee_step_m=(0.01, 0.015, 0.02)), robot=fake_robot)
    env.reset(seed=0)
    for _ in range(3):
        p0 = _tool(fake_robot)[:3, 3]
        action = np.zeros(4, dtype=np.float32)
        action[axis] = sign
        _, _, _, _, info = env.step(action)
        moved = _tool(fake_robot)[:3, 3] - p0
        expected = np.zeros(3)
        expected[axis] = sign * (0.01, 0.015, 0.02)[axis]
        np.testing.assert_allclose(moved, expected, atol=TOL)
        assert info["safety_clipped"] is False


def test_tight_ik_tolerance_tracks_exactly(fake_robot: FakeRobot) -> None:
    env = make_env(_cfg(ik_tolerance_m=1e-6, ik_iterations=50), robot=fake_robot)
    env.reset(seed=0)
    p0 = _tool(fake_robot)[:3, 3]
    env.step(np.array([-1.0, 0.5, 1.0, 0.0], dtype=np.float32))
    np.testing.assert_allclose(_tool(fake_robot)[:3, 3] - p0, [-0.02, 0.01, 0.02], atol=2e-6)


def test_half_action_moves_half_a_step(fake_robot: FakeRobot) -> None:
    env = make_env(_cfg(), robot=fake_robot)
    env.reset(seed=0)
    p0 = _tool(fake_robot)[:3, 3]
    env.step(np.array([0.5, -0.5, 0.25, 0.0], dtype=np.float32))
    np.testing.assert_allclose(_tool(fake_robot)[:3, 3] - p0, [0.01, -0.01, 0.005], atol=TOL)


def test_ee_targets_are_clipped_to_the_workspace(fake_robot: FakeRobot) -> None:
    cfg = _cfg()
    cfg = replace(cfg, workspace=WorkspaceConfig(low=(0.1, -0.18, 0.01), high=(0.25, 0.18, 0.25)))
    env = make_env(cfg, robot=fake_robot)
    env.reset(seed=0)
    for _ in range(10):
        env.step(np.array([1.0, 0.0, 0.0, 0.0], dtype=np.float32))
    p = _tool(fake_robot)[:3, 3]
    assert p[0] == pytest.approx(0.25, abs=TOL)


def test_ee_rotation_turns_the_tool(fake_robot: FakeRobot) -> None:
    env = make_env(_cfg(ee_rotation=True, ee_step_rad=0.1, ik_iterations=30), robot=fake_robot)
    env.reset(seed=0)
    assert env.action_space.shape == (7,)
    before = _tool(fake_robot)
    # Yaw about the base z axis: reachable for this arm (shoulder pan + wrist roll).
    env.step(np.array([0, 0, 0, 0, 0, 1.0, 0], dtype=np.float32))
    after = _tool(fake_robot)
    assert rotation_angle_between(before[:3, :3], after[:3, :3]) == pytest.approx(0.1, abs=0.02)
    np.testing.assert_allclose(after[:3, 3], before[:3, 3], atol=2e-3)


def test_joint_delta_moves_each_joint_by_its_step(fake_robot: FakeRobot) -> None:
    env = make_env(_cfg(control_mode="joint_delta", joint_step_rad=0.1), robot=fake_robot)
    env.reset(seed=0)
    assert env.action_space.shape == (6,)
    q0 = fake_robot.read_joint_positions()
    env.step(np.array([1.0, -0.5, 0.2, 0.0, 0.3, 0.0], dtype=np.float32))
    dq = fake_robot.read_joint_positions() - q0
    np.testing.assert_allclose(dq[:5], [0.1, -0.05, 0.02, 0.0, 0.03], atol=1e-6)


def test_joint_absolute_spans_the_limits(fake_robot: FakeRobot) -> None:
    cfg = _cfg(control_mode="joint_absolute")
    cfg = replace(cfg, safety=SafetyConfig(max_joint_step_rad=10.0, max_ee_step_m=10.0))
    cfg = replace(cfg, workspace=WorkspaceConfig(low=(-1, -1, -1), high=(1, 1, 1)))
    env = make_env(cfg, robot=fake_robot)
    env.reset(seed=0)
    env.step(np.array([-1.0, 1.0, 0.0, 0.0, 0.0, 0.0], dtype=np.float32))
    q = fake_robot.read_joint_positions()
    assert q[0] == pytest.approx(CHAIN.lower[0], abs=1e-6)
    assert q[1] == pytest.approx(CHAIN.upper[1], abs=1e-6)
    assert q[2] == pytest.approx((CHAIN.lower[2] + CHAIN.upper[2]) / 2, abs=1e-6)


def test_masked_joints_hold_still_in_joint_mode(fake_robot: FakeRobot) -> None:
    env = make_env(
        _cfg(control_mode="joint_delta", masked_joints=("wrist_roll", "shoulder_pan")),
        robot=fake_robot,
    )
    env.reset(seed=0)
    assert env.action_space.shape == (4,)  # lift, elbow, wrist_flex, gripper
    q0 = fake_robot.read_joint_positions()
    env.step(np.array([1.0, 1.0, -1.0, 0.0], dtype=np.float32))
    q1 = fake_robot.read_joint_positions()
    assert q1[0] == q0[0] and q1[4] == q0[4]
    np.testing.assert_allclose(q1[1:4] - q0[1:4], [0.1, 0.1, -0.1], atol=1e-6)


def test_masked_joints_hold_still_in_ee_mode_and_ik_uses_the_rest(fake_robot: FakeRobot) -> None:
    cfg = _cfg(masked_joints=("wrist_roll",))
    cfg = replace(cfg, reset=ResetConfig(joint_positions=(0.0, 0.3, 1.2, 1.2, 0.4)))
    env = make_env(cfg, robot=fake_robot)
    env.reset(seed=0)
    assert fake_robot.read_joint_positions()[4] == pytest.approx(0.4)
    p0 = _tool(fake_robot)[:3, 3]
    env.step(np.array([0.0, 1.0, 0.0, 0.0], dtype=np.float32))
    q = fake_robot.read_joint_positions()
    assert q[4] == pytest.approx(0.4, abs=1e-9)
    np.testing.assert_allclose(_tool(fake_robot)[:3, 3] - p0, [0.0, 0.02, 0.0], atol=TOL)


def test_frozen_chain_has_the_same_kinematics() -> None:
    rng = np.random.default_rng(0)
    for held_names in (("wrist_roll",), ("shoulder_pan", "elbow_flex"), ("wrist_flex",)):
        q = rng.uniform(CHAIN.lower, CHAIN.upper)
        held = {n: float(q[SIM_ARM.joint_names.index(n)]) for n in held_names}
        frozen = KinematicChain(freeze_joints(SIM_ARM, held))
        free = [i for i, n in enumerate(SIM_ARM.joint_names) if n not in held]
        np.testing.assert_allclose(frozen.fk(q[free]), CHAIN.fk(q), atol=1e-12)
    with pytest.raises(ValueError, match="every joint"):
        freeze_joints(SIM_ARM, dict.fromkeys(SIM_ARM.joint_names, 0.0))


def test_gripper_quantisation_and_toggle_penalty(fake_robot: FakeRobot) -> None:
    env = make_env(_cfg(gripper_penalty=-0.05), robot=fake_robot)
    env.reset(seed=0)
    closed, opened = GRIPPER_LIMITS
    assert fake_robot.read_joint_positions()[5] == opened

    def grip(cmd: float) -> tuple[float, float, float]:
        _, reward, _, _, info = env.step(np.array([0, 0, 0, cmd], dtype=np.float32))
        return fake_robot.read_joint_positions()[5], info["discrete_penalty"], float(reward)

    assert grip(0.9) == (opened, 0.0, 0.0)  # open while open: no change, no penalty
    assert grip(-0.9) == (closed, -0.05, 0.0)  # close: toggles, penalised, reward untouched
    assert grip(-1.0) == (closed, 0.0, 0.0)  # close again: no toggle
    assert grip(0.2) == (closed, 0.0, 0.0)  # inside the stay band: holds
    assert grip(-0.2) == (closed, 0.0, 0.0)
    assert grip(0.5) == (opened, -0.05, 0.0)  # open: toggles back


def test_gripper_holds_when_not_commanded(fake_robot: FakeRobot) -> None:
    env = make_env(_cfg(use_gripper=False), robot=fake_robot)
    env.reset(seed=0)
    assert env.action_space.shape == (3,)
    g0 = fake_robot.read_joint_positions()[5]
    _, _, _, _, info = env.step(np.array([0.3, 0.0, 0.0], dtype=np.float32))
    assert fake_robot.read_joint_positions()[5] == g0
    assert info["discrete_penalty"] == 0.0


def test_default_action_config_is_ee_delta_with_gripper() -> None:
    a = ActionConfig()
    assert a.control_mode == "ee_delta" and a.use_gripper and a.gripper_penalty == -0.02


def test_cached_tool_pose_matches_fk(fake_robot: FakeRobot) -> None:
    from hilrl.envs.arm import FK_CACHE_SIZE, arm_model

    arm = arm_model(fake_robot, SIM_ARM)
    rng = np.random.default_rng(1)
    qs = rng.uniform(CHAIN.lower, CHAIN.upper, (FK_CACHE_SIZE + 3, 5))
    for q in [*qs, *qs[::-1]]:
        pose = arm.tool_pose(q)
        np.testing.assert_array_equal(pose, CHAIN.fk(q))
        assert not pose.flags.writeable
    assert len(arm._fk_cache) == FK_CACHE_SIZE
