"""Real-arm configs and make_robot, and an env stepping a SerialArm over a simulated bus."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from camera_fakes import FakeCamera
from fake_clock import FakeClock
from real_servo_sim import feetech_arm, koch_calibration, so100_calibration

from hilrl.cli.main import main
from hilrl.config.env import KINEMATIC_CHAINS
from hilrl.config.loader import ConfigError, load_config
from hilrl.config.robot import RobotConfig
from hilrl.config.root import RootConfig
from hilrl.envs import make_env
from hilrl.kinematics import KinematicChain, get_chain_spec
from hilrl.robots import make_robot
from hilrl.robots.calibration import save_calibration
from hilrl.robots.cameras import V4L2Camera
from hilrl.robots.feetech import FeetechBus
from hilrl.robots.serial_arm import SerialArm

CONFIG = Path(__file__).resolve().parents[2] / "configs" / "so100_real.yaml"


def so100_cfg(tmp_path: Path, **kw) -> RobotConfig:  # type: ignore[no-untyped-def]
    path = tmp_path / "so100.json"
    save_calibration(so100_calibration(), path)
    base = {"type": "so100", "port": "/dev/fake", "calibration_file": str(path), "cameras": ()}
    return RobotConfig(**{**base, **kw})


def test_make_robot_builds_a_serial_arm_on_the_configured_port(tmp_path: Path) -> None:
    port = feetech_arm()
    opened: list[tuple] = []

    def factory(name: str, baud: int, timeout: float):  # type: ignore[no-untyped-def]
        opened.append((name, baud, timeout))
        return port

    robot = make_robot(so100_cfg(tmp_path, bus_timeout_s=0.01), port_factory=factory)
    assert isinstance(robot, SerialArm)
    assert opened == [], "make_robot opens nothing"
    robot.connect()
    assert opened == [("/dev/fake", 1_000_000, 0.01)]
    assert robot.read_joint_positions().shape == (6,)
    robot.disconnect()
    assert not any(s.torque for s in port.servos.values())


def test_make_robot_builds_configured_cameras(tmp_path: Path) -> None:
    cfg = so100_cfg(
        tmp_path,
        cameras=("front",),
        camera_devices={"front": "/dev/video9"},
        camera_capture_size=(480, 640),
    )
    robot = make_robot(cfg, port_factory=lambda *a: feetech_arm())
    assert isinstance(robot, SerialArm)
    cam = robot.cameras["front"]
    assert isinstance(cam, V4L2Camera) and cam.device == "/dev/video9"
    assert (cam.height, cam.width) == (128, 128) and cam.options["video_size"] == "640x480"


def test_calibration_file_problems_name_the_config_field(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as info:
        make_robot(so100_cfg(tmp_path, calibration_file=str(tmp_path / "none.json")))
    assert info.value.field == "robot.calibration_file" and "not found" in info.value.reason
    koch = tmp_path / "koch.json"
    save_calibration(koch_calibration(), koch)
    with pytest.raises(ConfigError, match="dynamixel"):
        make_robot(so100_cfg(tmp_path, calibration_file=str(koch)))
    with pytest.raises(ConfigError) as info:
        make_robot(so100_cfg(tmp_path, motor_ids=(11, 12, 13, 14, 15, 16)))
    assert info.value.field == "robot.motor_ids"


@pytest.mark.parametrize(
    ("override", "field"),
    [
        ("--env.robot.port=", "env.robot.port"),
        ("--env.robot.baudrate=1234", "env.robot.baudrate"),
        ("--env.robot.calibration_file=", "env.robot.calibration_file"),
        ("--env.robot.camera_devices.wrist=", "env.robot.camera_devices.wrist"),
        ("--env.robot.motor_ids=[1, 2, 3]", "env.robot.motor_ids"),
        ("--env.robot.gripper_max_effort=2", "env.robot.gripper_max_effort"),
        ("--env.robot.max_relative_target=0", "env.robot.max_relative_target"),
        ("--env.robot.camera_format=dv1394", "env.robot.camera_format"),
        ("--env.safety.enabled=false", "env.safety.enabled"),
    ],
)
def test_real_config_errors_name_the_field(override: str, field: str) -> None:
    with pytest.raises(ConfigError) as info:
        load_config(RootConfig, CONFIG, [override])
    assert info.value.field == field, str(info.value)


def test_the_example_config_loads_without_a_robot() -> None:
    cfg = load_config(RootConfig, CONFIG)
    assert cfg.env.robot.type == "so100" and cfg.env.chain_name == "so100"
    assert cfg.env.images.resize == (128, 128)
    assert set(cfg.env.robot.camera_devices) == {"front", "wrist"}
    assert KINEMATIC_CHAINS["so101"] == "so100" and KINEMATIC_CHAINS["koch"] == "koch"
    assert load_config(RootConfig, CONFIG, ["--env.robot.type=so101"]).env.chain_name == "so100"


def test_calibrate_verb_is_registered(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        main(["calibrate", "--help"])
    assert info.value.code == 0
    assert "--leader" in capsys.readouterr().out
    assert main(["calibrate", "--config", str(CONFIG), "--env.robot.type=sim"]) == 2
    missing = "--env.robot.port=/dev/hilrl-no-such-port"
    assert main(["calibrate", "--config", str(CONFIG), missing, "--out", "/nonexistent/x"]) == 2
    assert "/dev/hilrl-no-such-port" in capsys.readouterr().err


def test_env_drives_a_serial_arm_over_the_simulated_bus(tmp_path: Path) -> None:
    """The example config's whole wrapper stack on a SerialArm: reset, ee steps, images."""
    cfg = load_config(RootConfig, CONFIG)
    env_cfg = replace(cfg.env, robot=so100_cfg(tmp_path, cameras=("front", "wrist")))
    env_cfg.robot.camera_height, env_cfg.robot.camera_width = 240, 320
    port = feetech_arm()
    bus = FeetechBus(port.port, timeout_s=0.005, port_factory=lambda *a: port)
    clock = FakeClock()
    cams = {n: FakeCamera(n, 240, 320) for n in ("front", "wrist")}
    arm = SerialArm(bus, so100_calibration(), cameras=cams, clock=clock, sleep=clock.sleep)
    env = make_env(env_cfg, robot=arm, clock=clock)
    try:
        # the learner (often on another machine) reads the same spaces without hardware
        from hilrl.runtime.specs import env_specs, specs_from_config

        assert specs_from_config(replace(cfg, env=env_cfg)) == env_specs(env)
        obs, _ = env.reset(seed=0)
        assert obs["observation.images.front"].shape == (128, 128, 3)
        q_reset = arm.read_joint_positions()
        # the robot-agnostic reset (an end-effector position) was solved for the SO-100 chain
        assert env_cfg.reset.ee_position is not None and env_cfg.reset.joint_positions is None
        tool = KinematicChain(get_chain_spec("so100")).fk(q_reset[:5])[:3, 3]
        np.testing.assert_allclose(tool, env_cfg.reset.ee_position, atol=0.005)
        start = clock.now
        for _ in range(5):
            action = np.zeros(env.action_space.shape or (), dtype=np.float32)
            action[2] = 1.0  # up
            obs, _, terminated, truncated, _ = env.step(action)
            assert not terminated and not truncated
        assert clock.now - start == pytest.approx(5 / env_cfg.fps, abs=1e-6)
        lower, upper = arm.joint_limits
        q = arm.read_joint_positions()
        assert np.all(q >= lower - 1e-9) and np.all(q <= upper + 1e-9)
        assert not np.allclose(q[:5], q_reset[:5], atol=1e-3), "the arm moved"
    finally:
        env.close()
    assert not any(s.torque for s in port.servos.values())
