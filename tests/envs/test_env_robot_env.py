"""RobotEnv over the fake robot: spaces, seeding, reward and the gymnasium checker."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from env_fakes import FakeRobot
from env_helpers import FAKE_SHAPE, fake_config
from gymnasium.utils.env_checker import check_env

from hilrl.envs import RobotEnv, make_env
from hilrl.types import IMAGE_PREFIX, STATE_KEY


def test_observation_matches_space_exactly(fake_robot: FakeRobot) -> None:
    env = RobotEnv(fake_robot, fps=10)
    obs, info = env.reset(seed=1)
    assert set(obs) == {STATE_KEY, IMAGE_PREFIX + "front", IMAGE_PREFIX + "wrist"}
    assert obs[STATE_KEY].dtype == np.float32 and obs[STATE_KEY].shape == (6,)
    assert obs[IMAGE_PREFIX + "front"].dtype == np.uint8
    assert obs[IMAGE_PREFIX + "front"].shape == (*FAKE_SHAPE, 3)
    assert env.observation_space.contains(obs)
    np.testing.assert_allclose(obs[STATE_KEY], fake_robot.home_joint_positions(), atol=1e-6)
    assert info["success"] is False and info["discrete_penalty"] == 0.0
    assert set(info["task_state"]) == {"ee_pos", "goal_pos"}


def test_step_sends_targets_and_advances_one_tick(fake_robot: FakeRobot) -> None:
    env = RobotEnv(fake_robot, fps=20)
    env.reset(seed=0)
    target = fake_robot.home_joint_positions() - 0.05
    obs, *_ = env.step(target.astype(np.float32))
    np.testing.assert_allclose(fake_robot.sent[-1], target, atol=1e-6)
    np.testing.assert_allclose(obs[STATE_KEY], target, atol=1e-6)
    assert fake_robot.time_s == pytest.approx(0.05)


def test_success_gives_reward_and_terminates(fake_robot: FakeRobot) -> None:
    env = RobotEnv(fake_robot)
    env.reset(seed=3)
    q0 = fake_robot.read_joint_positions()
    _, reward, terminated, truncated, info = env.step(q0)
    assert (reward, terminated, info["success"]) == (0.0, False, False)
    # Put the goal where the tool is: the next step succeeds.
    fake_robot.goal = fake_robot.ee_position()
    _, reward, terminated, truncated, info = env.step(q0)
    assert (reward, terminated, truncated, info["success"]) == (1.0, True, False, True)


def test_seeded_resets_repeat_the_task(fake_robot: FakeRobot) -> None:
    env = RobotEnv(fake_robot)
    env.reset(seed=5)
    goals_a = [fake_robot.goal.copy()] + [
        env.reset()[1]["task_state"]["goal_pos"] for _ in range(2)
    ]
    env.reset(seed=5)
    goals_b = [fake_robot.goal.copy()] + [
        env.reset()[1]["task_state"]["goal_pos"] for _ in range(2)
    ]
    np.testing.assert_array_equal(np.array(goals_a), np.array(goals_b))
    assert not np.allclose(goals_a[0], goals_a[1])


def test_rejects_bad_arguments(fake_robot: FakeRobot) -> None:
    with pytest.raises(ValueError, match="fps"):
        RobotEnv(fake_robot, fps=0)
    with pytest.raises(ValueError, match="mode"):
        RobotEnv(fake_robot, mode="play")
    with pytest.raises(ValueError, match="side"):
        RobotEnv(fake_robot, cameras=("side",))


@pytest.mark.parametrize("cameras", [True, False])
@pytest.mark.parametrize("mode", ["ee_delta", "joint_delta", "joint_absolute"])
def test_check_env_passes(cameras: bool, mode: str) -> None:
    from dataclasses import replace

    cfg = fake_config(use_cameras=cameras)
    cfg = replace(cfg, action=replace(cfg.action, control_mode=mode))
    robot = FakeRobot(image_shape=FAKE_SHAPE, cameras=("front", "wrist") if cameras else ())
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        check_env(RobotEnv(FakeRobot(image_shape=FAKE_SHAPE)), skip_render_check=True)
        check_env(make_env(cfg, robot=robot), skip_render_check=True)
