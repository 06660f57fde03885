"""Scripted solutions of the sim tasks, from ground truth and the analytic IK.

They prove the tasks are solvable (the gripper holds the cube, the cube can be pushed onto
the target) and are a starting point for a simulated operator. A script is a list of
:class:`Waypoint` s: tool poses reached by interpolating joint targets at the control rate.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from hilrl.core import Robot
from hilrl.kinematics import KinematicChain
from hilrl.robots.sim.mjcf import CUBE_HALF, FINGER_HALF, GRIPPER_MAX_GAP

APPROACH_HEIGHT = 0.07
"""pick: how far above the cube centre the tool pauses before descending."""
GRASP_HEIGHT = 0.003
"""pick: tool point above the cube centre when closing (finger tips just clear the table)."""
LIFT_Z = 0.09
"""pick: tool height after lifting (the cube's bottom ends ~6 cm above the table)."""
LIFT_RADIUS = 0.16
"""pick: the lift pulls the tool in to at most this distance from the base (stays in reach)."""
PUSH_Z = 0.022
"""push: tool height while pushing (finger tips ~1 cm above the table)."""
PUSH_BACKOFF = 0.045
"""push: the tool starts this far behind the cube centre, against the push direction."""
PUSH_REACH = CUBE_HALF + FINGER_HALF[0]
"""push: cube centre ahead of the tool point while pushing (cube half + finger half width)."""


@dataclass(frozen=True)
class Waypoint:
    """Reach ``pose`` with gripper opening ``gap`` over ``ticks`` control ticks."""

    pose: np.ndarray
    """(4, 4) tool pose in the base frame."""
    gap: float
    """Gripper opening target in metres."""
    ticks: int
    """Control ticks spent interpolating (in joint space) to the pose."""


def top_down_pose(pos: Sequence[float] | np.ndarray, yaw: float) -> np.ndarray:
    """Tool at ``pos`` pointing straight down; the fingers close along (-sin yaw, cos yaw, 0)."""
    c, s = math.cos(yaw), math.sin(yaw)
    pose = np.eye(4)
    pose[:3, :3] = np.array([[-c, -s, 0.0], [-s, c, 0.0], [0.0, 0.0, -1.0]])  # Rz(yaw) Ry(pi)
    pose[:3, 3] = pos
    return pose


def cube_grasp_yaw(quat: Sequence[float] | np.ndarray) -> float:
    """The cube's yaw folded into [-pi/4, pi/4): a cube looks the same every quarter turn."""
    w, x, y, z = (float(v) for v in quat)
    yaw = math.atan2(2 * (w * z + x * y), 1 - 2 * (y * y + z * z))
    return (yaw + math.pi / 4) % (math.pi / 2) - math.pi / 4


def pick_waypoints(state: Mapping[str, np.ndarray]) -> list[Waypoint]:
    """Above the cube, straight down, close, lift (from :meth:`SimArm.task_state`)."""
    cube = np.asarray(state["cube_pos"], dtype=float)
    yaw = cube_grasp_yaw(state["cube_quat"])
    radius = float(np.linalg.norm(cube[:2]))
    lift_xy = cube[:2] * min(1.0, LIFT_RADIUS / max(radius, 1e-9))
    above = top_down_pose(cube + np.array([0.0, 0.0, APPROACH_HEIGHT]), yaw)
    grasp = top_down_pose(cube + np.array([0.0, 0.0, GRASP_HEIGHT]), yaw)
    lifted = top_down_pose(np.r_[lift_xy, LIFT_Z], yaw)
    return [
        Waypoint(above, GRIPPER_MAX_GAP, 5),
        Waypoint(grasp, GRIPPER_MAX_GAP, 4),
        Waypoint(grasp, 0.0, 4),
        Waypoint(lifted, 0.0, 5),
        Waypoint(lifted, 0.0, 3),
    ]


def push_waypoints(state: Mapping[str, np.ndarray], step: float = 0.01) -> list[Waypoint]:
    """Closed gripper behind the cube, then sweep it onto the target in ``step``-metre moves."""
    cube = np.asarray(state["cube_pos"], dtype=float)
    offset = (np.asarray(state["target_pos"], dtype=float) - cube)[:2]
    distance = float(np.linalg.norm(offset))
    direction = offset / max(distance, 1e-9)
    # Fingers side by side across the push direction; yaw folded into the wrist roll range.
    yaw = (math.atan2(direction[1], direction[0]) + math.pi / 2) % math.pi - math.pi / 2
    behind = cube[:2] - PUSH_BACKOFF * direction
    end = cube[:2] + offset - PUSH_REACH * direction  # the cube centre ends on the target
    points = [
        Waypoint(top_down_pose(np.r_[behind, 2 * PUSH_Z], yaw), 0.0, 5),
        Waypoint(top_down_pose(np.r_[behind, PUSH_Z], yaw), 0.0, 3),
    ]
    steps = max(1, math.ceil(float(np.linalg.norm(end - behind)) / step))
    for k in range(1, steps + 1):
        xy = behind + (end - behind) * k / steps
        points.append(Waypoint(top_down_pose(np.r_[xy, PUSH_Z], yaw), 0.0, 1))
    points.append(Waypoint(points[-1].pose, 0.0, 3))
    return points


def run_waypoints(
    robot: Robot, chain: KinematicChain, waypoints: Sequence[Waypoint], dt: float = 0.1
) -> None:
    """Drive ``robot`` through ``waypoints``; the gripper must be its last joint.

    Raises RuntimeError when a pose is out of reach (the IK does not converge).
    """
    q = robot.read_joint_positions()[: chain.dof]
    for point in waypoints:
        result = chain.ik(point.pose, q)
        if not result.success:
            raise RuntimeError(
                f"scripted waypoint out of reach: position error {result.position_error:.4f} m, "
                f"rotation error {result.rotation_error:.4f} rad at {point.pose[:3, 3]}"
            )
        for k in range(1, point.ticks + 1):
            robot.send_joint_targets(np.r_[q + (result.q - q) * k / point.ticks, point.gap])
            robot.advance(dt)
        q = result.q
