"""EnvConfig validation: every bad value is rejected with the field named."""

from __future__ import annotations

import pytest
from env_fakes import FakeRobot

from hilrl.config.env import EnvConfig
from hilrl.config.loader import ConfigError, build, load_config, to_dict
from hilrl.envs import make_env


def _error(data: dict) -> ConfigError:
    with pytest.raises(ConfigError) as info:
        build(EnvConfig, data)
    return info.value


@pytest.mark.parametrize(
    ("data", "field"),
    [
        ({"fps": 0}, "fps"),
        ({"fps": -5}, "fps"),
        ({"mode": "play"}, "mode"),
        ({"episode_time_s": 0.0}, "episode_time_s"),
        ({"workspace": {"low": [0.3, 0.0, 0.0], "high": [0.1, 0.1, 0.1]}}, "workspace.high"),
        ({"workspace": {"low": [0.0, 0.0, 0.1], "high": [0.1, 0.1, 0.1]}}, "workspace.high"),
        ({"action": {"control_mode": "torque"}}, "action.control_mode"),
        ({"action": {"ee_step_m": [0.0, 0.01, 0.01]}}, "action.ee_step_m"),
        ({"action": {"masked_joints": ["elbow"]}}, "action.masked_joints"),
        ({"action": {"gripper_penalty": 0.5}}, "action.gripper_penalty"),
        ({"images": {"crops": {"front": [0, 0, 200, 10]}}}, "images.crops.front"),
        ({"images": {"crops": {"front": [-1, 0, 10, 10]}}}, "images.crops.front"),
        ({"images": {"crops": {"side": [0, 0, 10, 10]}}}, "images.crops.side"),
        ({"images": {"resize": [0, 64]}}, "images.resize"),
        ({"images": {"interpolation": "cubic"}}, "images.interpolation"),
        ({"reset": {"joint_positions": [0.0, 0.0]}}, "reset.joint_positions"),
        ({"reset": {"joint_positions": [0.0, 0.0, 3.0, 0.0, 0.0]}}, "reset.joint_positions"),
        ({"reset": {"ee_position": [2.0, 0.0, 0.1]}}, "reset.ee_position"),
        ({"reset": {"reset_time_s": -1.0}}, "reset.reset_time_s"),
        ({"safety": {"max_joint_step_rad": 0.0}}, "safety.max_joint_step_rad"),
        ({"safety": {"hold_timeout_s": -1.0}}, "safety.hold_timeout_s"),
        ({"robot": {"type": "sim", "cameras": ["front", "front"]}}, "robot.cameras"),
        ({"unknown_field": 1}, "unknown_field"),
    ],
)
def test_bad_values_name_their_field(data: dict, field: str) -> None:
    err = _error(data)
    assert err.field == field, str(err)


def test_defaults_are_valid_and_round_trip() -> None:
    cfg = build(EnvConfig, {})
    again = build(EnvConfig, to_dict(cfg))
    assert again == cfg
    assert cfg.max_episode_steps == 200


def test_overrides_reach_nested_fields() -> None:
    cfg = load_config(
        EnvConfig,
        None,
        [
            "--fps=20",
            "--episode_time_s=1.5",
            "--images.crops={front: [1, 2, 30, 40]}",
            "--action.control_mode=joint_delta",
        ],
    )
    assert cfg.fps == 20 and cfg.max_episode_steps == 30
    assert cfg.images.crops == {"front": (1, 2, 30, 40)}
    assert cfg.action.control_mode == "joint_delta"


def test_reachable_reset_ee_position_is_accepted() -> None:
    cfg = build(EnvConfig, {"reset": {"ee_position": [0.2, 0.05, 0.1]}})
    assert cfg.reset.ee_position == (0.2, 0.05, 0.1)


def test_gym_id_skips_robot_checks() -> None:
    cfg = build(EnvConfig, {"gym_id": "Pendulum-v1", "images": {"crops": {"side": [0, 0, 1, 1]}}})
    assert cfg.gym_id == "Pendulum-v1"


def test_unreachable_reset_fails_before_the_robot_moves() -> None:
    robot = FakeRobot()
    cfg = EnvConfig()
    cfg.reset.joint_positions = (0.0, 0.0, 0.0, 0.0, 0.0, 0.5)  # gripper past its 0.07 m limit
    with pytest.raises(ConfigError) as info:
        make_env(cfg, robot=robot)
    assert info.value.field == "reset.joint_positions"
    assert robot.sent == []
