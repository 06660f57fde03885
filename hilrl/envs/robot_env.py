"""The base gymnasium environment over a :class:`~hilrl.core.Robot`.

Its action is the absolute joint target of every robot joint (gripper last); the wrappers
built by :func:`hilrl.envs.make_env` turn policy actions in [-1, 1] into these targets.
Its observation is already in the policy format of :mod:`hilrl.types`: ``observation.state``
holds the joint positions (float32) and ``observation.images.<camera>`` each camera frame
(uint8 HxWx3). Each step sends the targets, lets ``1 / fps`` seconds of robot time pass and
reads the robot back.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, SupportsFloat

import gymnasium as gym
import numpy as np
from gymnasium import spaces

from hilrl.config.env import ENV_MODES
from hilrl.core import Robot, SimTask
from hilrl.types import IMAGE_PREFIX, STATE_KEY, Observation

StepReturn = tuple[Observation, SupportsFloat, bool, bool, dict[str, Any]]
"""What ``step`` returns (gymnasium's signature)."""

RewardFn = Callable[[Observation, Mapping[str, Any]], tuple[float, bool]]
"""A reward model: ``(observation, info) -> (reward, success)``."""


class RobotEnv(gym.Env[Observation, np.ndarray]):
    """A robot as a gymnasium env, in ``mode`` 'record', 'replay' or 'train'.

    Reward: a sim robot (a :class:`~hilrl.core.SimTask`) gives 1.0 and terminates on
    ground-truth success; a real robot gives 0.0 and never terminates by itself (a reward
    model or the operator decides; see the wrappers). ``info`` always carries
    ``success``, ``discrete_penalty`` (0.0 here) and, for the sim, ``task_state``.
    """

    metadata: dict[str, Any] = {"render_modes": ["rgb_array"], "render_fps": 10}  # noqa: RUF012

    def __init__(
        self,
        robot: Robot,
        *,
        fps: float = 10.0,
        mode: str = "train",
        cameras: tuple[str, ...] | None = None,
        terminate_on_success: bool = True,
        render_mode: str | None = None,
    ) -> None:
        if fps <= 0:
            raise ValueError(f"fps must be positive, got {fps}")
        if mode not in ENV_MODES:
            raise ValueError(f"mode must be one of {ENV_MODES}, got {mode!r}")
        if render_mode not in (None, "rgb_array"):
            raise ValueError(f"render_mode must be None or 'rgb_array', got {render_mode!r}")
        self.robot = robot
        self.fps = float(fps)
        self.dt = 1.0 / self.fps
        self.mode = mode
        self.render_mode = render_mode
        self.terminate_on_success = terminate_on_success
        self.metadata = {**self.metadata, "render_fps": self.fps}
        self.cameras = tuple(robot.camera_names if cameras is None else cameras)
        unknown = [c for c in self.cameras if c not in robot.camera_names]
        if unknown:
            raise ValueError(f"cameras {unknown} not on the robot (it has {robot.camera_names})")
        self.is_sim = isinstance(robot, SimTask)
        if not robot.is_connected:
            robot.connect()

        lower, upper = robot.joint_limits
        self.joint_lower = np.asarray(lower, dtype=np.float64)
        self.joint_upper = np.asarray(upper, dtype=np.float64)
        n = len(robot.joint_names)
        self.action_space = spaces.Box(
            self.joint_lower.astype(np.float32),
            self.joint_upper.astype(np.float32),
            (n,),
            np.float32,
        )
        obs_spaces: dict[str, spaces.Space[Any]] = {
            STATE_KEY: spaces.Box(-np.inf, np.inf, (n,), np.float32)
        }
        if self.cameras:
            frames = robot.read_cameras()
            for cam in self.cameras:
                h, w = frames[cam].shape[:2]
                obs_spaces[IMAGE_PREFIX + cam] = spaces.Box(0, 255, (h, w, 3), np.uint8)
        self.observation_space = spaces.Dict(obs_spaces)  # type: ignore[assignment]
        self._last_frames: dict[str, np.ndarray] = {}

    # ------------------------------------------------------------------ gym API
    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[Observation, dict[str, Any]]:
        super().reset(seed=seed)
        if self.is_sim:
            # Draw the task seed from the env's generator: reset(seed=s) then seedless
            # resets replay the same sequence of tasks.
            task_seed = int(self.np_random.integers(0, 2**31 - 1))
            self.robot.reset_task(task_seed)  # type: ignore[attr-defined]
        obs = self.get_observation()
        return obs, self._info(success=False)

    def step(self, action: np.ndarray) -> StepReturn:
        self.robot.send_joint_targets(np.asarray(action, dtype=np.float64))
        self.robot.advance(self.dt)
        obs = self.get_observation()
        success = bool(self.robot.task_success()) if self.is_sim else False  # type: ignore[attr-defined]
        reward = 1.0 if success else 0.0
        terminated = success and self.terminate_on_success
        return obs, reward, terminated, False, self._info(success)

    def render(self) -> np.ndarray | None:  # type: ignore[override]
        if self.render_mode != "rgb_array":
            return None
        if self._last_frames:
            return next(iter(self._last_frames.values())).copy()
        frames = self.robot.read_cameras()
        return next(iter(frames.values())).copy() if frames else None

    def close(self) -> None:
        if self.robot.is_connected:
            self.robot.disconnect()

    # ------------------------------------------------------------------ helpers
    def get_observation(self) -> Observation:
        """Read the robot now, in the policy format (fresh arrays, never reused)."""
        obs: Observation = {
            STATE_KEY: np.asarray(self.robot.read_joint_positions(), dtype=np.float32)
        }
        if self.cameras:
            frames = self.robot.read_cameras()
            self._last_frames = frames
            for cam in self.cameras:
                obs[IMAGE_PREFIX + cam] = frames[cam]
        return obs

    def _info(self, success: bool) -> dict[str, Any]:
        info: dict[str, Any] = {"success": success, "discrete_penalty": 0.0}
        if self.is_sim:
            info["task_state"] = self.robot.task_state()  # type: ignore[attr-defined]
        return info
