"""One call for a sim env watched by the simulated operator (tests, benchmarks, demos).

The robot must exist before the operator (the operator reads its ground truth) and the
operator before the env (``make_env`` takes the controller), so the order is fixed::

    env, robot, operator = make_operated_env(env_cfg, SimOperatorConfig())
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import gymnasium as gym

from hilrl.config.env import EnvConfig
from hilrl.config.loader import ConfigError
from hilrl.config.operator import SimOperatorConfig
from hilrl.core import SimTask
from hilrl.envs import make_env
from hilrl.robots import make_robot
from hilrl.teleop.sim_operator import SimulatedOperator, make_sim_operator


def make_operated_env(
    env_cfg: EnvConfig, operator_cfg: SimOperatorConfig
) -> tuple[gym.Env[Any, Any], SimTask, SimulatedOperator]:
    """The sim robot of ``env_cfg``, its simulated operator, and the env they share.

    Without ``env_cfg.use_cameras`` the robot is built with no cameras, so nothing is
    rendered and no GL backend is needed.
    """
    if env_cfg.gym_id is not None or env_cfg.robot.type != "sim":
        raise ConfigError(
            "env.robot.type", env_cfg.robot.type, "the simulated operator needs the sim robot"
        )
    env_cfg.validate()
    cameras = tuple(env_cfg.robot.cameras) if env_cfg.use_cameras else ()
    robot = make_robot(replace(env_cfg.robot, cameras=cameras))
    if not isinstance(robot, SimTask):
        raise ConfigError("env.robot.type", env_cfg.robot.type, "not a simulated robot")
    operator = make_sim_operator(operator_cfg, robot, env_cfg)
    env = make_env(env_cfg, robot=robot, controller=operator)
    return env, robot, operator
