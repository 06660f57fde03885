"""Robot configuration: which arm, which cameras, the sim's physics and the real arms' wiring.

Real arms ('so100', 'so101': Feetech STS3215 servos; 'koch': Dynamixel XL330 / XL430) are
set up as docs/real_robot.md describes: ``port`` (the motor bus), ``calibration_file``
(written by ``hilrl calibrate``) and ``camera_devices`` (one capture device per camera).
Only static checks run here; the port, the file and the cameras are opened by the robot.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from hilrl.config.loader import ConfigError

ROBOT_TYPES = ("sim", "so100", "so101", "koch")
REAL_ROBOT_TYPES = ("so100", "so101", "koch")
SIM_TASKS = ("pick_cube", "push_cube")
BAUDRATES = (
    9_600,
    19_200,
    38_400,
    57_600,
    115_200,
    128_000,
    250_000,
    500_000,
    1_000_000,
    2_000_000,
    3_000_000,
    4_000_000,
)
CAMERA_FORMATS = ("v4l2", "avfoundation", "dshow")


@dataclass
class RobotConfig:
    type: str = "sim"
    """Which robot: 'sim' (built-in MuJoCo desk arm), 'so100' / 'so101' (Feetech STS3215 arms) or 'koch' (Dynamixel arm)."""
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
    port: str = ""
    """Real arms: serial port of the motor bus, e.g. /dev/ttyACM0 (Linux) or /dev/tty.usbmodem58760431 (macOS)."""
    baudrate: int = 1_000_000
    """Real arms: bus speed in baud (SO-100 / SO-101 / Koch motors ship at 1000000)."""
    calibration_file: str = ""
    """Real arms: the calibration JSON written by 'hilrl calibrate' (motor ids, offsets, ranges, directions)."""
    motor_ids: tuple[int, ...] = ()
    """Real arms: motor id of each joint (arm joints, gripper last) for 'hilrl calibrate'; empty: 1, 2, ..., 6."""
    calibration_pose: tuple[float, ...] | None = None
    """Real arms: joint angles (radians, the five arm joints) of the pose you hold the arm in while calibrating; null: all zero (the URDF zero pose)."""
    camera_devices: dict[str, str] = field(default_factory=dict)
    """Real arms: capture device of each camera name, e.g. {front: /dev/video0, wrist: /dev/video2} (macOS: device indices '0', '1')."""
    camera_format: str = "v4l2"
    """Real arms: PyAV input format of the cameras: 'v4l2' (Linux), 'avfoundation' (macOS) or 'dshow' (Windows)."""
    camera_fps: int = 30
    """Real arms: frame rate requested from the cameras (0: the device's default)."""
    camera_capture_size: tuple[int, int] | None = None
    """Real arms: (height, width) requested from the cameras before the resize to camera_height x camera_width; null: the device's default."""
    camera_input_format: str = "mjpeg"
    """Real arms: pixel format requested from the cameras ('mjpeg' lets USB 2 carry 640x480 at 30 fps; '' for the default)."""
    max_relative_target: float | None = None
    """Real arms: largest move (radians) a single command may ask of an arm joint from its measured position; null: no cap beyond env.safety."""
    torque_on_connect: bool = True
    """Real arms: hold the pose with motor torque once connected; false for a leader arm you move by hand."""
    gripper_max_effort: float = 0.5
    """Real arms: the gripper's torque cap as a fraction of its motor's maximum, so a closed grip does not overheat it."""
    bus_timeout_s: float = 0.05
    """Real arms: how long to wait for a motor's answer before retrying."""
    bus_retries: int = 2
    """Real arms: retries of a failed read (timeout or corrupt packet) before giving up."""

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
        if self.type in REAL_ROBOT_TYPES:
            self._validate_real()

    def _validate_real(self) -> None:
        if not self.port:
            raise ConfigError("port", self.port, f"robot type {self.type!r} needs its serial port")
        if self.baudrate not in BAUDRATES:
            raise ConfigError("baudrate", self.baudrate, f"choose one of {BAUDRATES}")
        if not self.calibration_file:
            raise ConfigError(
                "calibration_file",
                self.calibration_file,
                "needs a path (written by 'hilrl calibrate --config FILE')",
            )
        if self.motor_ids:
            if len(self.motor_ids) != 6:
                raise ConfigError(
                    "motor_ids", self.motor_ids, "needs 6 ids (5 arm joints, gripper)"
                )
            if len(set(self.motor_ids)) != 6 or not all(0 <= i <= 252 for i in self.motor_ids):
                raise ConfigError("motor_ids", self.motor_ids, "ids must be unique, in [0, 252]")
        if self.calibration_pose is not None and len(self.calibration_pose) != 5:
            raise ConfigError(
                "calibration_pose", self.calibration_pose, "needs 5 angles (the arm joints)"
            )
        for cam in self.cameras:
            if not self.camera_devices.get(cam):
                raise ConfigError(
                    f"camera_devices.{cam}",
                    self.camera_devices.get(cam),
                    "every camera needs a device (e.g. /dev/video0)",
                )
        if self.camera_format not in CAMERA_FORMATS:
            raise ConfigError(
                "camera_format", self.camera_format, f"choose one of {CAMERA_FORMATS}"
            )
        if self.camera_fps < 0:
            raise ConfigError("camera_fps", self.camera_fps, "must be >= 0")
        size = self.camera_capture_size
        if size is not None and (len(size) != 2 or min(size) <= 0):
            raise ConfigError("camera_capture_size", size, "needs a positive (height, width)")
        if self.max_relative_target is not None and not self.max_relative_target > 0:
            raise ConfigError(
                "max_relative_target", self.max_relative_target, "must be > 0 or null"
            )
        if not 0 < self.gripper_max_effort <= 1:
            raise ConfigError("gripper_max_effort", self.gripper_max_effort, "must be in (0, 1]")
        if not 0 < self.bus_timeout_s <= 1:
            raise ConfigError("bus_timeout_s", self.bus_timeout_s, "must be in (0, 1] seconds")
        if not 0 <= self.bus_retries <= 20:
            raise ConfigError("bus_retries", self.bus_retries, "must be in [0, 20]")
