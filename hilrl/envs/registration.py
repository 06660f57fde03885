"""Gymnasium registration of the built-in sim tasks, done explicitly (no import side effects).

from hilrl.envs import register_envs
register_envs()
env = gymnasium.make("hilrl/PickCube-v0", use_cameras=False)
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import gymnasium as gym

from hilrl.config.env import EnvConfig
from hilrl.envs.factory import make_env

TASK_IDS = {"hilrl/PickCube-v0": "pick_cube", "hilrl/PushCube-v0": "push_cube"}
"""Gymnasium id -> sim task name (``RobotConfig.task``)."""


def register_envs() -> None:
    """Register every sim task with gymnasium; calling it again is harmless."""
    for env_id, task in TASK_IDS.items():
        if env_id not in gym.registry:
            gym.register(
                env_id, entry_point="hilrl.envs.registration:make_task_env", kwargs={"task": task}
            )


def make_task_env(
    task: str,
    config: EnvConfig | None = None,
    use_cameras: bool | None = None,
    render_mode: str | None = None,
) -> gym.Env[Any, Any]:
    """The sim task ``task`` through :func:`~hilrl.envs.make_env` (``config`` for the rest)."""

    cfg = config if config is not None else EnvConfig()
    cfg = replace(cfg, robot=replace(cfg.robot, task=task), gym_id=None)
    if use_cameras is not None:
        cfg = replace(cfg, use_cameras=use_cameras)
    cfg.validate()
    return make_env(cfg, render_mode=render_mode)
