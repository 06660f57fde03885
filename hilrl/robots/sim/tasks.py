"""Where the sim tasks put their objects, and when they count as solved.

Pure numpy, no MuJoCo: :class:`~hilrl.robots.sim.arm.SimArm` samples a layout at every
reset and asks these functions for ground-truth success. All positions are in the robot's
base frame (the table top is z = 0, the arm stands at the origin facing +x).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from hilrl.robots.sim.mjcf import CUBE_HALF

CUBE_X_RANGE = (0.12, 0.2)
"""Where a randomised cube centre may land along x (within comfortable top-down reach)."""
CUBE_Y_RANGE = (-0.07, 0.07)
"""Where a randomised cube centre may land along y."""
CUBE_YAW_RANGE = (-math.pi / 4, math.pi / 4)
"""Cube yaw range; a cube looks the same every quarter turn."""
PUSH_CUBE_X_RANGE = (0.13, 0.18)
"""push_cube: where the cube starts along x, leaving room to reach behind it in any direction."""
PUSH_CUBE_Y_RANGE = (-0.06, 0.06)
"""push_cube: where the cube starts along y."""
TARGET_X_RANGE = (0.12, 0.2)
"""Where a push target may lie along x."""
TARGET_Y_RANGE = (-0.08, 0.08)
"""Where a push target may lie along y."""
PUSH_DISTANCE_RANGE = (0.06, 0.1)
"""How far the target starts from the cube (centre to centre)."""
LIFT_HEIGHT = 0.05
"""pick_cube: the cube's bottom must be at least this high above the table."""
PUSH_TOLERANCE = 0.025
"""push_cube: the cube centre must be within this horizontal distance of the target centre."""

NOMINAL_PICK_CUBE = (0.17, 0.0)
NOMINAL_PUSH_CUBE = (0.16, -0.04)
NOMINAL_PUSH_TARGET = (0.16, 0.05)


@dataclass(frozen=True)
class TaskLayout:
    """Initial object poses of one episode."""

    cube_pos: np.ndarray
    """(3,) cube centre, resting on the table."""
    cube_yaw: float
    """Cube rotation about z in radians."""
    target_pos: np.ndarray | None
    """(3,) push target centre on the table (None for pick_cube)."""


def _on_table(xy: tuple[float, float] | np.ndarray, z: float) -> np.ndarray:
    return np.array([float(xy[0]), float(xy[1]), z])


def _sample_push_target(cube_xy: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A target at a random direction and distance from the cube, inside the target area."""
    for _ in range(200):
        angle = rng.uniform(-math.pi, math.pi)
        dist = rng.uniform(*PUSH_DISTANCE_RANGE)
        xy = cube_xy + dist * np.array([math.cos(angle), math.sin(angle)])
        if (
            TARGET_X_RANGE[0] <= xy[0] <= TARGET_X_RANGE[1]
            and TARGET_Y_RANGE[0] <= xy[1] <= TARGET_Y_RANGE[1]
        ):
            return xy
    # Unreachable in practice (the areas overlap widely); keep the nominal offset.
    return cube_xy + np.subtract(NOMINAL_PUSH_TARGET, NOMINAL_PUSH_CUBE)


def sample_layout(task: str, rng: np.random.Generator, randomize: bool) -> TaskLayout:
    """The cube (and target) poses for a reset: uniform in the workspace, or nominal."""
    if task not in ("pick_cube", "push_cube"):
        raise ValueError(f"unknown sim task {task!r}")
    if not randomize:
        if task == "pick_cube":
            return TaskLayout(_on_table(NOMINAL_PICK_CUBE, CUBE_HALF), 0.0, None)
        return TaskLayout(
            _on_table(NOMINAL_PUSH_CUBE, CUBE_HALF), 0.0, _on_table(NOMINAL_PUSH_TARGET, 0.0)
        )
    if task == "pick_cube":
        cube_xy = np.array([rng.uniform(*CUBE_X_RANGE), rng.uniform(*CUBE_Y_RANGE)])
        yaw = float(rng.uniform(*CUBE_YAW_RANGE))
        return TaskLayout(_on_table(cube_xy, CUBE_HALF), yaw, None)
    cube_xy = np.array([rng.uniform(*PUSH_CUBE_X_RANGE), rng.uniform(*PUSH_CUBE_Y_RANGE)])
    yaw = float(rng.uniform(*CUBE_YAW_RANGE))
    target = _on_table(_sample_push_target(cube_xy, rng), 0.0)
    return TaskLayout(_on_table(cube_xy, CUBE_HALF), yaw, target)


def yaw_quat(yaw: float) -> np.ndarray:
    """Quaternion (w, x, y, z) of a rotation by ``yaw`` about z."""
    return np.array([math.cos(yaw / 2), 0.0, 0.0, math.sin(yaw / 2)])


def pick_succeeded(cube_pos: np.ndarray, left_touch: bool, right_touch: bool) -> bool:
    """The cube is held: both fingers touch it and its bottom is >= LIFT_HEIGHT above the table."""
    lifted = float(cube_pos[2]) - CUBE_HALF >= LIFT_HEIGHT
    return bool(lifted and left_touch and right_touch)


def push_succeeded(cube_pos: np.ndarray, target_pos: np.ndarray) -> bool:
    """The cube rests on the table with its centre within PUSH_TOLERANCE of the target centre."""
    horizontal = float(np.linalg.norm(np.asarray(cube_pos[:2]) - np.asarray(target_pos[:2])))
    resting = float(cube_pos[2]) < CUBE_HALF + 0.01
    return bool(horizontal <= PUSH_TOLERANCE and resting)
