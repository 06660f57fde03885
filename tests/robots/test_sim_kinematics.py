"""The generated MJCF and the analytic chain describe the same arm (MuJoCo is the oracle)."""

from __future__ import annotations

import numpy as np
import pytest

from hilrl.config.robot import RobotConfig
from hilrl.kinematics import SIM_ARM, KinematicChain, rotation_angle_between
from hilrl.robots.sim import SimArm
from hilrl.robots.sim.mjcf import GRIPPER_MAX_GAP, quat_from_rpy


@pytest.fixture(scope="module")
def arm() -> SimArm:
    robot = SimArm(RobotConfig(cameras=()))
    robot.connect()
    return robot


def test_fk_matches_mujoco_ee_site(arm: SimArm) -> None:
    chain = KinematicChain(SIM_ARM)
    rng = np.random.default_rng(1)
    site = arm.model.site("ee").id
    for _ in range(100):
        q = rng.uniform(chain.lower, chain.upper)
        gap = rng.uniform(0.0, GRIPPER_MAX_GAP)  # the fingers must not move the tool frame
        arm.set_joint_positions(np.r_[q, gap])
        pose = chain.fk(q)
        np.testing.assert_allclose(arm.data.site_xpos[site], pose[:3, 3], atol=1e-6)
        mj_rot = arm.data.site_xmat[site].reshape(3, 3)
        assert rotation_angle_between(mj_rot, pose[:3, :3]) < 1e-6


def test_model_joints_follow_the_spec(arm: SimArm) -> None:
    model = arm.model
    for joint in SIM_ARM.joints:
        mj_joint = model.joint(joint.name)
        np.testing.assert_allclose(mj_joint.range, (joint.lower, joint.upper))
        np.testing.assert_allclose(model.jnt_axis[mj_joint.id], joint.axis)
    assert arm.joint_names == (*SIM_ARM.joint_names, "gripper")
    assert arm.joint_units == ("rad",) * 5 + ("m",)
    lower, upper = arm.joint_limits
    np.testing.assert_allclose(lower[:5], [j.lower for j in SIM_ARM.joints])
    np.testing.assert_allclose(upper[:5], [j.upper for j in SIM_ARM.joints])
    assert (lower[5], upper[5]) == (0.0, GRIPPER_MAX_GAP)


def test_quat_from_rpy_is_urdf_convention() -> None:
    # The MJCF body quaternions must encode R = Rz(yaw) Ry(pitch) Rx(roll), as the chain does.
    from hilrl.kinematics import matrix_from_quat, matrix_from_rpy

    rng = np.random.default_rng(2)
    for _ in range(20):
        rpy = rng.uniform(-np.pi, np.pi, 3)
        np.testing.assert_allclose(
            matrix_from_quat(quat_from_rpy(rpy)), matrix_from_rpy(rpy), atol=1e-12
        )


def test_home_pose_is_above_the_table_pointing_down(arm: SimArm) -> None:
    arm.reset_task(0)
    state = arm.task_state()
    assert state["ee_pos"][2] > 0.08
    assert state["ee_mat"][:, 2] @ np.array([0.0, 0.0, -1.0]) > 0.99
    np.testing.assert_allclose(arm.read_joint_positions(), arm.home_joint_positions, atol=1e-9)
    assert state["gripper_opening"][0] == pytest.approx(GRIPPER_MAX_GAP)
