"""SimArm as a Robot and a SimTask: resets, servo tracking, clipping, success criteria."""

from __future__ import annotations

import numpy as np
import pytest

from hilrl.config.loader import ConfigError
from hilrl.config.robot import RobotConfig
from hilrl.core import Robot, SimTask
from hilrl.robots import make_robot
from hilrl.robots.sim import SimArm, tasks
from hilrl.robots.sim.mjcf import CUBE_HALF


@pytest.fixture(scope="module")
def pick_arm() -> SimArm:
    robot = SimArm(RobotConfig(task="pick_cube", cameras=()))
    robot.connect()
    return robot


@pytest.fixture(scope="module")
def push_arm() -> SimArm:
    robot = SimArm(RobotConfig(task="push_cube", cameras=()))
    robot.connect()
    return robot


def test_implements_the_protocols(pick_arm: SimArm) -> None:
    assert isinstance(pick_arm, Robot)
    assert isinstance(pick_arm, SimTask)


def test_factory_builds_the_sim_and_rejects_unknown_types() -> None:
    robot = make_robot(RobotConfig(cameras=()))
    assert isinstance(robot, SimArm)
    with pytest.raises(ConfigError) as err:
        make_robot(RobotConfig(type="ur5"))
    assert err.value.field == "robot.type"
    assert "ur5" in str(err.value)


def test_unknown_camera_is_a_config_error() -> None:
    with pytest.raises(ConfigError) as err:
        SimArm(RobotConfig(cameras=("front", "top")))
    assert err.value.field == "cameras"


def test_same_seed_same_layout_different_seeds_differ(push_arm: SimArm) -> None:
    states = []
    for seed in (0, 1, 0, 2):
        push_arm.reset_task(seed)
        states.append(push_arm.task_state())
    for key in ("cube_pos", "cube_quat", "target_pos"):
        np.testing.assert_array_equal(states[0][key], states[2][key])
        assert not np.allclose(states[0][key][:2], states[1][key][:2])
        assert not np.allclose(states[1][key][:2], states[3][key][:2])


def test_layouts_stay_in_the_workspace(push_arm: SimArm) -> None:
    for seed in range(30):
        push_arm.reset_task(seed)
        state = push_arm.task_state()
        cube, target = state["cube_pos"], state["target_pos"]
        assert tasks.PUSH_CUBE_X_RANGE[0] <= cube[0] <= tasks.PUSH_CUBE_X_RANGE[1]
        assert tasks.PUSH_CUBE_Y_RANGE[0] <= cube[1] <= tasks.PUSH_CUBE_Y_RANGE[1]
        assert cube[2] == pytest.approx(CUBE_HALF)
        assert tasks.TARGET_X_RANGE[0] <= target[0] <= tasks.TARGET_X_RANGE[1]
        assert tasks.TARGET_Y_RANGE[0] <= target[1] <= tasks.TARGET_Y_RANGE[1]
        dist = np.linalg.norm(cube[:2] - target[:2])
        assert tasks.PUSH_DISTANCE_RANGE[0] - 1e-9 <= dist <= tasks.PUSH_DISTANCE_RANGE[1] + 1e-9
        assert not push_arm.task_success()


def test_pick_layouts_stay_in_the_workspace(pick_arm: SimArm) -> None:
    yaws = []
    for seed in range(30):
        pick_arm.reset_task(seed)
        state = pick_arm.task_state()
        cube = state["cube_pos"]
        assert tasks.CUBE_X_RANGE[0] <= cube[0] <= tasks.CUBE_X_RANGE[1]
        assert tasks.CUBE_Y_RANGE[0] <= cube[1] <= tasks.CUBE_Y_RANGE[1]
        assert "target_pos" not in state
        w, _, _, z = state["cube_quat"]
        yaws.append(2 * np.arctan2(z, w))
    assert min(yaws) >= tasks.CUBE_YAW_RANGE[0] and max(yaws) <= tasks.CUBE_YAW_RANGE[1]
    assert np.ptp(yaws) > 0.5  # the yaw is randomised too


def test_no_randomize_gives_the_nominal_layout() -> None:
    robot = SimArm(RobotConfig(task="pick_cube", cameras=(), randomize=False))
    robot.reset_task(3)
    first = robot.task_state()["cube_pos"]
    robot.reset_task(4)
    np.testing.assert_array_equal(first, robot.task_state()["cube_pos"])
    np.testing.assert_allclose(first, (*tasks.NOMINAL_PICK_CUBE, CUBE_HALF))


def test_reset_puts_the_arm_home_at_rest(pick_arm: SimArm) -> None:
    pick_arm.send_joint_targets(pick_arm.home_joint_positions + 0.2)
    pick_arm.advance(0.3)
    pick_arm.reset_task(5)
    np.testing.assert_allclose(pick_arm.read_joint_positions(), pick_arm.home_joint_positions)
    np.testing.assert_allclose(pick_arm.read_joint_velocities(), 0.0)
    assert pick_arm.data.time == 0.0


def test_arm_tracks_a_joint_target(pick_arm: SimArm) -> None:
    pick_arm.reset_task(0)
    target = pick_arm.home_joint_positions + np.array([0.3, -0.2, 0.25, -0.3, 0.6, -0.04])
    for _ in range(10):  # 1 s at 10 Hz
        pick_arm.send_joint_targets(target)
        pick_arm.advance(0.1)
    q = pick_arm.read_joint_positions()
    np.testing.assert_allclose(q[:5], target[:5], atol=2e-3)
    assert q[5] == pytest.approx(target[5], abs=1e-3)
    np.testing.assert_allclose(pick_arm.read_joint_velocities(), 0.0, atol=1e-2)


def test_commands_are_clipped_to_the_joint_limits(pick_arm: SimArm) -> None:
    pick_arm.reset_task(0)
    lower, upper = pick_arm.joint_limits
    pick_arm.send_joint_targets(upper + 1.0)
    np.testing.assert_allclose(pick_arm.data.ctrl[:5], upper[:5])
    np.testing.assert_allclose(pick_arm.data.ctrl[5:], upper[5] / 2)
    pick_arm.send_joint_targets(lower - 1.0)
    np.testing.assert_allclose(pick_arm.data.ctrl[:5], lower[:5])
    np.testing.assert_allclose(pick_arm.data.ctrl[5:], 0.0)
    # Pan, wrist roll and gripper past both limits (the other joints stay home, clear of
    # the table): the arm settles on the limits, not beyond.
    free = np.array([0, 4, 5])
    for limit, sign in ((upper, 1.0), (lower, -1.0)):
        pick_arm.reset_task(0)
        target = pick_arm.home_joint_positions
        target[free] = limit[free] + sign * 0.5
        for _ in range(15):
            pick_arm.send_joint_targets(target)
            pick_arm.advance(0.1)
        q = pick_arm.read_joint_positions()
        np.testing.assert_allclose(q[free], limit[free], atol=2e-3)
        assert np.all(q >= lower - 2e-3) and np.all(q <= upper + 2e-3)


def test_bad_commands_are_rejected(pick_arm: SimArm) -> None:
    with pytest.raises(ValueError, match="shape"):
        pick_arm.send_joint_targets(np.zeros(5))
    with pytest.raises(ValueError, match="finite"):
        pick_arm.send_joint_targets(np.full(6, np.nan))
    with pytest.raises(ValueError, match="dt"):
        pick_arm.advance(0.0)


def test_io_needs_a_connection() -> None:
    robot = SimArm(RobotConfig(cameras=()))
    with pytest.raises(RuntimeError, match="connect"):
        robot.read_joint_positions()
    robot.connect()
    assert robot.is_connected
    robot.read_joint_positions()
    robot.disconnect()
    robot.disconnect()
    assert not robot.is_connected


def test_advance_runs_round_dt_over_physics_dt_substeps() -> None:
    robot = SimArm(RobotConfig(cameras=(), physics_dt=0.005))
    robot.connect()
    robot.advance(0.1)
    assert robot.data.time == pytest.approx(0.1)
    robot.advance(0.0126)  # rounds to 3 substeps
    assert robot.data.time == pytest.approx(0.115)


def test_push_success_only_with_the_cube_on_the_target(push_arm: SimArm) -> None:
    push_arm.reset_task(7)
    assert not push_arm.task_success()
    target = push_arm.task_state()["target_pos"]
    push_arm.set_cube_pose(np.r_[target[:2] + np.array([0.01, -0.01]), CUBE_HALF])
    push_arm.advance(0.1)
    assert push_arm.task_success()
    push_arm.set_cube_pose(np.r_[target[:2] + np.array([0.03, 0.0]), CUBE_HALF])
    assert not push_arm.task_success()
    push_arm.set_cube_pose(np.r_[target[:2], CUBE_HALF + 0.05])  # above the target, not on it
    assert not push_arm.task_success()


def test_pick_needs_the_fingers_not_just_height(pick_arm: SimArm) -> None:
    pick_arm.reset_task(1)
    assert not pick_arm.task_success()
    cube = pick_arm.task_state()["cube_pos"]
    pick_arm.set_cube_pose(cube + np.array([0.0, 0.0, 0.1]))  # floating, untouched
    assert pick_arm.task_state()["cube_lift"][0] > tasks.LIFT_HEIGHT
    assert not pick_arm.task_success()


def test_cube_rests_on_the_table(pick_arm: SimArm) -> None:
    pick_arm.reset_task(2)
    before = pick_arm.task_state()["cube_pos"]
    for _ in range(10):
        pick_arm.advance(0.1)
    after = pick_arm.task_state()
    np.testing.assert_allclose(after["cube_pos"], before, atol=1e-3)
    np.testing.assert_allclose(after["cube_vel"], 0.0, atol=1e-3)
