"""The dataset features an env records: its state, cameras and action, plus hilrl's columns.

Shared by ``hilrl record`` (:mod:`hilrl.runtime.record`) and ``hilrl label-sim``
(:mod:`hilrl.rewards.label`), which both write the spaces of an env into a LeRobot dataset.
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym
from gymnasium import spaces

from hilrl.config.loader import ConfigError
from hilrl.data.lerobot.features import hilrl_features
from hilrl.types import IMAGE_PREFIX, STATE_KEY


def env_features(env: gym.Env[Any, Any]) -> dict[str, dict[str, Any]]:
    """The dataset features of ``env``: its state, cameras and action, plus hilrl's columns."""
    obs_space = env.observation_space
    act_space = env.action_space
    if not isinstance(obs_space, spaces.Dict) or STATE_KEY not in obs_space.spaces:
        raise ConfigError(
            "env", type(env).__name__, f"the observation has no '{STATE_KEY}' to record"
        )
    if (
        not isinstance(act_space, spaces.Box)
        or act_space.shape is None
        or len(act_space.shape) != 1
    ):
        raise ConfigError("env", act_space, "recording needs a 1-D Box action space")
    state = obs_space.spaces[STATE_KEY]
    assert state.shape is not None
    cameras: dict[str, tuple[int, int]] = {}
    for key, sub in obs_space.spaces.items():
        if key.startswith(IMAGE_PREFIX):
            assert sub.shape is not None
            cameras[key[len(IMAGE_PREFIX) :]] = (int(sub.shape[0]), int(sub.shape[1]))
    return hilrl_features(int(state.shape[0]), int(act_space.shape[0]), cameras)
