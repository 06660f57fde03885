"""Episode-level behaviour: time limit, reset pose, intervention, reward model, vector envs."""

from __future__ import annotations

from dataclasses import replace

import gymnasium as gym
import numpy as np
import pytest
from env_fakes import FakeRobot, ScriptedController
from env_helpers import FAKE_SHAPE, fake_config

from hilrl.config.env import EnvConfig, ResetConfig
from hilrl.core import TeleopEvents
from hilrl.envs import RobotEnv, make_env, register_envs
from hilrl.envs.wrappers import ResetPoseWrapper
from hilrl.types import STATE_KEY

ZERO = np.zeros(4, dtype=np.float32)


def test_time_limit_truncates_and_never_terminates(fake_robot: FakeRobot) -> None:
    env = make_env(fake_config(use_cameras=False, episode_time_s=0.5, fps=10), robot=fake_robot)
    env.reset(seed=0)
    flags = [env.step(ZERO)[2:4] for _ in range(5)]
    assert flags == [(False, False)] * 4 + [(False, True)]


def test_reset_pose_is_reached_by_teleport(fake_robot: FakeRobot) -> None:
    pose = (0.2, 0.4, 1.0, 1.3, -0.3)
    cfg = fake_config(use_cameras=False, reset=ResetConfig(joint_positions=pose))
    env = make_env(cfg, robot=fake_robot)
    obs, _ = env.reset(seed=0)
    np.testing.assert_allclose(fake_robot.read_joint_positions()[:5], pose, atol=1e-9)
    np.testing.assert_allclose(obs[STATE_KEY][:5], pose, atol=1e-6)
    env.step(np.array([1.0, 0, 0, 0], dtype=np.float32))
    obs, _ = env.reset()
    np.testing.assert_allclose(obs[STATE_KEY][:5], pose, atol=1e-6)


def test_reset_pose_is_interpolated_on_real_robots(fake_robot: FakeRobot) -> None:
    pose = np.append(fake_robot.home_joint_positions()[:5] + 0.3, 0.0)
    env = ResetPoseWrapper(RobotEnv(fake_robot, fps=10), pose, reset_time_s=1.0, teleport=False)
    start = fake_robot.home_joint_positions()
    obs, _ = env.reset(seed=0)
    sent = np.array(fake_robot.sent)
    assert len(sent) == 10  # 1 s at 10 fps
    np.testing.assert_allclose(
        sent, start + np.outer(np.arange(1, 11) / 10, pose - start), atol=1e-12
    )
    np.testing.assert_allclose(obs[STATE_KEY], pose, atol=1e-6)
    # A joint step limit stretches the motion instead of jumping.
    fake_robot.sent.clear()
    env = ResetPoseWrapper(
        RobotEnv(fake_robot), pose, reset_time_s=0.1, teleport=False, max_joint_step=0.05
    )
    env.reset(seed=0)
    assert (
        len(fake_robot.sent) == 6
        and np.max(np.abs(np.diff(np.array(fake_robot.sent), axis=0))) <= 0.05 + 1e-12
    )


def test_reset_pose_from_an_ee_position(fake_robot: FakeRobot) -> None:
    from hilrl.kinematics import KinematicChain
    from hilrl.kinematics.spec import SIM_ARM

    cfg = fake_config(use_cameras=False, reset=ResetConfig(ee_position=(0.2, -0.05, 0.08)))
    make_env(cfg, robot=fake_robot).reset(seed=0)
    p = KinematicChain(SIM_ARM).fk(fake_robot.read_joint_positions()[:5])[:3, 3]
    np.testing.assert_allclose(p, (0.2, -0.05, 0.08), atol=2e-4)


def test_intervention_replaces_the_action_and_is_recorded(fake_robot: FakeRobot) -> None:
    operator = np.array([0.0, 1.0, 0.0, -1.0], dtype=np.float32)
    controller = ScriptedController(actions={1: operator, 2: operator * 5})
    env = make_env(fake_config(use_cameras=False), robot=fake_robot, controller=controller)
    _, info = env.reset(seed=0)
    assert controller.resets == 1 and info["is_intervention"] is False
    policy = np.array([1.0, 0.0, 0.0, 0.0], dtype=np.float32)
    infos = []
    for _ in range(4):
        y0 = fake_robot.ee_position()[1]
        infos.append((env.step(policy)[4], fake_robot.ee_position()[1] - y0))
    (i0, dy0), (i1, dy1), (i2, _), (i3, _) = infos
    assert i0["is_intervention"] is False and i3["is_intervention"] is False
    np.testing.assert_array_equal(i0["teleop_action"], policy)
    assert i1["is_intervention"] is True and i2["is_intervention"] is True
    np.testing.assert_array_equal(i1["teleop_action"], operator)
    np.testing.assert_array_equal(i2["teleop_action"], operator)  # clipped to [-1, 1]
    assert dy0 == pytest.approx(0.0, abs=1e-4) and dy1 == pytest.approx(0.02, abs=2e-4)
    assert i1["discrete_penalty"] == -0.02  # the operator closed the gripper
    assert env.get_wrapper_attr("intervention_steps") == 2
    # The controller saw the policy-format observation of each step.
    assert all(STATE_KEY in o for o in controller.polled)


def test_operator_events_end_episodes(fake_robot: FakeRobot) -> None:
    controller = ScriptedController(events={1: TeleopEvents(success=True)})
    env = make_env(fake_config(use_cameras=False), robot=fake_robot, controller=controller)
    env.reset(seed=0)
    _, reward, terminated, truncated, info = env.step(ZERO)
    assert (reward, terminated, info["event_success"]) == (0.0, False, False)
    _, reward, terminated, truncated, info = env.step(ZERO)
    assert (reward, terminated, truncated, info["success"], info["event_success"]) == (
        1.0,
        True,
        False,
        True,
        True,
    )
    controller.events = {0: TeleopEvents(rerecord=True)}
    env.reset()
    _, _, terminated, truncated, info = env.step(ZERO)
    assert (terminated, truncated, info["event_rerecord"]) == (False, True, True)


def test_reward_model_replaces_the_reward(fake_robot: FakeRobot) -> None:
    seen = []

    def reward_fn(obs, info):
        seen.append(obs)
        x = float(obs[STATE_KEY][6])  # normalised tool x
        return x, x > 0.9

    env = make_env(fake_config(use_cameras=False), robot=fake_robot, reward_fn=reward_fn)
    env.reset(seed=0)
    _, reward, terminated, _, info = env.step(ZERO)
    assert reward == pytest.approx(float(seen[-1][STATE_KEY][6])) and not terminated
    for _ in range(10):
        _, reward, terminated, _, info = env.step(np.array([1.0, 0, 0, 0], dtype=np.float32))
        if terminated:
            break
    assert terminated and info["success"] is True and float(reward) > 0.9


def test_vector_env_of_make_env_thunks() -> None:
    def thunk() -> gym.Env:
        return make_env(fake_config(), robot=FakeRobot(image_shape=FAKE_SHAPE))

    envs = gym.vector.SyncVectorEnv([thunk, thunk, thunk])
    obs, infos = envs.reset(seed=[0, 1, 2])
    assert obs[STATE_KEY].shape == (3, 9) and obs["observation.images.front"].shape == (
        3,
        *FAKE_SHAPE,
        3,
    )
    actions = envs.action_space.sample()
    obs, rewards, terminated, _truncated, infos = envs.step(actions)
    assert rewards.shape == (3,) and terminated.dtype == bool
    assert infos["is_intervention"].shape == (3,)
    np.testing.assert_allclose(infos["teleop_action"], actions, atol=1e-6)
    assert envs.observation_space.contains(obs)
    envs.close()


def test_modes_check_the_controller(fake_robot: FakeRobot) -> None:
    with pytest.raises(ValueError, match="record"):
        make_env(fake_config(mode="record"), robot=fake_robot)
    with pytest.raises(ValueError, match="replay"):
        make_env(fake_config(mode="replay"), robot=fake_robot, controller=ScriptedController())
    env = make_env(fake_config(mode="replay"), robot=fake_robot)
    assert env.unwrapped.mode == "replay"  # type: ignore[attr-defined]


def test_gym_id_passes_through_with_generic_wrappers() -> None:
    cfg = EnvConfig(gym_id="Pendulum-v1", episode_time_s=1.0, fps=10)
    env = make_env(cfg)
    obs, _ = env.reset(seed=0)
    assert obs[STATE_KEY].shape == (3,) and obs[STATE_KEY].dtype == np.float32
    space = env.action_space
    assert isinstance(space, gym.spaces.Box)
    assert space.low.tolist() == [-1.0] and space.high.tolist() == [1.0]
    steps = 0
    truncated = False
    while not truncated:
        _, _, terminated, truncated, info = env.step(np.array([1.0], dtype=np.float32))
        steps += 1
        assert not terminated and info["is_intervention"] is False
        assert info["success"] is False and info["discrete_penalty"] == 0.0
    assert steps == 10
    from hilrl.config.loader import ConfigError

    with pytest.raises(ConfigError, match="gym_id"):
        make_env(EnvConfig(gym_id="NoSuchEnv-v9"))


def test_register_envs_is_explicit_and_idempotent() -> None:
    register_envs()
    register_envs()
    assert "hilrl/PickCube-v0" in gym.registry and "hilrl/PushCube-v0" in gym.registry


def test_seeded_episodes_repeat_through_the_stack() -> None:
    def run() -> list[np.ndarray]:
        env = make_env(fake_config(use_cameras=False), robot=FakeRobot(image_shape=FAKE_SHAPE))
        env.action_space.seed(3)
        obs, _ = env.reset(seed=11)
        out = [obs[STATE_KEY]]
        for _ in range(5):
            out.append(env.step(env.action_space.sample())[0][STATE_KEY])
        return out

    np.testing.assert_array_equal(np.array(run()), np.array(run()))


def test_replace_keeps_configs_independent() -> None:
    a = fake_config()
    b = replace(a, fps=20)
    assert a.fps == 10 and b.fps == 20
