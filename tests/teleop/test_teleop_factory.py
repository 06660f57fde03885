"""TeleopConfig validation and make_controller."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from env_fakes import FakeRobot

from hilrl.config.env import ActionConfig, EnvConfig
from hilrl.config.loader import ConfigError, format_config_help, load_config
from hilrl.config.robot import RobotConfig
from hilrl.config.teleop import TeleopConfig
from hilrl.core import InputController
from hilrl.teleop.errors import TeleopError
from hilrl.teleop.factory import make_controller
from hilrl.teleop.gamepad import GamepadController
from hilrl.teleop.hid import HidGamepad
from hilrl.teleop.leader import LeaderArmController
from hilrl.teleop.null import NullController
from hilrl.teleop.pynput_keyboard import PynputKeyboard
from hilrl.teleop.terminal import TerminalKeyboard

EXAMPLES = Path(__file__).resolve().parents[2] / "configs" / "gamepad_mappings"


def env_config(**action: object) -> EnvConfig:
    cfg = EnvConfig(
        robot=RobotConfig(camera_height=48, camera_width=64),
        use_cameras=False,
        action=ActionConfig(**action),  # type: ignore[arg-type]
    )
    cfg.validate()
    return cfg


def teleop(*overrides: str) -> TeleopConfig:
    return load_config(TeleopConfig, None, list(overrides))


@pytest.mark.parametrize(
    ("override", "field"),
    [
        ("--device=joystick", "device"),
        ("--intervention_mode=sticky", "intervention_mode"),
        ("--deadzone=1.0", "deadzone"),
        ("--translation_scale=0", "translation_scale"),
        ("--mapping_file=/no/such.yaml", "mapping_file"),
        ("--key_bindings={jump: [j]}", "key_bindings"),
        ("--leader.trigger=pedal", "leader.trigger"),
        ("--leader.joint_signs=[1, 2]", "leader.joint_signs"),
    ],
)
def test_config_errors_name_the_field(override: str, field: str) -> None:
    with pytest.raises(ConfigError) as info:
        teleop(override)
    assert info.value.field == field


def test_hid_needs_a_mapping_file() -> None:
    with pytest.raises(ConfigError) as info:
        teleop("--device=hid")
    assert info.value.field == "mapping_file"


def test_every_field_has_help() -> None:
    text = format_config_help(TeleopConfig)
    assert "--device" in text and "--leader.trigger" in text
    assert "hold" in text


def test_none_never_intervenes() -> None:
    ctrl = make_controller(teleop("--device=none"))
    assert isinstance(ctrl, NullController) and isinstance(ctrl, InputController)
    ctrl.start()
    cmd = ctrl.poll({}, {})
    assert not cmd.is_intervening and cmd.action is None
    ctrl.stop()


def test_sim_operator_needs_the_sim_robot_and_is_built_with_it() -> None:
    from hilrl.config.env import EnvConfig
    from hilrl.robots.sim import SimArm
    from hilrl.teleop.sim_operator import SimulatedOperator

    with pytest.raises(TeleopError, match="simulated robot"):
        make_controller(teleop("--device=sim"))
    env_cfg = EnvConfig()
    robot = SimArm(env_cfg.robot)
    ctrl = make_controller(teleop("--device=sim"), env=env_cfg, follower=robot)
    assert isinstance(ctrl, SimulatedOperator) and isinstance(ctrl, InputController)


def test_keyboard_backends(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("DISPLAY", raising=False)
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    assert isinstance(make_controller(teleop("--device=keyboard")), TerminalKeyboard)
    ctrl = make_controller(teleop("--keyboard_backend=pynput"))
    assert isinstance(ctrl, PynputKeyboard)


def test_action_layout_follows_the_env() -> None:
    ctrl = make_controller(teleop("--device=keyboard"), env=env_config(ee_rotation=True))
    assert isinstance(ctrl, TerminalKeyboard) and ctrl.action_dim == 7
    ctrl = make_controller(teleop("--device=keyboard"), env=env_config(use_gripper=False))
    assert isinstance(ctrl, TerminalKeyboard) and ctrl.action_dim == 3


def test_ee_devices_refuse_joint_control() -> None:
    with pytest.raises(TeleopError, match="control_mode='joint_absolute'"):
        make_controller(teleop("--device=gamepad"), env=env_config(control_mode="joint_absolute"))


def test_gamepad_and_hid_with_mapping_files() -> None:
    ctrl = make_controller(
        teleop("--device=gamepad", f"--mapping_file={EXAMPLES / 'dualshock4_linux.yaml'}")
    )
    assert isinstance(ctrl, GamepadController)
    assert ctrl.mapping.name.startswith("DualShock")
    ctrl = make_controller(
        teleop("--device=hid", f"--mapping_file={EXAMPLES / 'hid_gamepad_template.yaml'}")
    )
    assert isinstance(ctrl, HidGamepad)
    with pytest.raises(TeleopError, match=r"teleop\.device=gamepad"):
        make_controller(teleop("--device=hid", f"--mapping_file={EXAMPLES / 'xbox_linux.yaml'}"))


def test_bad_mapping_file_fails_in_the_factory(tmp_path: Path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text("buttons: {intervene: 5, fly: 2}\n")
    with pytest.raises(TeleopError, match=r"bad\.yaml: buttons\.fly: unknown action"):
        make_controller(teleop("--device=gamepad", f"--mapping_file={path}"))


def test_leader_from_the_factory_mirrors_in_joint_absolute_mode() -> None:
    cfg = teleop("--device=leader")
    env = env_config(control_mode="joint_absolute")
    with pytest.raises(TeleopError, match="pass the follower"):
        make_controller(cfg, env=env)
    with pytest.raises(TeleopError, match="no leader arm"):
        make_controller(cfg, env=env, follower=FakeRobot(cameras=()))
    ctrl = make_controller(
        cfg,
        env=env,
        follower=FakeRobot(cameras=()),
        leader=FakeRobot(cameras=()),
        out=io.StringIO(),
    )
    assert isinstance(ctrl, LeaderArmController)
    assert isinstance(ctrl.trigger, TerminalKeyboard)
    assert ctrl.mode == "joint_absolute" and not ctrl.trigger.gripper


def test_leader_masked_joints_and_ee_rotation() -> None:
    cfg = teleop("--device=leader")
    env = env_config(control_mode="joint_delta", masked_joints=("wrist_roll",))
    ctrl = make_controller(
        cfg, env=env, follower=FakeRobot(cameras=()), leader=FakeRobot(cameras=())
    )
    assert isinstance(ctrl, LeaderArmController)
    assert ctrl.requested_arm_joints == (
        "shoulder_pan",
        "shoulder_lift",
        "elbow_flex",
        "wrist_flex",
    )
    with pytest.raises(TeleopError, match="translation only"):
        make_controller(
            cfg,
            env=env_config(ee_rotation=True),
            follower=FakeRobot(cameras=()),
            leader=FakeRobot(cameras=()),
        )


def test_gym_envs_take_no_device() -> None:
    env = EnvConfig(gym_id="Pendulum-v1")
    with pytest.raises(TeleopError, match="gym_id"):
        make_controller(teleop("--device=keyboard"), env=env)
    assert isinstance(make_controller(teleop("--device=none"), env=env), NullController)


def test_key_bindings_load_from_config_and_reach_the_keyboard() -> None:
    cfg = teleop("--device=keyboard", "--key_bindings={intervene: [tab], success: [enter]}")
    assert cfg.key_bindings == {"intervene": ("tab",), "success": ("enter",)}
    ctrl = make_controller(cfg)
    assert isinstance(ctrl, TerminalKeyboard)
    assert ctrl.bindings["intervene"] == ("tab",) and ctrl.bindings["success"] == ("enter",)
