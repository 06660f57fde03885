"""Shared helpers for the env tests: configs sized for the fake robot.

A uniquely named module (not ``conftest``): test folders have no ``__init__.py``, so a
plain ``from conftest import`` would pick whichever folder's conftest was imported first.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from hilrl.config.env import EnvConfig
from hilrl.config.robot import RobotConfig

FAKE_SHAPE = (48, 64)


def fake_config(**overrides: Any) -> EnvConfig:
    """An EnvConfig whose robot section matches :class:`FakeRobot`'s cameras."""
    cfg = EnvConfig(robot=RobotConfig(camera_height=FAKE_SHAPE[0], camera_width=FAKE_SHAPE[1]))
    cfg = replace(cfg, **overrides)
    cfg.validate()
    return cfg
