"""Reward-model hook: a callable ``(observation, info) -> (reward, success)`` replaces the reward.

It sees the final policy observation (after crops and resizes), so a reward classifier
trained on recorded episodes sees the same images. ``success`` replaces the env's own
success flag and, with ``terminate_on_success``, its termination; the env's original flag
stays in ``info['env_success']`` (ground truth, for the sim).
"""

from __future__ import annotations

import gymnasium as gym
import numpy as np

from hilrl.envs.robot_env import RewardFn, StepReturn
from hilrl.types import Observation


class RewardModelWrapper(gym.Wrapper[Observation, np.ndarray, Observation, np.ndarray]):
    """Rewards from ``reward_fn`` instead of the environment."""

    def __init__(
        self,
        env: gym.Env[Observation, np.ndarray],
        reward_fn: RewardFn,
        *,
        terminate_on_success: bool = True,
    ) -> None:
        super().__init__(env)
        self.reward_fn = reward_fn
        self.terminate_on_success = terminate_on_success

    def step(self, action: np.ndarray) -> StepReturn:
        obs, _, terminated, truncated, info = self.env.step(action)
        reward, success = self.reward_fn(obs, info)
        info["env_success"] = bool(info.get("success", False))
        info["success"] = bool(success)
        terminated = bool(success) and self.terminate_on_success
        return obs, float(reward), terminated, truncated, info
