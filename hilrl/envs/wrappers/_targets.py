"""Shared part of the action wrappers that produce joint targets for every robot joint."""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium import spaces

from hilrl.envs.arm import ArmModel
from hilrl.envs.robot_env import StepReturn
from hilrl.types import Observation


class JointTargetAction(gym.Wrapper[Observation, np.ndarray, Observation, np.ndarray]):
    """Turns ``k`` arm components (+ an absolute gripper target last) into joint targets.

    The gripper target passes through when ``gripper`` is set; otherwise the gripper holds
    the position it had after reset. Subclasses fill in the arm joints.
    """

    def __init__(
        self, env: gym.Env[Observation, np.ndarray], arm: ArmModel, arm_dims: int, gripper: bool
    ) -> None:
        super().__init__(env)
        if gripper and arm.gripper_index is None:
            raise ValueError("the robot has no joint named 'gripper' to command")
        self.arm = arm
        self.robot = env.unwrapped.robot  # type: ignore[attr-defined]
        self.arm_dims = arm_dims
        self.gripper = gripper
        low = -np.ones(arm_dims + int(gripper), dtype=np.float32)
        high = np.ones(arm_dims + int(gripper), dtype=np.float32)
        if gripper:
            g = arm.gripper_index
            low[-1], high[-1] = arm.lower[g], arm.upper[g]
        self.action_space = spaces.Box(low, high, low.shape, np.float32)
        self.gripper_hold: float | None = None

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[Observation, dict[str, Any]]:
        obs, info = self.env.reset(seed=seed, options=options)
        if self.arm.gripper_index is not None:
            q = self.robot.read_joint_positions()
            self.gripper_hold = float(q[self.arm.gripper_index])
        return obs, info

    def step(self, action: np.ndarray) -> StepReturn:
        a = np.asarray(action, dtype=np.float64)
        if a.shape != self.action_space.shape:
            raise ValueError(f"action must have shape {self.action_space.shape}, got {a.shape}")
        q = np.asarray(self.robot.read_joint_positions(), dtype=np.float64)
        targets = q.copy()
        self.arm_targets(a[: self.arm_dims], q, targets)
        g = self.arm.gripper_index
        if g is not None:
            if self.gripper:
                targets[g] = a[-1]
            elif self.gripper_hold is not None:
                targets[g] = self.gripper_hold
        return self.env.step(targets)

    def arm_targets(self, a: np.ndarray, q: np.ndarray, targets: np.ndarray) -> None:
        """Write the arm joints' targets for arm action ``a`` at measured joints ``q``."""
        raise NotImplementedError
