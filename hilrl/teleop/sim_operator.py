"""The simulated human operator: the default :class:`~hilrl.core.InputController` in simulation.

It stands in for the person at the keyboard of a HIL-SERL run. Every control tick
(:meth:`SimulatedOperator.poll`) it reads the sim's ground truth, and

* while the agent has the controls, asks :class:`~.sim_operator_monitor.AgentMonitor`
  whether to take over (stall, leaving the corridor, undoing work, dropping the cube,
  too little time left); corrective takeovers stop once the episode's budget is spent;
* while it has the controls, drives the scripted expert (:class:`~.sim_operator_skill.SkilledExpert`,
  with the configured noise and reaction delay) and hands back after ``takeover_steps``
  ticks, except in a rescue near the time limit, which it sees through to the end;
* labels the episode: a success event when the ground truth says solved, a failure event
  on the last tick of an episode that is not about to succeed. Events are latched and
  handed out by exactly one poll.

At each episode start (:meth:`reset`) it updates its trust in the agent from the episode
that ended; trust widens the takeover thresholds. Build it with :func:`make_sim_operator`
and pass it to ``make_env(env_cfg, robot=robot, controller=operator)``.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping

import numpy as np

from hilrl.config.env import EnvConfig
from hilrl.config.loader import ConfigError
from hilrl.config.operator import SimOperatorConfig
from hilrl.core import SimTask, TeleopCommand, TeleopEvents
from hilrl.teleop.sim_operator_expert import (
    SAFE_AREA_MARGIN_M,
    ActionLayout,
    ExpertPlan,
    State,
    TaskExpert,
    make_task_expert,
)
from hilrl.teleop.sim_operator_monitor import AgentMonitor, Thresholds, TrustModel, cube_in_area
from hilrl.teleop.sim_operator_skill import SkilledExpert
from hilrl.types import Observation

EVENT_NAMES = ("success", "failure", "rerecord", "pause", "quit")
LOST_CUBE_SPEED = 0.01
"""m/s: a cube slower than this has come to rest (a flung cube may still slide back)."""
LOST_TOLERANCE_M = 0.005
"""How far outside the workspace box a subgoal may lie before the cube counts as lost."""


class SimulatedOperator:
    """A scripted expert plus a person's judgement of when to use it (see the module docstring)."""

    def __init__(
        self,
        cfg: SimOperatorConfig,
        task: SimTask,
        expert: TaskExpert,
        layout: ActionLayout,
        max_episode_steps: int | None,
        workspace: tuple[np.ndarray, np.ndarray] | None = None,
    ) -> None:
        """``workspace``: the env's (low, high) end-effector box (to tell a lost cube)."""
        cfg.validate()
        if max_episode_steps is not None and max_episode_steps < 1:
            raise ValueError(f"max_episode_steps must be >= 1 or None, got {max_episode_steps}")
        self.cfg = cfg
        self.task = task
        self.expert = expert
        self.layout = layout
        self.max_episode_steps = max_episode_steps
        self.workspace = workspace
        self.rng = np.random.default_rng(cfg.seed)
        self.hands = SkilledExpert(
            expert,
            layout,
            noise_std=cfg.action_noise_std,
            delay_ticks=cfg.reaction_delay_ticks,
            sloppiness=cfg.sloppiness,
            gain=cfg.gain,
            rng=self.rng,
        )
        self.monitor = AgentMonitor()
        self.trust_model = TrustModel(cfg.initial_trust, cfg.trust_rate, cfg.trust_slack)
        self.base_limits = Thresholds.from_config(cfg)
        self.takeovers: Counter[str] = Counter()
        """Takeovers by reason, over the operator's lifetime."""
        self.episodes = 0
        """Episodes whose outcome updated the trust."""
        self._started = False
        self.watching = False
        """Evaluation: the operator only watches. It raises its events (a failure when the
        cube is lost or time runs out, as a person would press the key) but never takes
        over, and the episode does not change its trust (it is not a training episode)."""
        self._episode_watched = False
        # Per-episode state (set again by _new_episode at every reset).
        self.tick = 0
        """Polls since the episode started."""
        self.intervening = False
        """The operator has the controls."""
        self.rescuing = False
        """The current takeover is the rescue near the time limit (no hand-back)."""
        self.turn_steps = 0
        """Ticks of the current takeover so far."""
        self.episode_intervention_steps = 0
        self.episode_takeovers = 0
        self.last_reason: str | None = None
        """Why the latest takeover happened (see sim_operator_monitor.TAKEOVER_REASONS)."""
        self.failure_reason: str | None = None
        """'timeout' or 'lost' when this episode got a failure event."""
        self.success_seen = False
        self.agent_progress_m = 0.0
        """Net fall of the expert's potential during the agent's ticks (metres)."""
        self._initial_cost: float | None = None
        self._last_cost = 0.0
        self._last_state: State | None = None
        self._success_sent = False
        self._failure_sent = False
        self._reported: bool | None = None
        self._pending = TeleopEvents()
        self._new_episode()

    # ------------------------------------------------------------------ InputController
    def start(self) -> None:
        self._started = True

    def stop(self) -> None:
        self._started = False

    def reset(self) -> None:
        """Episode start: learn from the episode that ended (if any), then start afresh."""
        if self.tick > 0 and not self._episode_watched:
            success = self._reported if self._reported is not None else self._inferred_success()
            self.trust_model.update(self._outcome(success))
            self.episodes += 1
        self._new_episode()

    def poll(self, observation: Observation, info: Mapping[str, object]) -> TeleopCommand:
        """One tick: maybe take over or hand back, act if in control, hand out latched events."""
        tick = self.tick
        self.tick += 1
        state = self.task.task_state()
        self.hands.observe(state)
        plan = self.hands.plan(state)
        cost = plan.potential
        if self._initial_cost is None:
            self._initial_cost = cost
            self.monitor.start_turn(state, plan)
        elif not self.intervening:
            self.agent_progress_m += self._last_cost - cost
        self._last_cost = cost
        success = bool(self.task.task_success())
        self.success_seen = self.success_seen or success
        self._label(tick, state, plan, success)
        self._decide(tick, state, plan, success)
        action = None
        if self.intervening:
            action = self.hands.act()
            self.turn_steps += 1
            self.episode_intervention_steps += 1
        return TeleopCommand(self.intervening, action, self._take_events())

    # ------------------------------------------------------------------ extras
    @property
    def trust(self) -> float:
        """Current trust in the agent, in [0, 1]."""
        return self.trust_model.trust

    @property
    def limits(self) -> Thresholds:
        """The takeover thresholds at the current trust."""
        return self.base_limits.scaled(self.trust_model.factor)

    def end_episode(self, success: bool) -> None:
        """Tell the operator how the episode ended (else :meth:`reset` infers it)."""
        self._reported = bool(success)

    def raise_event(self, name: str) -> None:
        """Latch an episode event for the next poll (as a person pressing its key)."""
        if name not in EVENT_NAMES:
            raise ValueError(f"unknown event {name!r}; events are {EVENT_NAMES}")
        setattr(self._pending, name, True)

    def expert_action(self) -> np.ndarray:
        """The expert's action for the latest observed state (for agents that imitate it)."""
        return self.hands.act()

    # ------------------------------------------------------------------ internals
    def _new_episode(self) -> None:
        self._episode_watched = self.watching
        self.tick = 0
        self.intervening = False
        self.rescuing = False
        self.turn_steps = 0
        self.episode_intervention_steps = 0
        self.episode_takeovers = 0
        self.last_reason = None
        self.success_seen = False
        self.agent_progress_m = 0.0
        self._initial_cost = None
        self._last_cost = 0.0
        self._last_state = None
        self._success_sent = False
        self._failure_sent = False
        self.failure_reason = None
        self._reported = None
        self._pending = TeleopEvents()
        self.hands.reset()

    def _label(self, tick: int, state: State, plan: ExpertPlan, success: bool) -> None:
        self._last_state = state
        if success and self.cfg.label_success and not self._success_sent:
            self._pending.success = True
            self._success_sent = True
        if success or self._failure_sent:
            return
        last_tick = self.max_episode_steps is not None and tick == self.max_episode_steps - 1
        timed_out = (
            last_tick and self.cfg.label_failure_on_timeout and not self.expert.near_success(state)
        )
        lost = self.cfg.label_failure_when_lost and self._cube_lost(state, plan)
        if timed_out or lost:
            self._pending.failure = True
            self._failure_sent = True
            self.failure_reason = "timeout" if timed_out else "lost"

    def _cube_lost(self, state: State, plan: ExpertPlan) -> bool:
        """The cube rests where the expert's path leaves the workspace box (beyond recovery)."""
        if self.workspace is None:
            return False
        velocity = state.get("cube_vel")
        if velocity is not None and float(np.linalg.norm(velocity[:3])) > LOST_CUBE_SPEED:
            return False
        low, high = self.workspace
        return any(
            bool(np.any(g < low - LOST_TOLERANCE_M) or np.any(g > high + LOST_TOLERANCE_M))
            for g in plan.subgoals
        )

    def _decide(self, tick: int, state: State, plan: ExpertPlan, success: bool) -> None:
        if self._episode_watched:
            return
        if self.cfg.drive_always:
            self.intervening = True
            return
        if self.intervening:
            if self.rescuing or self.turn_steps < self.cfg.takeover_steps:
                return
            if self.last_reason == "edge" and not cube_in_area(
                state, self.expert.safe_area(), inset=2 * SAFE_AREA_MARGIN_M
            ):
                return  # bring the cube well back inside before handing back
            self.intervening = False
            self.monitor.start_turn(state, plan)
            return
        if success:
            return
        ticks_left = None
        if self.cfg.rescue and self.max_episode_steps is not None:
            ticks_left = self.max_episode_steps - tick
        ee = np.asarray(state["ee_pos"], dtype=np.float64)
        reason = self.monitor.check(
            state,
            plan,
            self.limits,
            ticks_left=ticks_left,
            eta_ticks=plan.eta_ticks(ee, self.layout.step_m),
            rescue_margin=self.cfg.rescue_margin,
            rescue_reserve=self.cfg.rescue_reserve_ticks,
            corrective=self.episode_intervention_steps < self.cfg.budget_steps,
            safe_area=self.expert.safe_area(),
        )
        if reason is None:
            return
        self.intervening = True
        self.rescuing = reason == "rescue"
        self.turn_steps = 0
        self.last_reason = reason
        self.takeovers[reason] += 1
        self.episode_takeovers += 1

    def _take_events(self) -> TeleopEvents:
        events, self._pending = self._pending, TeleopEvents()
        return events

    def _inferred_success(self) -> bool:
        """Success of the episode that ended, when nobody reported it.

        The env ends an episode right after the step that solved the task, so the
        operator never sees that state; an episode that stopped before its time limit
        with the task about to succeed at the last poll counts as a success.
        """
        if self.success_seen:
            return True
        if self._failure_sent or self._last_state is None:
            return False
        ended_early = self.max_episode_steps is None or self.tick < self.max_episode_steps
        return ended_early and self.expert.near_success(self._last_state)

    def _outcome(self, success: bool) -> float:
        """1.0 for an unaided success, else partial credit for the share of work the agent did."""
        if success and self.episode_takeovers == 0:
            return 1.0
        if not self._initial_cost:
            return 0.0
        share = min(1.0, max(0.0, self.agent_progress_m / self._initial_cost))
        return self.cfg.partial_credit * share


def make_sim_operator(
    cfg: SimOperatorConfig, robot: SimTask, env_cfg: EnvConfig
) -> SimulatedOperator:
    """The simulated operator for the sim ``robot`` that ``make_env(env_cfg, robot=robot)`` drives.

    ``robot`` is the :class:`~hilrl.robots.sim.SimArm` (any :class:`~hilrl.core.SimTask`
    with the pick/push ground truth works); its ground truth is read directly each tick.
    Raises :class:`ConfigError` when the env's action space is not end-effector deltas or
    the task has no expert.
    """
    cfg.validate()
    if not isinstance(robot, SimTask):
        raise ConfigError(
            "env.robot.type", type(robot).__name__, "the simulated operator needs a sim robot"
        )
    task_name = str(getattr(robot, "task", env_cfg.robot.task))
    if task_name != env_cfg.robot.task:
        raise ConfigError(
            "env.robot.task", env_cfg.robot.task, f"but the robot runs task {task_name!r}"
        )
    layout = ActionLayout.from_env_config(env_cfg)
    workspace = (
        np.asarray(env_cfg.workspace.low, dtype=np.float64),
        np.asarray(env_cfg.workspace.high, dtype=np.float64),
    )
    expert = make_task_expert(task_name, layout, workspace)
    return SimulatedOperator(cfg, robot, expert, layout, env_cfg.max_episode_steps, workspace)
