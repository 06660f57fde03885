"""The safety layer: limits every joint-target command before it reaches the robot.

It sits directly above :class:`~hilrl.envs.robot_env.RobotEnv`, so it sees the final
joint targets whatever the control mode (end-effector or joint actions, policy or
operator). Per step it

1. clips every target to the joint limits;
2. limits each arm joint's change from its measured position to ``max_joint_step_rad``;
3. shrinks the step (towards the measured joints, by bisection on the forward
   kinematics) until the commanded end effector stays inside the workspace box (or, if
   the arm is already outside it, gets no further out) and moves at most
   ``max_ee_step_m``.

A violation shrinks the step; it never aborts the run. Shrunk steps are counted in
``info`` (``safety_clipped`` for this step, ``safety_clipped_steps`` for the episode).
A watchdog, :meth:`SafetyWrapper.watchdog`, re-sends the measured joints (hold
position) when no command arrived for ``hold_timeout_s``; the actor loop calls it while
it waits (for a policy, for the operator), and tests drive it with a fake clock.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import gymnasium as gym
import numpy as np

from hilrl.config.env import SafetyConfig
from hilrl.envs.robot_env import StepReturn
from hilrl.kinematics import KinematicChain
from hilrl.types import Observation

BISECTION_STEPS = 10
"""Bisection steps of the end-effector check: the step is kept to within 2^-10 of the most allowed."""
WORKSPACE_TOLERANCE_M = 1e-3
"""How far (metres) a commanded tool position may poke out of the box before a step is shrunk.

IK lands within its tolerance of a target clipped onto a face of the box; without this
margin every such step would trigger the (costly) bisection for sub-millimetre errors."""


@dataclass
class SafetyResult:
    """A limited command and what the limiting did."""

    targets: np.ndarray
    clipped: bool
    """True when any limit changed the command."""
    reasons: tuple[str, ...]
    """Which limits acted: 'joint_limits', 'joint_step', 'workspace', 'ee_step'."""


class SafetyLayer:
    """The limits themselves, free of gymnasium and of the robot (unit-testable)."""

    def __init__(
        self,
        cfg: SafetyConfig,
        joint_lower: np.ndarray,
        joint_upper: np.ndarray,
        *,
        chain: KinematicChain | None = None,
        arm_index: np.ndarray | None = None,
        workspace: tuple[np.ndarray, np.ndarray] | None = None,
        clock: Callable[[], float] = time.monotonic,
        fk: Callable[[np.ndarray], np.ndarray] | None = None,
    ) -> None:
        """``fk`` (arm joints -> 4x4 tool pose) defaults to ``chain.fk``; pass a cached one."""
        self.cfg = cfg
        self.lower = np.asarray(joint_lower, dtype=np.float64)
        self.upper = np.asarray(joint_upper, dtype=np.float64)
        if self.lower.shape != self.upper.shape or np.any(self.lower > self.upper):
            raise ValueError("joint limits need matching shapes and lower <= upper")
        self.chain = chain
        self.fk = fk if fk is not None else (chain.fk if chain is not None else None)
        if chain is not None and arm_index is None:
            arm_index = np.arange(chain.dof)
        self.arm_index = np.asarray(arm_index if arm_index is not None else [], dtype=np.int64)
        if chain is not None and len(self.arm_index) != chain.dof:
            raise ValueError(f"arm_index needs {chain.dof} entries, got {len(self.arm_index)}")
        self.workspace = None
        if workspace is not None:
            low, high = (np.asarray(w, dtype=np.float64) for w in workspace)
            self.workspace = (low, high)
        self.clock = clock
        self.last_command_time = clock()

    def limit(self, targets: np.ndarray, current: np.ndarray) -> SafetyResult:
        """The safe version of ``targets`` given the measured joints ``current``.

        Written with plain ufuncs and methods (no ``np.clip`` / ``np.linalg.norm``
        wrappers): it runs on every step of every env.
        """
        self.last_command_time = self.clock()
        requested = np.asarray(targets, dtype=np.float64)
        if requested.shape != self.lower.shape:
            raise ValueError(f"targets must have shape {self.lower.shape}, got {requested.shape}")
        finite = np.isfinite(requested)
        if not finite.all():
            # A NaN command holds the measured position rather than reaching the motors.
            requested = np.where(finite, requested, current)
        reasons: list[str] = []
        out = np.minimum(np.maximum(requested, self.lower), self.upper)
        if (out != requested).any():
            reasons.append("joint_limits")
        if not self.cfg.enabled:
            return SafetyResult(out, bool(reasons), tuple(reasons))
        idx = self.arm_index
        if len(idx):
            q0 = current[idx]
            step = out[idx] - q0
            limit = self.cfg.max_joint_step_rad
            if (np.abs(step) > limit).any():
                out[idx] = q0 + np.minimum(np.maximum(step, -limit), limit)
                reasons.append("joint_step")
            if self.fk is not None:
                reasons.extend(self._limit_ee(out, q0))
        return SafetyResult(out, bool(reasons), tuple(reasons))

    def _limit_ee(self, out: np.ndarray, q0: np.ndarray) -> list[str]:
        """Shrink the arm step in ``out`` (in place) to satisfy the end-effector limits."""
        assert self.fk is not None
        fk = self.fk
        idx = self.arm_index
        dq = out[idx] - q0
        if not dq.any():
            return []
        p0 = fk(q0)[:3, 3]
        base_violation = self._violation(p0)
        reasons = self._check(fk(q0 + dq)[:3, 3], p0, base_violation)
        if not reasons:
            return []
        lo, hi = 0.0, 1.0  # lo: known to satisfy; hi: known to violate
        for _ in range(BISECTION_STEPS):
            mid = 0.5 * (lo + hi)
            if self._check(fk(q0 + mid * dq)[:3, 3], p0, base_violation):
                hi = mid
            else:
                lo = mid
        out[idx] = q0 + lo * dq
        return reasons

    def _violation(self, p: np.ndarray) -> float:
        """Distance (metres) from ``p`` to the workspace box (0 inside)."""
        if self.workspace is None:
            return 0.0
        low, high = self.workspace
        d = np.maximum(low - p, 0.0) + np.maximum(p - high, 0.0)
        return math.sqrt(float(d @ d))

    def _check(self, p: np.ndarray, p0: np.ndarray, base_violation: float) -> list[str]:
        reasons = []
        if self._violation(p) > base_violation + WORKSPACE_TOLERANCE_M:
            reasons.append("workspace")
        d = p - p0
        if math.sqrt(float(d @ d)) > self.cfg.max_ee_step_m:
            reasons.append("ee_step")
        return reasons

    def command_is_stale(self) -> bool:
        """True when no command arrived within ``hold_timeout_s``."""
        return self.clock() - self.last_command_time > self.cfg.hold_timeout_s


class SafetyWrapper(gym.Wrapper[Observation, np.ndarray, Observation, np.ndarray]):
    """Applies a :class:`SafetyLayer` to the joint-target actions of a RobotEnv."""

    def __init__(self, env: gym.Env[Observation, np.ndarray], layer: SafetyLayer) -> None:
        super().__init__(env)
        self.layer = layer
        self.robot = env.unwrapped.robot  # type: ignore[attr-defined]
        self.clipped_steps = 0
        self.holds = 0
        self.last_targets: np.ndarray | None = None

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[Observation, dict[str, Any]]:
        obs, info = self.env.reset(seed=seed, options=options)
        self.clipped_steps = 0
        self.layer.last_command_time = self.layer.clock()
        info["safety_clipped"] = False
        info["safety_clipped_steps"] = 0
        return obs, info

    def step(self, action: np.ndarray) -> StepReturn:
        current = np.asarray(self.robot.read_joint_positions(), dtype=np.float64)
        result = self.layer.limit(action, current)
        self.last_targets = np.array(result.targets, dtype=np.float64)
        obs, reward, terminated, truncated, info = self.env.step(result.targets)
        if result.clipped:
            self.clipped_steps += 1
        info["safety_clipped"] = result.clipped
        info["safety_clipped_steps"] = self.clipped_steps
        return obs, reward, terminated, truncated, info

    def watchdog(self) -> bool:
        """Hold position if commands stopped arriving; True when it did."""
        if not self.layer.command_is_stale():
            return False
        hold = np.array(self.robot.read_joint_positions(), dtype=np.float64)
        last = self.last_targets
        if last is not None and self.robot.joint_names and self.robot.joint_names[-1] == "gripper":
            # Keep squeezing: a gripper target equal to its measured opening (the object's
            # width) applies no force, and a held object would drop.
            hold[-1] = last[-1]
        self.robot.send_joint_targets(hold)
        self.layer.last_command_time = self.layer.clock()
        self.holds += 1
        return True
