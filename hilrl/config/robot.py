"""Robot configuration: which arm, which cameras, and the sim's physics settings."""

from __future__ import annotations

from dataclasses import dataclass

from hilrl.config.loader import ConfigError

ROBOT_TYPES = ("sim",)
SIM_TASKS = ("pick_cube", "push_cube")


@dataclass
class RobotConfig:
    type: str = "sim"
    """Which robot: 'sim' (built-in MuJoCo desk arm). Real arms plug in here."""
    task: str = "pick_cube"
    """Sim task: 'pick_cube' (grasp the cube and lift it) or 'push_cube' (push it onto the target)."""
    cameras: tuple[str, ...] = ("front", "wrist")
    """Cameras to render, in order. The sim has 'front' and 'wrist'."""
    camera_height: int = 128
    """Rendered image height in pixels."""
    camera_width: int = 128
    """Rendered image width in pixels."""
    physics_dt: float = 0.002
    """Sim physics timestep in seconds; each control tick runs round(1 / (fps * dt)) substeps."""
    render_backend: str = "auto"
    """Offscreen GL backend for the sim cameras: 'auto' (EGL, then OSMesa), 'egl', 'osmesa' or 'glfw'."""
    randomize: bool = True
    """Randomise object poses at every reset (off: objects always at their nominal pose)."""

    def validate(self) -> None:
        if self.type not in ROBOT_TYPES:
            raise ConfigError("type", self.type, f"unknown robot type; choose one of {ROBOT_TYPES}")
        if self.type == "sim" and self.task not in SIM_TASKS:
            raise ConfigError("task", self.task, f"unknown sim task; choose one of {SIM_TASKS}")
        if self.camera_height <= 0:
            raise ConfigError("camera_height", self.camera_height, "must be positive")
        if self.camera_width <= 0:
            raise ConfigError("camera_width", self.camera_width, "must be positive")
        if not 0 < self.physics_dt <= 0.05:
            raise ConfigError("physics_dt", self.physics_dt, "must be in (0, 0.05] seconds")
        if self.render_backend not in ("auto", "egl", "osmesa", "glfw"):
            raise ConfigError(
                "render_backend", self.render_backend, "choose auto, egl, osmesa or glfw"
            )
        if len(set(self.cameras)) != len(self.cameras):
            raise ConfigError("cameras", self.cameras, "camera names must be unique")
