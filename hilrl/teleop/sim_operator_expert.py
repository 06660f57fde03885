"""Scripted experts for the sim tasks, acting in the env's end-effector delta action space.

An expert reads the sim's ground truth (:meth:`hilrl.core.SimTask.task_state`) and returns
an :class:`ExpertPlan`: the phase it is in, the tool positions it still has to pass
through, and the gripper command. The plan is recomputed from the state at every tick
(the experts are reactive, no hidden phase counter), so the operator can take over from
whatever state the agent left behind: gripper closed, cube knocked aside, tool below the
table edge of the cube. :func:`plan_action` turns a plan into an action in [-1, 1].

The plan also serves the intervention policy: its subgoal chain is the corridor the
agent should follow, its ``potential`` (a detour-free distance to done) measures
progress, and its path length (the cost-to-go) tells how long the expert would need.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np

from hilrl.config.env import EnvConfig
from hilrl.config.loader import ConfigError
from hilrl.kinematics import rotvec_from_matrix
from hilrl.robots.sim.mjcf import CUBE_HALF, FINGER_HALF
from hilrl.robots.sim.scripted import (
    APPROACH_HEIGHT,
    GRASP_HEIGHT,
    LIFT_RADIUS,
    LIFT_Z,
    PUSH_REACH,
    PUSH_Z,
    cube_grasp_yaw,
    top_down_pose,
)
from hilrl.robots.sim.tasks import (
    CUBE_X_RANGE,
    CUBE_Y_RANGE,
    LIFT_HEIGHT,
    PUSH_CUBE_X_RANGE,
    PUSH_CUBE_Y_RANGE,
    PUSH_TOLERANCE,
    TARGET_X_RANGE,
    TARGET_Y_RANGE,
)

State = Mapping[str, np.ndarray]
"""A :meth:`SimTask.task_state` dict (ground truth in the robot's base frame)."""

COLUMN_XY_TOL = 0.006
"""pick: the tool is in the cube's column (may close at grasp height) within this horizontal error."""
RECENTER_XY_TOL = 0.012
"""pick: below the approach height and this close horizontally, the tool re-centres on the way
down instead of rising again (open fingers still clear the cube)."""
GRASP_Z_TOL = 0.004
"""pick: the tool is at grasp height within this vertical error."""
ABOVE_Z_TOL = 0.01
"""pick: how far above the approach height the tool may be and still count as in the column."""
OPEN_ENOUGH = 2 * CUBE_HALF + 0.015
"""pick: the fingers are open enough to descend around the cube (metres between the pads)."""
MISSED_GAP = 2 * CUBE_HALF - 0.006
"""pick: a gripper closed tighter than this holds nothing."""
PUSH_HIGH_Z = 0.06
"""push: travel height when the tool has to pass over or around the cube."""
PUSH_PRE = 0.02
"""push: the tool lines up this far behind its pushing spot before moving in."""
PUSH_CLEARANCE = CUBE_HALF * math.sqrt(2) + FINGER_HALF[0] + 0.004
"""push: a low tool path must stay this far from the cube centre (cube corner + finger)."""
LANE_LATERAL_TOL = 0.015
"""push: lateral error from the push line within which the tool keeps pushing."""
LANE_Z_TOL = 0.01
"""push: the tool pushes only within this height of PUSH_Z."""
SLOPPY_OFFSET_M = 0.005
"""Largest horizontal target offset at sloppiness 1 (see SimOperatorConfig.sloppiness)."""
DETOUR_PUSH_M = 0.03
"""push: how far the expert pushes an edge cube inwards before re-aiming at the target."""
DETOUR_TURNS = tuple(
    sign * math.radians(deg)
    for deg in range(0, 181, 15)
    for sign in ((1.0,) if deg in (0, 180) else (1.0, -1.0))
)
"""push: push directions tried, as turns from the target direction, nearest first."""
REACH_INSET_M = 0.003
"""push: the tool's lining-up point must lie this far inside the reachable box."""
SAFE_AREA_MARGIN_M = 0.01
"""How far beyond the area where the task puts its objects the cube may stray unattended."""
REACHED_M = 0.004
"""A subgoal closer than this is skipped in favour of the next one."""
CLOSE_TICKS = 4
"""Ticks the expert budgets for closing (or opening) the gripper, for its time estimate."""


@dataclass(frozen=True)
class ActionLayout:
    """Where each component of the env's action lives, and what +-1 means in metres / radians."""

    step_m: np.ndarray
    """(3,) metres moved along x, y, z per step at action +-1."""
    rotation: bool = False
    """Three rotation components (about the base axes) follow the position ones."""
    step_rad: float = 0.1
    """Radians turned per step at rotation action +-1."""
    gripper: bool = True
    """The last component commands the gripper (-1 close, +1 open)."""

    @property
    def dim(self) -> int:
        return 3 + 3 * int(self.rotation) + int(self.gripper)

    @classmethod
    def from_env_config(cls, cfg: EnvConfig) -> ActionLayout:
        """The layout of ``make_env(cfg)``'s action; only end-effector delta control fits."""
        if cfg.action.control_mode != "ee_delta":
            raise ConfigError(
                "env.action.control_mode",
                cfg.action.control_mode,
                "the simulated operator acts in end-effector deltas; use 'ee_delta'",
            )
        return cls(
            step_m=np.asarray(cfg.action.ee_step_m, dtype=np.float64),
            rotation=cfg.action.ee_rotation,
            step_rad=cfg.action.ee_step_rad,
            gripper=cfg.action.use_gripper,
        )


@dataclass(frozen=True)
class ExpertPlan:
    """What an expert intends from one state."""

    phase: str
    """pick: 'approach', 'descend', 'close', 'lift'; push: 'align', 'push'."""
    subgoals: tuple[np.ndarray, ...]
    """Tool positions (base frame) still to pass through, in order; never empty."""
    gripper: float
    """Gripper command: -1 close, +1 open."""
    yaw: float | None = None
    """Wanted tool yaw (radians, top-down convention of scripted.top_down_pose), None: keep."""
    hold: bool = False
    """Stay put this tick (waiting for the gripper)."""
    extra_ticks: float = 0.0
    """Ticks the remaining gripper actions will take, on top of the travel."""
    potential: float = 0.0
    """Detour-free distance to done (metres): falls as the task progresses, whatever the route."""

    def cost_to_go(self, ee_pos: np.ndarray) -> float:
        """Length of the tool path left: from ``ee_pos`` through every subgoal (metres)."""
        total = 0.0
        prev = np.asarray(ee_pos, dtype=np.float64)
        for goal in self.subgoals:
            total += float(np.linalg.norm(goal - prev))
            prev = goal
        return total

    def eta_ticks(self, ee_pos: np.ndarray, step_m: np.ndarray) -> float:
        """Ticks the expert needs to finish from here (travel at the smallest step, plus gripper)."""
        return self.cost_to_go(ee_pos) / float(np.min(step_m)) + self.extra_ticks


class TaskExpert(Protocol):
    """A reactive expert for one sim task."""

    def plan(self, state: State, offset: np.ndarray) -> ExpertPlan:
        """The plan from ``state``; ``offset`` (2,) shifts the expert's targets horizontally."""
        ...

    def near_success(self, state: State) -> bool:
        """True when one more good step may solve the task (no failure label then)."""
        ...

    def safe_area(self) -> tuple[np.ndarray, np.ndarray]:
        """(low, high) horizontal box the cube centre should stay in to remain solvable."""
        ...


def _tool_yaw(ee_mat: np.ndarray) -> float:
    """Yaw of a tool frame in the top-down convention of ``scripted.top_down_pose``."""
    return math.atan2(-float(ee_mat[1, 0]), float(ee_mat[1, 1]))


def _nearest_equivalent(yaw: float, reference: float, period: float) -> float:
    """``yaw + k * period`` closest to ``reference``."""
    return yaw + period * round((reference - yaw) / period)


@dataclass
class PickExpert:
    """Above the cube, straight down with the fingers open, close, lift."""

    def plan(self, state: State, offset: np.ndarray) -> ExpertPlan:
        cube = np.asarray(state["cube_pos"], dtype=np.float64)
        ee = np.asarray(state["ee_pos"], dtype=np.float64)
        opening = float(state["gripper_opening"][0])
        grasped = bool(state["cube_grasped"][0] > 0.5)
        radius = float(np.linalg.norm(cube[:2]))
        lift = np.r_[cube[:2] * min(1.0, LIFT_RADIUS / max(radius, 1e-9)), LIFT_Z]
        yaw = None
        if "ee_mat" in state:
            current = _tool_yaw(np.asarray(state["ee_mat"]))
            yaw = _nearest_equivalent(cube_grasp_yaw(state["cube_quat"]), current, math.pi / 2)
        if grasped:
            return ExpertPlan("lift", (lift,), -1.0, yaw, potential=_dist(ee, lift))
        grasp = np.r_[cube[:2] + offset, cube[2] + GRASP_HEIGHT]
        potential = _dist(ee, grasp) + _dist(grasp, lift)
        above = np.r_[grasp[:2], cube[2] + APPROACH_HEIGHT]
        xy_error = float(np.linalg.norm(ee[:2] - grasp[:2]))
        if xy_error < RECENTER_XY_TOL and ee[2] <= above[2] + ABOVE_Z_TOL:
            at_grasp = ee[2] - grasp[2] < GRASP_Z_TOL and xy_error < COLUMN_XY_TOL
            if at_grasp and opening > MISSED_GAP:
                return ExpertPlan("close", (grasp, lift), -1.0, yaw, True, 2.0, potential)
            # Closed on nothing (at grasp height) or not open enough: open before moving on.
            wait = at_grasp or opening < OPEN_ENOUGH
            return ExpertPlan("descend", (grasp, lift), 1.0, yaw, wait, CLOSE_TICKS, potential)
        cube_top = cube[2] + CUBE_HALF
        far = float(np.linalg.norm(ee[:2] - cube[:2])) > COLUMN_XY_TOL + CUBE_HALF
        goals: tuple[np.ndarray, ...] = (above, grasp, lift)
        if far and ee[2] < cube_top + 0.025:  # low beside the cube: rise before moving over
            goals = (np.r_[ee[:2], above[2]], *goals)
        return ExpertPlan("approach", goals, 1.0, yaw, extra_ticks=CLOSE_TICKS, potential=potential)

    def near_success(self, state: State) -> bool:
        grasped = bool(state["cube_grasped"][0] > 0.5)
        return grasped and float(state["cube_lift"][0]) >= LIFT_HEIGHT - 0.025

    def safe_area(self) -> tuple[np.ndarray, np.ndarray]:
        return _area((CUBE_X_RANGE,), (CUBE_Y_RANGE,))


def _area(
    x_ranges: tuple[tuple[float, float], ...], y_ranges: tuple[tuple[float, float], ...]
) -> tuple[np.ndarray, np.ndarray]:
    """The box spanning every range, grown by SAFE_AREA_MARGIN_M."""
    low = np.array([min(r[0] for r in x_ranges), min(r[0] for r in y_ranges)])
    high = np.array([max(r[1] for r in x_ranges), max(r[1] for r in y_ranges)])
    return low - SAFE_AREA_MARGIN_M, high + SAFE_AREA_MARGIN_M


def _dist(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.linalg.norm(a - b))


def segment_distance(point: np.ndarray, a: np.ndarray, b: np.ndarray) -> float:
    """Distance from ``point`` to the segment ``a``-``b`` (any dimension)."""
    ab = b - a
    denom = float(ab @ ab)
    t = 0.0 if denom < 1e-12 else min(1.0, max(0.0, float((point - a) @ ab) / denom))
    return float(np.linalg.norm(point - (a + t * ab)))


@dataclass
class PushExpert:
    """Closed gripper behind the cube on the cube-target line, then push along it."""

    step_m: np.ndarray = field(default_factory=lambda: np.full(3, 0.02))
    """The env's step sizes: the push lead is one step ahead of the pushing spot."""
    reach: tuple[np.ndarray, np.ndarray] | None = None
    """(low, high) horizontal box the tool can reach (the env's workspace); None: anywhere."""

    def plan(self, state: State, offset: np.ndarray) -> ExpertPlan:
        cube = np.asarray(state["cube_pos"], dtype=np.float64)
        ee = np.asarray(state["ee_pos"], dtype=np.float64)
        target = np.asarray(state["target_pos"], dtype=np.float64)
        aim = target[:2] + offset
        to_aim = aim - cube[:2]
        distance = float(np.linalg.norm(to_aim))
        target_distance = distance
        d = to_aim / max(distance, 1e-9)
        feasible = self._feasible_direction(cube[:2], d)
        if feasible is not d:  # cannot get behind the cube: first push it inwards a little
            d = feasible
            distance = min(distance, DETOUR_PUSH_M)
            aim = cube[:2] + distance * d
        spot = cube[:2] - PUSH_REACH * d
        end = np.r_[aim - PUSH_REACH * d, PUSH_Z]
        yaw = _tool_yaw(np.asarray(state["ee_mat"])) if "ee_mat" in state else None
        rel = ee[:2] - cube[:2]
        along = float(rel @ d)
        lateral = float(np.linalg.norm(rel - along * d))
        in_lane = (
            -(PUSH_REACH + PUSH_PRE + 0.01) < along < -(PUSH_REACH - 0.008)
            and lateral < LANE_LATERAL_TOL
            and abs(ee[2] - PUSH_Z) < LANE_Z_TOL
        )
        # Height does not count: lifting the tool over the cube is a detour, not a regress.
        potential = _dist(ee[:2], spot) + target_distance
        if in_lane:
            speed = min(1.0, distance / 0.02 + 0.2)
            lead = np.r_[spot + d * speed * float(np.min(self.step_m)), PUSH_Z]
            return ExpertPlan("push", (lead, end), -1.0, yaw, potential=potential)
        pre = np.r_[cube[:2] - (PUSH_REACH + PUSH_PRE) * d, PUSH_Z]
        # A low move is fine if it never brings the tool closer to the cube than the
        # clearance (or than it already is, when it starts out touching the cube).
        gap_now = _dist(ee[:2], cube[:2]) - 0.002
        path_gap = segment_distance(cube[:2], ee[:2], pre[:2])
        low_path_clear = path_gap >= min(PUSH_CLEARANCE, gap_now)
        goals: tuple[np.ndarray, ...] = (pre, np.r_[spot, PUSH_Z], end)
        if not low_path_clear:
            over = np.r_[pre[:2], PUSH_HIGH_Z]
            goals = (over, *goals)
            if ee[2] < PUSH_HIGH_Z - 0.015:
                goals = (np.r_[ee[:2], PUSH_HIGH_Z], *goals)
        return ExpertPlan("align", goals, -1.0, yaw, potential=potential)

    def _feasible_direction(self, cube_xy: np.ndarray, d: np.ndarray) -> np.ndarray:
        """``d`` if the tool can line up behind the cube for it, else the nearest direction it can.

        Returns ``d`` itself (same object) when it is feasible or nothing is.
        """
        if self.reach is None:
            return d
        low, high = self.reach[0] + REACH_INSET_M, self.reach[1] - REACH_INSET_M
        back = PUSH_REACH + PUSH_PRE
        base = math.atan2(float(d[1]), float(d[0]))
        for turn in DETOUR_TURNS:
            angle = base + turn
            cand = np.array([math.cos(angle), math.sin(angle)])
            pre = cube_xy - back * cand
            if np.all(pre >= low) and np.all(pre <= high):
                return d if turn == 0.0 else cand
        return d

    def near_success(self, state: State) -> bool:
        cube = np.asarray(state["cube_pos"])
        target = np.asarray(state["target_pos"])
        return float(np.linalg.norm(cube[:2] - target[:2])) < PUSH_TOLERANCE + 0.025

    def safe_area(self) -> tuple[np.ndarray, np.ndarray]:
        return _area((PUSH_CUBE_X_RANGE, TARGET_X_RANGE), (PUSH_CUBE_Y_RANGE, TARGET_Y_RANGE))


def make_task_expert(
    task: str, layout: ActionLayout, workspace: tuple[np.ndarray, np.ndarray] | None = None
) -> TaskExpert:
    """The expert of sim task ``task`` ('pick_cube' or 'push_cube').

    ``workspace`` is the env's (low, high) end-effector box: the push expert then pushes
    a cube lying near its edge inwards first, from a side it can reach.
    """
    if task == "pick_cube":
        if not layout.gripper:
            raise ConfigError(
                "env.action.use_gripper", False, "the pick_cube expert needs the gripper"
            )
        return PickExpert()
    if task == "push_cube":
        reach = None
        if workspace is not None:
            reach = (np.asarray(workspace[0])[:2], np.asarray(workspace[1])[:2])
        return PushExpert(step_m=layout.step_m, reach=reach)
    raise ConfigError("env.robot.task", task, "no scripted expert for this task")


def plan_action(
    plan: ExpertPlan, state: State, layout: ActionLayout, gain: float = 1.0
) -> np.ndarray:
    """The action in [-1, 1] that moves the tool straight towards the plan's next subgoal.

    The position part is ``gain * error / step``, scaled down as a whole (direction kept)
    so no component exceeds 1: the tool travels in straight lines, which is what the
    corridor check expects. Reached subgoals are skipped.
    """
    ee = np.asarray(state["ee_pos"], dtype=np.float64)
    goals = list(plan.subgoals)
    while len(goals) > 1 and float(np.linalg.norm(goals[0] - ee)) < REACHED_M:
        goals.pop(0)
    move = np.zeros(3) if plan.hold else gain * (goals[0] - ee) / layout.step_m
    peak = float(np.max(np.abs(move)))
    if peak > 1.0:
        move /= peak
    parts = [move]
    if layout.rotation:
        parts.append(_rotation_action(plan, state, layout.step_rad, gain))
    if layout.gripper:
        parts.append(np.array([plan.gripper]))
    return np.clip(np.concatenate(parts), -1.0, 1.0).astype(np.float32)


def _rotation_action(plan: ExpertPlan, state: State, step_rad: float, gain: float) -> np.ndarray:
    """Turn the tool towards pointing straight down at the plan's yaw (base-axis rotation vector)."""
    if "ee_mat" not in state:
        return np.zeros(3)
    current = np.asarray(state["ee_mat"], dtype=np.float64)
    yaw = plan.yaw if plan.yaw is not None else _tool_yaw(current)
    wanted = top_down_pose(np.zeros(3), yaw)[:3, :3]
    turn = gain * rotvec_from_matrix(wanted @ current.T) / step_rad
    peak = float(np.max(np.abs(turn)))
    return turn / peak if peak > 1.0 else turn
