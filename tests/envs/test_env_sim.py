"""Integration with the MuJoCo sim arm: the checker on every task, EE control, reset pose."""

from __future__ import annotations

import warnings
from dataclasses import replace
from typing import Any

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env

from hilrl.config.env import EnvConfig, ResetConfig
from hilrl.config.robot import RobotConfig
from hilrl.envs import TASK_IDS, RobotEnv, make_env, register_envs
from hilrl.kinematics import KinematicChain
from hilrl.kinematics.spec import SIM_ARM
from hilrl.types import IMAGE_PREFIX, STATE_KEY

pytest.importorskip("mujoco")
sim_arm = pytest.importorskip("hilrl.robots.sim.arm")

CHAIN = KinematicChain(SIM_ARM)
SMALL = {"camera_height": 32, "camera_width": 32}


def _cfg(task: str = "pick_cube", cameras: bool = False, **kw: Any) -> EnvConfig:
    cfg = EnvConfig(robot=RobotConfig(task=task, **SMALL), use_cameras=cameras)  # type: ignore[arg-type]
    cfg = replace(cfg, **kw)
    cfg.validate()
    return cfg


def _tool(env: gym.Env) -> np.ndarray:
    q = env.unwrapped.robot.read_joint_positions()  # type: ignore[attr-defined]
    return CHAIN.fk(q[:5])[:3, 3]


@pytest.mark.parametrize("task", ["pick_cube", "push_cube"])
@pytest.mark.parametrize("cameras", [False, True])
def test_check_env_on_every_task(task: str, cameras: bool) -> None:
    cfg = _cfg(task, cameras)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        env = make_env(cfg)
        check_env(env, skip_render_check=True)
        check_env(env.unwrapped, skip_render_check=True)
        raw = RobotEnv(sim_arm.SimArm(cfg.robot if cameras else replace(cfg.robot, cameras=())))
        check_env(raw, skip_render_check=True)
    obs, _ = env.reset(seed=0)
    assert env.observation_space.contains(obs)
    assert (IMAGE_PREFIX + "front" in obs) == cameras


@pytest.mark.parametrize("env_id", sorted(TASK_IDS))
def test_registered_ids_make_and_pass_the_checker(env_id: str) -> None:
    register_envs()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        env = gym.make(env_id, use_cameras=False)
        check_env(env.unwrapped, skip_render_check=True)
        obs, _ = env.reset(seed=0)
        obs, _reward, _terminated, _truncated, info = env.step(env.action_space.sample())
    assert obs[STATE_KEY].dtype == np.float32 and "task_state" in info
    env.close()


@pytest.mark.parametrize("axis", [0, 1, 2])
def test_ee_delta_moves_the_sim_tool_along_the_axis(axis: int) -> None:
    env = make_env(_cfg())
    env.reset(seed=0)
    for sign in (1.0, -1.0):
        p0 = _tool(env)
        action = np.zeros(4, dtype=np.float32)
        action[axis] = sign
        for _ in range(3):
            env.step(action)
        moved = _tool(env) - p0
        # Servos lag a little behind each 2 cm target: most of 6 cm, in the right direction.
        assert 0.045 < sign * moved[axis] < 0.062, moved
        assert np.linalg.norm(np.delete(moved, axis)) < 0.006, moved


def test_sim_reset_pose_is_reached() -> None:
    pose = (0.3, 0.2, 1.1, 1.6, 0.2)
    env = make_env(_cfg(reset=ResetConfig(joint_positions=pose)))
    for seed in (0, 1):
        obs, info = env.reset(seed=seed)
        np.testing.assert_allclose(obs[STATE_KEY][:5], pose, atol=0.01)
        np.testing.assert_allclose(info["task_state"]["ee_pos"], _tool(env), atol=0.002)


def test_sim_gripper_closes_and_opens() -> None:
    env = make_env(_cfg())
    env.reset(seed=0)
    robot = env.unwrapped.robot  # type: ignore[attr-defined]
    for _ in range(3):
        _, _, _, _, _info = env.step(np.array([0, 0, 0, -1.0], dtype=np.float32))
    assert robot.read_joint_positions()[5] < 0.01
    for _ in range(3):
        env.step(np.array([0, 0, 0, 1.0], dtype=np.float32))
    assert robot.read_joint_positions()[5] > 0.06


def test_sim_vector_env() -> None:
    envs = gym.vector.SyncVectorEnv([lambda: make_env(_cfg()) for _ in range(2)])
    obs, _ = envs.reset(seed=[0, 1])
    for _ in range(3):
        obs, rewards, _terminated, _truncated, _infos = envs.step(envs.action_space.sample())
    assert obs[STATE_KEY].shape == (2, 9) and rewards.shape == (2,)
    envs.close()


def test_object_state_shows_the_randomised_cube_to_a_state_policy() -> None:
    """With state.object_state the cube's ground-truth position is in observation.state."""
    from hilrl.config.loader import build
    from hilrl.envs.wrappers import normalize_position
    from hilrl.types import STATE_KEY

    cfg = build(EnvConfig, {"use_cameras": False, "state": {"object_state": True}})
    plain = build(EnvConfig, {"use_cameras": False})
    env, env_plain = make_env(cfg), make_env(plain)
    try:
        extra = (
            env.observation_space[STATE_KEY].shape[0]
            - env_plain.observation_space[STATE_KEY].shape[0]
        )
        assert extra == 5  # cube xyz + yaw (sin, cos); pick_cube has no target
        seen = []
        for seed in (0, 1):
            obs, info = env.reset(seed=seed)
            assert env.observation_space.contains(obs)
            cube = np.asarray(info["task_state"]["cube_pos"])
            low, high = np.array(cfg.workspace.low), np.array(cfg.workspace.high)
            np.testing.assert_allclose(
                obs[STATE_KEY][-5:-2], normalize_position(cube, low, high), atol=1e-5
            )
            seen.append(obs[STATE_KEY][-5:-2])
        assert not np.allclose(seen[0], seen[1])  # randomised, and the policy sees it
    finally:
        env.close()
        env_plain.close()


def test_object_state_is_refused_for_real_robots() -> None:
    from hilrl.config.env import StateConfig
    from hilrl.config.loader import ConfigError

    cfg = EnvConfig(robot=RobotConfig(type="so100"), state=StateConfig(object_state=True))
    with pytest.raises(ConfigError) as info:
        cfg.validate()  # the env section's own check (the loader runs it after the robot's)
    assert info.value.field == "state.object_state"
