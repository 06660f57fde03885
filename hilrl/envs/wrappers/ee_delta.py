"""End-effector delta actions: x/y/z steps (and optionally rotation steps) solved by IK.

Action ``[dx, dy, dz, (rx, ry, rz,) gripper]`` in [-1, 1]: the tool target is the measured
tool position plus ``action * ee_step_m``, clipped to the workspace box; with rotation the
target orientation is the measured one turned by ``action * ee_step_rad`` about the base
axes. The joint targets come from the kinematics library's IK, warm-started at the
measured joints with a few iterations and no random restarts (a restart could jump to
another arm configuration). Held (masked) joints are frozen into the chain, so IK moves
only the free joints. A 5-joint arm cannot reach every orientation: with rotation the
IK returns its best compromise.
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np

from hilrl.envs.arm import ArmModel, freeze_joints
from hilrl.envs.wrappers._targets import JointTargetAction
from hilrl.kinematics import KinematicChain, matrix_from_rotvec
from hilrl.types import Observation


class EEDeltaAction(JointTargetAction):
    """Maps end-effector delta actions to joint targets through IK."""

    def __init__(
        self,
        env: gym.Env[Observation, np.ndarray],
        arm: ArmModel,
        workspace: tuple[np.ndarray, np.ndarray],
        *,
        step_m: tuple[float, float, float] = (0.02, 0.02, 0.02),
        rotation: bool = False,
        step_rad: float = 0.1,
        ik_iterations: int = 8,
        ik_tolerance_m: float = 1e-4,
        gripper: bool = True,
        masked: tuple[str, ...] = (),
        hold_values: dict[str, float] | None = None,
    ) -> None:
        super().__init__(env, arm, 6 if rotation else 3, gripper)
        self.low = np.asarray(workspace[0], dtype=np.float64)
        self.high = np.asarray(workspace[1], dtype=np.float64)
        self.step_m = np.asarray(step_m, dtype=np.float64)
        self.rotation = rotation
        self.step_rad = step_rad
        self.ik_iterations = ik_iterations
        self.ik_tolerance_m = ik_tolerance_m
        names = arm.chain.spec.joint_names
        unknown = [n for n in masked if n not in names]
        if unknown:
            raise ValueError(f"masked joints {unknown} are not arm joints {names}")
        self.masked = tuple(masked)
        self.fixed_hold = dict(hold_values) if hold_values is not None else None
        q = np.asarray(self.robot.read_joint_positions(), dtype=np.float64)
        self.set_held_joints(self._hold_values(q))
        self.last_ik_error = 0.0

    def _hold_values(self, q: np.ndarray) -> dict[str, float]:
        if self.fixed_hold is not None:
            return {n: float(self.fixed_hold[n]) for n in self.masked}
        names = self.arm.chain.spec.joint_names
        return {n: float(q[self.arm.arm_index[names.index(n)]]) for n in self.masked}

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[Observation, dict[str, Any]]:
        obs, info = super().reset(seed=seed, options=options)
        if self.masked and self.fixed_hold is None:
            q = np.asarray(self.robot.read_joint_positions(), dtype=np.float64)
            self.set_held_joints(self._hold_values(q))
        return obs, info

    def set_held_joints(self, held: dict[str, float]) -> None:
        """Freeze ``held`` joints (name -> value) out of the IK; the rest stay free."""
        spec = self.arm.chain.spec
        self.ik_chain = KinematicChain(freeze_joints(spec, held)) if held else self.arm.chain
        free = [i for i, name in enumerate(spec.joint_names) if name not in held]
        self.free_index = self.arm.arm_index[free]
        self.held_index = self.arm.arm_index[
            [i for i, n in enumerate(spec.joint_names) if n in held]
        ]
        self.held_values = np.array([held[n] for n in spec.joint_names if n in held])

    def arm_targets(self, a: np.ndarray, q: np.ndarray, targets: np.ndarray) -> None:
        pose = self.arm.tool_pose(q[self.arm.arm_index])
        a = np.minimum(np.maximum(a, -1.0), 1.0)
        position = np.minimum(np.maximum(pose[:3, 3] + a[:3] * self.step_m, self.low), self.high)
        if self.rotation:
            target = np.eye(4)
            turn = matrix_from_rotvec(a[3:6] * self.step_rad)
            target[:3, :3] = turn @ pose[:3, :3]
            target[:3, 3] = position
            result = self.ik_chain.ik(
                target,
                q[self.free_index],
                pos_tol=self.ik_tolerance_m,
                max_iters=self.ik_iterations,
                restarts=0,
            )
        else:
            result = self.ik_chain.ik(
                position,
                q[self.free_index],
                position_only=True,
                pos_tol=self.ik_tolerance_m,
                max_iters=self.ik_iterations,
                restarts=0,
            )
        self.last_ik_error = result.position_error
        targets[self.free_index] = result.q
        if len(self.held_index):
            targets[self.held_index] = self.held_values
