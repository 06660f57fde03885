"""The built-in MuJoCo desk arm (no ``mujoco`` import here: see :mod:`.render`)."""

from hilrl.robots.sim.arm import HOME_ARM_POSITIONS, SIM_CAMERAS, SimArm
from hilrl.robots.sim.render import RenderBackendError

__all__ = ["HOME_ARM_POSITIONS", "SIM_CAMERAS", "RenderBackendError", "SimArm"]
