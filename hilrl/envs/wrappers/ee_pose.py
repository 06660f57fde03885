"""End-effector pose in the state, normalised by the workspace box.

The tool position is mapped so the workspace box spans [-1, 1] on each axis (values go
beyond that when the tool is outside the box, e.g. at a reset pose above it: clipping
would hide where the arm is). With ``orientation`` the first two columns of the tool
rotation matrix follow (already in [-1, 1]; continuous, unlike Euler angles). The pose
is computed by forward kinematics from the joint positions at the front of the state.
"""

from __future__ import annotations

import gymnasium as gym
import numpy as np
from gymnasium import spaces

from hilrl.envs.arm import ArmModel
from hilrl.envs.wrappers._obs import extend_state_space
from hilrl.types import STATE_KEY, Observation


def normalize_position(p: np.ndarray, low: np.ndarray, high: np.ndarray) -> np.ndarray:
    """Map the box [low, high] affinely onto [-1, 1] per axis."""
    return 2.0 * (p - low) / (high - low) - 1.0


class EEPoseObservation(gym.ObservationWrapper[Observation, np.ndarray, Observation]):
    """Appends the normalised tool position (3) and optionally its orientation (6)."""

    def __init__(
        self,
        env: gym.Env[Observation, np.ndarray],
        arm: ArmModel,
        workspace: tuple[np.ndarray, np.ndarray],
        *,
        orientation: bool = False,
    ) -> None:
        super().__init__(env)
        self.arm = arm
        self.low = np.asarray(workspace[0], dtype=np.float64)
        self.high = np.asarray(workspace[1], dtype=np.float64)
        self.orientation = orientation
        space = env.observation_space
        assert isinstance(space, spaces.Dict)
        self.observation_space = extend_state_space(space, 9 if orientation else 3)

    def observation(self, observation: Observation) -> Observation:
        state = observation[STATE_KEY]
        pose = self.arm.chain.fk(state[self.arm.arm_index].astype(np.float64))
        parts = [state, normalize_position(pose[:3, 3], self.low, self.high).astype(np.float32)]
        if self.orientation:
            parts.append(pose[:3, :2].T.reshape(6).astype(np.float32))
        out = dict(observation)
        out[STATE_KEY] = np.concatenate(parts)
        return out
