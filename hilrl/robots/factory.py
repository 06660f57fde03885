"""Build the robot a :class:`RobotConfig` names."""

from __future__ import annotations

from collections.abc import Mapping

from hilrl.config.loader import ConfigError
from hilrl.config.robot import REAL_ROBOT_TYPES, ROBOT_TYPES, RobotConfig
from hilrl.core import Robot
from hilrl.robots.calibration import CalibrationError, load_calibration
from hilrl.robots.cameras import Camera, make_cameras
from hilrl.robots.dynamixel import DynamixelBus
from hilrl.robots.feetech import FeetechBus
from hilrl.robots.motor_bus import MotorBus, PortFactory
from hilrl.robots.serial_arm import ARM_LAYOUTS, SerialArm
from hilrl.robots.sim.arm import SimArm


def make_robot(
    cfg: RobotConfig,
    *,
    port_factory: PortFactory | None = None,
    cameras: Mapping[str, Camera] | None = None,
) -> Robot:
    """The robot for ``cfg.type``: 'sim' is the built-in MuJoCo desk arm; 'so100', 'so101'
    and 'koch' are :class:`~hilrl.robots.serial_arm.SerialArm` s on their motor bus.

    An unknown type raises :class:`ConfigError` naming ``robot.type``; a missing or wrong
    calibration file names ``robot.calibration_file``. The robot is returned unconnected
    (nothing is opened here); the caller calls ``connect()``. ``port_factory`` replaces
    pyserial (tests pass a simulated bus); ``cameras`` replaces the configured capture
    devices (a mapping name -> :class:`~hilrl.robots.cameras.Camera`).
    """
    if cfg.type == "sim":
        return SimArm(cfg)
    if cfg.type in REAL_ROBOT_TYPES:
        return _make_serial_arm(cfg, port_factory, cameras)
    raise ConfigError("robot.type", cfg.type, f"unknown robot type; choose one of {ROBOT_TYPES}")


def make_motor_bus(cfg: RobotConfig, port_factory: PortFactory | None = None) -> MotorBus:
    """The (unopened) motor bus of a real arm config."""

    layout = ARM_LAYOUTS.get(cfg.type)
    if layout is None:
        raise ConfigError(
            "robot.type", cfg.type, f"not a servo arm; choose one of {REAL_ROBOT_TYPES}"
        )
    bus_cls: type[MotorBus]
    if layout.family == "feetech":
        bus_cls = FeetechBus
    else:
        bus_cls = DynamixelBus
    return bus_cls(
        cfg.port,
        cfg.baudrate,
        timeout_s=cfg.bus_timeout_s,
        retries=cfg.bus_retries,
        port_factory=port_factory,
    )


def _make_serial_arm(
    cfg: RobotConfig, port_factory: PortFactory | None, cameras: Mapping[str, Camera] | None
) -> Robot:
    cfg.validate()
    layout = ARM_LAYOUTS[cfg.type]
    bus = make_motor_bus(cfg, port_factory)
    try:
        calibration = load_calibration(
            cfg.calibration_file,
            joint_names=layout.joint_names,
            motor_family=layout.family,
            known_models=[m.name for m in bus.models.values()],
        )
    except CalibrationError as exc:
        raise ConfigError("robot.calibration_file", cfg.calibration_file, exc.reason) from exc
    if cfg.motor_ids:
        file_ids = tuple(j.id for j in calibration.joints.values())
        if file_ids != tuple(cfg.motor_ids):
            raise ConfigError(
                "robot.motor_ids",
                cfg.motor_ids,
                f"differ from the ids {file_ids} in {cfg.calibration_file}; recalibrate",
            )
    if cameras is None:
        cameras = make_cameras(
            tuple(cfg.cameras),
            cfg.camera_devices,
            cfg.camera_height,
            cfg.camera_width,
            fps=cfg.camera_fps or None,
            capture_size=cfg.camera_capture_size,
            input_format=cfg.camera_input_format,
            av_format=cfg.camera_format,
        )
    return SerialArm(
        bus,
        calibration,
        cameras=cameras,
        max_relative_target=cfg.max_relative_target,
        gripper_max_effort=cfg.gripper_max_effort,
        torque_on_connect=cfg.torque_on_connect,
    )
