"""When a simulated person takes the controls: watching the agent, and trusting it.

:class:`AgentMonitor` watches one turn of the agent (from an episode start or a hand-back)
against the expert's plan and names the reason to take over, if any:

* ``stall``: the tool barely moved, the gripper did not move and nothing got closer to
  done for ``stall_ticks`` ticks;
* ``corridor``: the tool strayed more than ``corridor_m`` from the straight path to the
  expert's next subgoal, for ``drift_ticks`` ticks in a row;
* ``regress``: the expert's progress potential (a detour-free distance to done) grew
  ``regress_m`` above its best of the turn, for ``drift_ticks`` ticks in a row (the agent
  undid work, e.g. pushed the cube away);
* ``drop``: a lifted cube left the fingers;
* ``edge``: the cube left the task's area (:meth:`TaskExpert.safe_area`): a little further
  and the expert could no longer get behind it; exempt from the budget;
* ``rescue``: the time left is about what the expert needs to finish.

:class:`TrustModel` is the person's confidence in the agent: it follows the agent's episode
outcomes and widens the thresholds, so a good agent gets fewer takeovers.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, replace

import numpy as np

from hilrl.config.operator import SimOperatorConfig
from hilrl.teleop.sim_operator_expert import REACHED_M, ExpertPlan, State, segment_distance

GRIPPER_STILL_M = 0.003
"""A gripper opening that changed less than this over the stall window counts as still."""
DROP_LIFT_M = 0.01
"""A cube whose bottom was higher than this above the table counts as lifted (for 'drop')."""
TAKEOVER_REASONS = ("stall", "corridor", "regress", "drop", "edge", "rescue")
"""Every reason :meth:`AgentMonitor.check` can give."""


@dataclass(frozen=True)
class Thresholds:
    """The limits a turn is held to (the config's, widened by trust)."""

    stall_ticks: int
    stall_distance_m: float
    corridor_m: float
    drift_ticks: int
    regress_m: float

    @classmethod
    def from_config(cls, cfg: SimOperatorConfig) -> Thresholds:
        return cls(
            cfg.stall_ticks, cfg.stall_distance_m, cfg.corridor_m, cfg.drift_ticks, cfg.regress_m
        )

    def scaled(self, factor: float) -> Thresholds:
        """Every limit ``factor`` times more lenient (tick counts rounded)."""
        return replace(
            self,
            stall_ticks=max(1, round(self.stall_ticks * factor)),
            corridor_m=self.corridor_m * factor,
            drift_ticks=max(1, round(self.drift_ticks * factor)),
            regress_m=self.regress_m * factor,
        )


class TrustModel:
    """Trust in [0, 1] that follows episode outcomes (an exponential average)."""

    def __init__(self, initial: float = 0.0, rate: float = 0.2, slack: float = 1.0) -> None:
        if not (0.0 <= initial <= 1.0 and 0.0 <= rate <= 1.0 and slack >= 0.0):
            raise ValueError(
                f"trust needs initial, rate in [0, 1] and slack >= 0, got {initial}, {rate}, {slack}"
            )
        self.trust = float(initial)
        self.rate = float(rate)
        self.slack = float(slack)

    def update(self, outcome: float) -> None:
        """Move trust towards ``outcome`` (1: the agent succeeded on its own; 0: it needed help)."""
        outcome = min(1.0, max(0.0, float(outcome)))
        self.trust += self.rate * (outcome - self.trust)

    @property
    def factor(self) -> float:
        """How much more lenient than the configured thresholds the person is now."""
        return 1.0 + self.slack * self.trust


def _first_subgoal(plan: ExpertPlan, ee: np.ndarray) -> tuple[int, np.ndarray]:
    """Index and position of the plan's first subgoal not yet reached (as plan_action skips)."""
    i = 0
    while i < len(plan.subgoals) - 1 and float(np.linalg.norm(plan.subgoals[i] - ee)) < REACHED_M:
        i += 1
    return i, plan.subgoals[i]


def cube_in_area(state: State, area: tuple[np.ndarray, np.ndarray], inset: float = 0.0) -> bool:
    """True when the cube centre is inside ``area`` shrunk by ``inset`` (or there is no cube)."""
    if "cube_pos" not in state:
        return True
    xy = np.asarray(state["cube_pos"])[:2]
    return bool(np.all(xy >= area[0] + inset) and np.all(xy <= area[1] - inset))


class AgentMonitor:
    """Judges the agent's ticks against the expert's plan; see the module docstring."""

    def __init__(self) -> None:
        self._anchor = np.zeros(3)
        self._leg: tuple[str, int] = ("", 0)
        self._best_cost = float("inf")
        self._drift = 0
        self._window: deque[tuple[np.ndarray, float, float]] = deque()
        self._held_lifted = False
        self.last_corridor_m = 0.0
        """Distance of the tool from the corridor at the last check (for metrics and tests)."""

    def start_turn(self, state: State, plan: ExpertPlan) -> None:
        """The agent has the controls from this state on."""
        ee = np.asarray(state["ee_pos"], dtype=np.float64)
        self._anchor = ee.copy()
        self._leg = (plan.phase, _first_subgoal(plan, ee)[0])
        self._best_cost = plan.potential
        self._drift = 0
        self._window.clear()
        self._held_lifted = self._is_held_lifted(state)

    @staticmethod
    def _is_held_lifted(state: State) -> bool:
        if "cube_grasped" not in state or "cube_lift" not in state:
            return False
        return bool(state["cube_grasped"][0] > 0.5 and state["cube_lift"][0] > DROP_LIFT_M)

    def check(
        self,
        state: State,
        plan: ExpertPlan,
        limits: Thresholds,
        *,
        ticks_left: int | None = None,
        eta_ticks: float = 0.0,
        rescue_margin: float = 1.5,
        rescue_reserve: int = 10,
        corrective: bool = True,
        safe_area: tuple[np.ndarray, np.ndarray] | None = None,
    ) -> str | None:
        """The reason to take over after the agent's last tick, or None.

        ``corrective`` False (budget spent) allows only 'rescue' and 'edge'. ``safe_area``
        is the (low, high) horizontal box the cube should stay in. Call once per tick of
        the agent's turn, after :meth:`start_turn`.
        """
        ee = np.asarray(state["ee_pos"], dtype=np.float64)
        cost = plan.potential
        index, subgoal = _first_subgoal(plan, ee)
        leg = (plan.phase, index)
        if leg != self._leg:  # a new leg of the path starts where the tool is
            self._leg = leg
            self._anchor = ee.copy()
        self.last_corridor_m = segment_distance(ee, self._anchor, subgoal)
        opening = float(state["gripper_opening"][0]) if "gripper_opening" in state else 0.0
        self._window.append((ee, opening, cost))
        while len(self._window) > limits.stall_ticks + 1:
            self._window.popleft()
        held_before, self._held_lifted = self._held_lifted, self._is_held_lifted(state)
        dropped = held_before and "cube_grasped" in state and state["cube_grasped"][0] < 0.5
        regressing = cost > self._best_cost + limits.regress_m
        outside = self.last_corridor_m > limits.corridor_m
        self._best_cost = min(self._best_cost, cost)
        self._drift = self._drift + 1 if (outside or regressing) else 0

        if ticks_left is not None and ticks_left <= rescue_margin * eta_ticks + rescue_reserve:
            return "rescue"
        if safe_area is not None and not cube_in_area(state, safe_area):
            return "edge"
        if not corrective:
            return None
        if dropped:
            return "drop"
        if self._drift >= limits.drift_ticks:
            return "corridor" if outside else "regress"
        if self._stalled(limits):
            return "stall"
        return None

    def _stalled(self, limits: Thresholds) -> bool:
        if len(self._window) <= limits.stall_ticks:
            return False
        ee0, _, cost0 = self._window[0]
        travel = max(float(np.linalg.norm(ee - ee0)) for ee, _, _ in self._window)
        openings = [g for _, g, _ in self._window]
        gripper_moved = max(openings) - min(openings) >= GRIPPER_STILL_M
        progressed = cost0 - self._window[-1][2] >= limits.stall_distance_m
        return travel < limits.stall_distance_m and not gripper_moved and not progressed
