"""State features: joint velocities and motor currents appended to ``observation.state``.

They come straight from the robot at the same tick as the joint positions (nothing runs
between the base env's read and this one), so the state stays one consistent snapshot.
"""

from __future__ import annotations

import gymnasium as gym
import numpy as np
from gymnasium import spaces

from hilrl.envs.wrappers._obs import extend_state_space
from hilrl.types import STATE_KEY, Observation


class JointStateFeatures(gym.ObservationWrapper[Observation, np.ndarray, Observation]):
    """Appends velocities (rad/s) then currents (A; sim: N·m) of every robot joint."""

    def __init__(
        self, env: gym.Env[Observation, np.ndarray], *, velocities: bool, currents: bool
    ) -> None:
        super().__init__(env)
        self.robot = env.unwrapped.robot  # type: ignore[attr-defined]
        self.velocities = velocities
        self.currents = currents
        n = len(self.robot.joint_names)
        space = env.observation_space
        assert isinstance(space, spaces.Dict)
        self.observation_space = extend_state_space(space, n * (int(velocities) + int(currents)))

    def observation(self, observation: Observation) -> Observation:
        parts = [observation[STATE_KEY]]
        if self.velocities:
            parts.append(np.asarray(self.robot.read_joint_velocities(), dtype=np.float32))
        if self.currents:
            parts.append(np.asarray(self.robot.read_joint_currents(), dtype=np.float32))
        out = dict(observation)
        out[STATE_KEY] = np.concatenate(parts)
        return out
