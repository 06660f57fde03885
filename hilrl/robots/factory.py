"""Build the robot a :class:`RobotConfig` names."""

from __future__ import annotations

from hilrl.config.loader import ConfigError
from hilrl.config.robot import ROBOT_TYPES, RobotConfig
from hilrl.core import Robot


def make_robot(cfg: RobotConfig) -> Robot:
    """The robot for ``cfg.type``: 'sim' is the built-in MuJoCo desk arm.

    An unknown type raises :class:`ConfigError` naming ``robot.type``. The robot is
    returned unconnected; the caller calls ``connect()``.
    """
    if cfg.type == "sim":
        from hilrl.robots.sim.arm import SimArm

        return SimArm(cfg)
    raise ConfigError("robot.type", cfg.type, f"unknown robot type; choose one of {ROBOT_TYPES}")
