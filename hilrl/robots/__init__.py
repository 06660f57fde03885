"""Robots: the built-in MuJoCo desk arm, and the factory that picks one from a config."""

from hilrl.robots.factory import make_robot

__all__ = ["make_robot"]
