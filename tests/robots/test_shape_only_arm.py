"""The learner's stand-in for a real arm: the env's spaces without hardware."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from hilrl.config.loader import load_config
from hilrl.config.root import RootConfig
from hilrl.core import SimTask
from hilrl.kinematics import get_chain_spec
from hilrl.robots.shape_only import ShapeOnlyArm
from hilrl.runtime.specs import specs_from_config

CONFIG = Path(__file__).resolve().parents[2] / "configs" / "so100_real.yaml"


def test_the_stand_in_has_the_arm_joints_and_cameras_and_is_not_a_sim() -> None:
    arm = ShapeOnlyArm(get_chain_spec("koch"), cameras=("front",), image_shape=(24, 32))
    assert arm.joint_names[-1] == "gripper" and len(arm.joint_names) == 6
    assert not isinstance(arm, SimTask)
    lower, upper = arm.joint_limits
    assert np.all(lower <= arm.read_joint_positions()) and np.all(
        arm.read_joint_positions() <= upper
    )
    assert (lower[-1], upper[-1]) == (0.0, 1.0)
    assert arm.read_cameras()["front"].shape == (24, 32, 3)


def test_specs_of_a_real_arm_config_come_without_hardware() -> None:
    cfg = load_config(RootConfig, CONFIG, ["--env.robot.port=/dev/hilrl-no-such-port"])
    obs, act = specs_from_config(cfg)
    assert set(obs.image_keys) == {f"observation.images.{c}" for c in cfg.env.robot.cameras}
    assert act.has_gripper
