"""Scripted manipulation (analytic IK, 10 Hz joint targets) solves both sim tasks.

A top-down grasp picks the cube up: this proves the gripper holds it. A closed-gripper
sweep pushes it onto the target.
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest

from hilrl.config.robot import RobotConfig
from hilrl.kinematics import SIM_ARM, KinematicChain, rotation_angle_between
from hilrl.robots.sim import SimArm
from hilrl.robots.sim.mjcf import GRIPPER_MAX_GAP
from hilrl.robots.sim.scripted import (
    Waypoint,
    cube_grasp_yaw,
    pick_waypoints,
    push_waypoints,
    run_waypoints,
    top_down_pose,
)

CHAIN = KinematicChain(SIM_ARM)


def hold(arm: SimArm, gap: float, ticks: int) -> None:
    q = arm.read_joint_positions()
    for _ in range(ticks):
        arm.send_joint_targets(np.r_[q[:-1], gap])
        arm.advance(0.1)


@pytest.fixture(scope="module")
def arm() -> SimArm:
    robot = SimArm(RobotConfig(task="pick_cube", cameras=()))
    robot.connect()
    return robot


def test_top_down_pose_points_down_with_fingers_across_yaw() -> None:
    pose = top_down_pose((0.1, 0.2, 0.3), 0.4)
    np.testing.assert_allclose(pose[:3, 2], (0.0, 0.0, -1.0), atol=1e-12)
    np.testing.assert_allclose(pose[:3, 1], (-math.sin(0.4), math.cos(0.4), 0.0), atol=1e-12)
    assert np.linalg.det(pose[:3, :3]) == pytest.approx(1.0)
    yawed = (math.cos(0.6), 0.0, 0.0, math.sin(0.6))  # yaw 1.2: a quarter turn from -0.37
    assert cube_grasp_yaw(yawed) == pytest.approx(1.2 - math.pi / 2)
    assert cube_grasp_yaw((math.cos(0.2), 0.0, 0.0, math.sin(0.2))) == pytest.approx(0.4)


@pytest.mark.parametrize("seed", [0, 1, 2, 3, 4, 5])
def test_scripted_grasp_lifts_the_cube(arm: SimArm, seed: int) -> None:
    arm.reset_task(seed)
    assert not arm.task_success()
    run_waypoints(arm, CHAIN, pick_waypoints(arm.task_state()))
    state = arm.task_state()
    assert state["cube_grasped"][0] == 1.0
    assert 0.005 < state["gripper_opening"][0] < 0.04  # stopped by the cube, not shut
    assert abs(arm.read_joint_currents()[-1]) > 1.0  # the fingers squeeze
    assert arm.task_success()
    assert (
        rotation_angle_between(state["ee_mat"], CHAIN.fk(arm.read_joint_positions()[:5])[:3, :3])
        < 1e-6
    )
    hold(arm, 0.0, 10)  # still held a second later
    assert arm.task_success()
    hold(arm, GRIPPER_MAX_GAP, 10)  # opening drops the cube back onto the table
    assert not arm.task_success()
    assert arm.task_state()["cube_lift"][0] < 0.005


def test_held_cube_does_not_creep(arm: SimArm) -> None:
    """Soft contacts let a squeezed object slide slowly; 30 s of holding must keep it in place."""
    arm.reset_task(3)
    run_waypoints(arm, CHAIN, pick_waypoints(arm.task_state()))

    def cube_in_tool_frame() -> np.ndarray:
        state = arm.task_state()
        return np.asarray(state["ee_mat"].T @ (state["cube_pos"] - state["ee_pos"]))

    before = cube_in_tool_frame()
    q = arm.read_joint_positions()
    for k in range(300):  # 30 s, with the shoulder swaying a little
        arm.send_joint_targets(np.r_[q[0] + 0.03 * math.sin(0.3 * k), q[1:-1], 0.0])
        arm.advance(0.1)
    assert np.linalg.norm(cube_in_tool_frame() - before) < 3e-3
    assert arm.task_success()


def test_grasp_that_misses_fails(arm: SimArm) -> None:
    arm.reset_task(0)
    points = pick_waypoints(arm.task_state())
    high = points[0].pose  # close at the approach height instead of at the cube
    points = [
        points[0],
        Waypoint(high, 0.0, 4),
        *(dataclasses.replace(p, gap=0.0) for p in points[3:]),
    ]
    run_waypoints(arm, CHAIN, points)
    assert arm.task_state()["cube_grasped"][0] == 0.0
    assert not arm.task_success()


def test_unreachable_waypoint_raises(arm: SimArm) -> None:
    arm.reset_task(0)
    with pytest.raises(RuntimeError, match="out of reach"):
        run_waypoints(arm, CHAIN, [Waypoint(top_down_pose((0.6, 0.0, 0.1), 0.0), 0.0, 1)])


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_scripted_push_reaches_the_target(seed: int) -> None:
    arm = SimArm(RobotConfig(task="push_cube", cameras=()))
    arm.connect()
    arm.reset_task(seed)
    points = push_waypoints(arm.task_state())
    run_waypoints(arm, CHAIN, points[:2])  # behind the cube
    assert not arm.task_success()
    run_waypoints(arm, CHAIN, points[2:])
    assert arm.task_success()
