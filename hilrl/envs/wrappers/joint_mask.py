"""Joint masking: hold some joints fixed whatever the action says.

Sits above the reset wrapper on the joint-target action path. Each held joint's target is
replaced by its hold value: the configured one, or else the position measured right
after reset. Joint-mode action wrappers also drop held joints from the action vector; in
end-effector mode the IK solves for the free joints only (see :mod:`hilrl.envs.arm`).
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np

from hilrl.envs.robot_env import StepReturn
from hilrl.types import Observation


class JointMaskWrapper(gym.Wrapper[Observation, np.ndarray, Observation, np.ndarray]):
    """Overrides the targets of the joints at ``masked_index`` with their hold values."""

    def __init__(
        self,
        env: gym.Env[Observation, np.ndarray],
        masked_index: np.ndarray,
        hold_values: np.ndarray | None = None,
    ) -> None:
        super().__init__(env)
        self.robot = env.unwrapped.robot  # type: ignore[attr-defined]
        self.masked_index = np.asarray(masked_index, dtype=np.int64)
        self.fixed_hold = None if hold_values is None else np.asarray(hold_values, dtype=np.float64)
        if self.fixed_hold is not None and self.fixed_hold.shape != self.masked_index.shape:
            raise ValueError("hold_values needs one value per masked joint")
        self.hold = (
            self.fixed_hold.copy()
            if self.fixed_hold is not None
            else np.asarray(self.robot.read_joint_positions(), dtype=np.float64)[self.masked_index]
        )

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[Observation, dict[str, Any]]:
        obs, info = self.env.reset(seed=seed, options=options)
        if self.fixed_hold is None:
            q = np.asarray(self.robot.read_joint_positions(), dtype=np.float64)
            self.hold = q[self.masked_index]
        return obs, info

    def step(self, action: np.ndarray) -> StepReturn:
        targets = np.array(action, dtype=np.float64)
        targets[self.masked_index] = self.hold
        return self.env.step(targets)
