"""Joint-space actions, the alternative to end-effector control.

'joint_delta': each free arm joint moves ``action * joint_step_rad`` from its measured
position. 'joint_absolute': the action spans each free joint's limits affinely
([-1, 1] -> [lower, upper]). Held (masked) joints are not in the action; their targets
are the measured positions here and the joint-mask wrapper replaces them.
"""

from __future__ import annotations

import gymnasium as gym
import numpy as np

from hilrl.envs.arm import ArmModel
from hilrl.envs.wrappers._targets import JointTargetAction
from hilrl.types import Observation


class JointAction(JointTargetAction):
    """Maps per-joint actions in [-1, 1] (free arm joints, gripper last) to joint targets."""

    def __init__(
        self,
        env: gym.Env[Observation, np.ndarray],
        arm: ArmModel,
        *,
        mode: str = "joint_delta",
        step_rad: float = 0.1,
        free_joints: tuple[str, ...] | None = None,
        gripper: bool = True,
    ) -> None:
        if mode not in ("joint_delta", "joint_absolute"):
            raise ValueError(f"mode must be 'joint_delta' or 'joint_absolute', got {mode!r}")
        names = arm.chain.spec.joint_names
        free = names if free_joints is None else free_joints
        unknown = [n for n in free if n not in names]
        if unknown:
            raise ValueError(f"joints {unknown} are not arm joints {names}")
        self.free_index = np.array([arm.arm_index[names.index(n)] for n in free], dtype=np.int64)
        super().__init__(env, arm, len(self.free_index), gripper)
        self.mode = mode
        self.step_rad = step_rad
        self.free_lower = arm.lower[self.free_index]
        self.free_upper = arm.upper[self.free_index]

    def arm_targets(self, a: np.ndarray, q: np.ndarray, targets: np.ndarray) -> None:
        a = np.minimum(np.maximum(a, -1.0), 1.0)
        if self.mode == "joint_delta":
            targets[self.free_index] = q[self.free_index] + a * self.step_rad
        else:
            targets[self.free_index] = self.free_lower + (a + 1.0) * 0.5 * (
                self.free_upper - self.free_lower
            )
