"""Reset wrapper: bring the arm to fixed joint positions at every episode start.

A sim robot (one with ``set_joint_positions``) teleports there and then runs
``settle_time_s`` so the servos and contacts settle; a real robot is interpolated there
linearly over ``reset_time_s``, in control ticks no larger than the per-step joint limit.
It must sit directly above the safety wrapper: it returns a fresh base observation.
"""

from __future__ import annotations

import math
from typing import Any

import gymnasium as gym
import numpy as np

from hilrl.types import Observation


class ResetPoseWrapper(gym.Wrapper[Observation, np.ndarray, Observation, np.ndarray]):
    """Moves every joint to ``pose`` (robot joint order) after the inner reset.

    ``teleport``: None picks teleporting whenever the robot can (the sim).
    """

    def __init__(
        self,
        env: gym.Env[Observation, np.ndarray],
        pose: np.ndarray,
        *,
        reset_time_s: float = 2.0,
        settle_time_s: float = 0.2,
        max_joint_step: float | None = None,
        teleport: bool | None = None,
    ) -> None:
        super().__init__(env)
        base = env.unwrapped
        self.robot = base.robot  # type: ignore[attr-defined]
        self.pose = np.asarray(pose, dtype=np.float64).copy()
        if self.pose.shape != (len(self.robot.joint_names),):
            raise ValueError(
                f"reset pose needs {len(self.robot.joint_names)} values {self.robot.joint_names}, "
                f"got {self.pose.shape}"
            )
        lower, upper = self.robot.joint_limits
        bad = np.flatnonzero((self.pose < lower - 1e-9) | (self.pose > upper + 1e-9))
        if len(bad):
            i = int(bad[0])
            raise ValueError(
                f"reset pose {self.robot.joint_names[i]} = {self.pose[i]} is outside its limits "
                f"[{lower[i]}, {upper[i]}]"
            )
        self.dt = float(base.dt)  # type: ignore[attr-defined]
        self.reset_time_s = reset_time_s
        self.settle_time_s = settle_time_s
        self.max_joint_step = max_joint_step
        can_teleport = callable(getattr(self.robot, "set_joint_positions", None))
        if teleport and not can_teleport:
            raise ValueError("this robot cannot teleport (it has no set_joint_positions)")
        self.teleport = can_teleport if teleport is None else teleport

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[Observation, dict[str, Any]]:
        _, info = self.env.reset(seed=seed, options=options)
        if self.teleport:
            self.robot.set_joint_positions(self.pose)
            self.robot.send_joint_targets(self.pose)
            if self.settle_time_s > 0:
                self.robot.advance(self.settle_time_s)
        else:
            self._interpolate()
        base = self.env.unwrapped
        obs = base.get_observation()  # type: ignore[attr-defined]
        if "task_state" in info:
            info["task_state"] = self.robot.task_state()
        return obs, info

    def _interpolate(self) -> None:
        start = np.asarray(self.robot.read_joint_positions(), dtype=np.float64)
        ticks = max(1, round(self.reset_time_s / self.dt))
        if self.max_joint_step:
            biggest = float(np.max(np.abs(self.pose - start)))
            ticks = max(ticks, math.ceil(biggest / self.max_joint_step - 1e-9))
        for k in range(1, ticks + 1):
            self.robot.send_joint_targets(start + (self.pose - start) * (k / ticks))
            self.robot.advance(self.dt)
