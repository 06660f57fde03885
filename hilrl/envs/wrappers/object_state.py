"""Ground-truth object state in ``observation.state`` (simulation only).

A state-based policy cannot see a randomly placed cube: in simulation this wrapper appends
the sim's ground truth, as gym-hil's ``environment_state`` does, so state-only training is
meaningful (and fast on a CPU). Appended, in order: the cube position normalised by the
workspace box (3), the cube's yaw as (sin 4y, cos 4y) — a cube looks the same every quarter
turn — and, for tasks with a target, the target position normalised the same way (3).
Real robots have no such signal: they use cameras (and a reward classifier) instead.
"""

from __future__ import annotations

import gymnasium as gym
import numpy as np
from gymnasium import spaces

from hilrl.core import SimTask
from hilrl.envs.wrappers._obs import extend_state_space
from hilrl.envs.wrappers.ee_pose import normalize_position
from hilrl.types import STATE_KEY, Observation


def _yaw(quat_wxyz: np.ndarray) -> float:
    w, x, y, z = (float(v) for v in quat_wxyz)
    return float(np.arctan2(2.0 * (w * z + x * y), 1.0 - 2.0 * (y * y + z * z)))


class ObjectStateObservation(gym.ObservationWrapper[Observation, np.ndarray, Observation]):
    """Appends the sim's object (and target) state to ``observation.state``."""

    def __init__(
        self,
        env: gym.Env[Observation, np.ndarray],
        task: SimTask,
        workspace: tuple[np.ndarray, np.ndarray],
    ) -> None:
        super().__init__(env)
        self.task = task
        self.low = np.asarray(workspace[0], dtype=np.float64)
        self.high = np.asarray(workspace[1], dtype=np.float64)
        self.has_target = "target_pos" in task.task_state()
        space = env.observation_space
        assert isinstance(space, spaces.Dict)
        self.observation_space = extend_state_space(space, 8 if self.has_target else 5)

    def features(self) -> np.ndarray:
        s = self.task.task_state()
        yaw = 4.0 * _yaw(np.asarray(s["cube_quat"]))
        parts = [
            normalize_position(np.asarray(s["cube_pos"], dtype=np.float64), self.low, self.high),
            np.array([np.sin(yaw), np.cos(yaw)]),
        ]
        if self.has_target:
            target = np.asarray(s["target_pos"], dtype=np.float64)
            parts.append(normalize_position(target, self.low, self.high))
        return np.concatenate(parts).astype(np.float32)

    def observation(self, observation: Observation) -> Observation:
        out = dict(observation)
        out[STATE_KEY] = np.concatenate([observation[STATE_KEY], self.features()])
        return out
