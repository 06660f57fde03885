"""Gripper action quantisation and the gripper-toggle penalty.

The last action component is quantised by :func:`hilrl.types.gripper_index` into close /
stay / open: close drives the gripper joint to its closed limit, open to its open limit,
stay repeats the previous gripper target (so a grasp keeps its squeeze). A command that
changes the gripper state (open <-> closed) sets ``info['discrete_penalty']`` to
``penalty`` (0.0 otherwise). The penalty is NOT added to the reward: the grasp critic
adds it to its own target, as in HIL-SERL.
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium import spaces

from hilrl.envs.robot_env import StepReturn
from hilrl.types import GRIPPER_CLOSE, GRIPPER_OPEN, Observation, gripper_index


class GripperAction(gym.Wrapper[Observation, np.ndarray, Observation, np.ndarray]):
    """Outer action: [-1, 1]^(k+1); inner action: the same k, then a gripper joint target."""

    def __init__(
        self,
        env: gym.Env[Observation, np.ndarray],
        *,
        closed: float,
        opened: float,
        penalty: float = -0.02,
        gripper_joint: int = -1,
    ) -> None:
        super().__init__(env)
        inner = env.action_space
        assert isinstance(inner, spaces.Box) and inner.shape is not None
        n = inner.shape[0]
        self.action_space = spaces.Box(-1.0, 1.0, (n,), np.float32)
        self.robot = env.unwrapped.robot  # type: ignore[attr-defined]
        self.closed = float(closed)
        self.opened = float(opened)
        self.penalty = float(penalty)
        self.gripper_joint = gripper_joint
        self.target = self.opened
        self.is_closed = False
        self.toggles = 0

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[Observation, dict[str, Any]]:
        obs, info = self.env.reset(seed=seed, options=options)
        g = float(self.robot.read_joint_positions()[self.gripper_joint])
        self.target = g
        self.is_closed = abs(g - self.closed) < abs(g - self.opened)
        self.toggles = 0
        info["discrete_penalty"] = 0.0
        info["gripper_closed"] = self.is_closed
        return obs, info

    def step(self, action: np.ndarray) -> StepReturn:
        a = np.asarray(action, dtype=np.float64)
        command = int(gripper_index(a[-1]))
        was_closed = self.is_closed
        if command == GRIPPER_CLOSE:
            self.target, self.is_closed = self.closed, True
        elif command == GRIPPER_OPEN:
            self.target, self.is_closed = self.opened, False
        toggled = self.is_closed != was_closed
        penalty = self.penalty if toggled else 0.0
        self.toggles += int(toggled)
        inner = a.copy()
        inner[-1] = self.target
        obs, reward, terminated, truncated, info = self.env.step(inner)
        info["discrete_penalty"] = penalty
        info["gripper_command"] = command
        info["gripper_closed"] = self.is_closed
        return obs, reward, terminated, truncated, info
