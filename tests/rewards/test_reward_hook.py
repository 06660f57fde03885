"""The classifier as make_env's reward_fn on the sim: reward, success and termination."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import torch
from reward_helpers import tiny_model_cfg

from hilrl.config.env import EnvConfig
from hilrl.config.robot import RobotConfig
from hilrl.envs import make_env
from hilrl.policies.encoder import ObservationSpec
from hilrl.rewards.hook import expected_image_shapes, load_reward_fn
from hilrl.rewards.model import ClassifierMeta, RewardClassifier, save_classifier


def _env_cfg() -> EnvConfig:
    return EnvConfig(robot=RobotConfig(camera_height=24, camera_width=32), episode_time_s=2.0)


def _classifier(path: Path, env_cfg: EnvConfig) -> Path:
    spec = ObservationSpec(0, tuple(sorted(expected_image_shapes(env_cfg).items())))
    torch.manual_seed(0)
    model = RewardClassifier(spec, tiny_model_cfg())
    save_classifier(model, ClassifierMeta(spec=spec, model=tiny_model_cfg(), threshold=0.5), path)
    return path


def test_reward_fn_drives_reward_success_and_termination(tmp_path: Path) -> None:
    env_cfg = _env_cfg()
    path = _classifier(tmp_path / "clf", env_cfg)
    always = load_reward_fn(path, threshold=0.0, success_reward=5.0)
    always.check_env_config(env_cfg)
    env = make_env(env_cfg, reward_fn=always)
    try:
        always.check_observation_space(env.observation_space)
        env.reset(seed=0)
        _, reward, terminated, truncated, info = env.step(
            np.zeros(env.action_space.shape, np.float32)
        )
        assert reward == 5.0 and terminated and not truncated
        assert info["success"] is True and info["env_success"] is False  # ground truth kept
        assert 0.0 <= info["reward_classifier_score"] <= 1.0
    finally:
        env.close()
    gated = load_reward_fn(path, threshold=0.0, state_conditions=["state[0] > 1e9"])
    env = make_env(replace(env_cfg, terminate_on_success=True), reward_fn=gated)
    try:
        env.reset(seed=0)
        for _ in range(3):
            _, reward, terminated, _, info = env.step(np.zeros(env.action_space.shape, np.float32))
            assert reward == 0.0 and not terminated and info["success"] is False
    finally:
        env.close()
