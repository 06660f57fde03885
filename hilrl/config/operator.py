"""Simulated operator configuration: how skilled the scripted expert is, and when it steps in.

:func:`hilrl.teleop.sim_operator.make_sim_operator` turns a :class:`SimOperatorConfig`
into the default operator of simulated runs. Three groups of fields:

* skill of the scripted expert (noise, reaction delay, per-episode sloppiness);
* when it takes over from the agent (stall, leaving the corridor, undoing progress,
  dropping the cube, the cube nearing the edge, running out of time) and when it hands
  back;
* trust: thresholds widen as the agent succeeds on its own, as a person's would.

Distances are metres of end-effector travel; ticks are control steps of the env.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from hilrl.config.loader import ConfigError


@dataclass
class SimOperatorConfig:
    """A scripted expert with human-like skill and a human-like intervention policy."""

    action_noise_std: float = 0.05
    """Std of Gaussian noise added to every expert action component (action units, [-1, 1] scale)."""
    reaction_delay_ticks: int = 0
    """The expert acts on the state it saw this many ticks ago (human reaction latency)."""
    sloppiness: float = 0.0
    """Per-episode sloppiness drawn in [0, sloppiness]: scales the noise by (1 + s) and offsets the expert's targets by up to s * 5 mm."""
    gain: float = 1.0
    """Proportional gain of the expert's moves towards its subgoal (divided by 1 + reaction_delay_ticks to stay stable)."""
    drive_always: bool = False
    """Drive every tick (recording demonstrations); off: take over only when the agent needs it."""
    stall_ticks: int = 8
    """Take over when the tool moved less than stall_distance_m (and the gripper did not move) for this many ticks."""
    stall_distance_m: float = 0.005
    """Tool travel below which a window of stall_ticks counts as a stall."""
    corridor_m: float = 0.03
    """Take over when the tool is this far from the straight path to the expert's next subgoal."""
    drift_ticks: int = 2
    """Consecutive ticks outside the corridor (or regressing) before taking over."""
    regress_m: float = 0.03
    """Take over when the task's progress potential (detour-free distance to done: tool to grasp or pushing spot, plus the cube's way left) grows this much above its best in the agent's turn."""
    takeover_steps: int = 10
    """Hand control back after this many intervention steps (not during a rescue near the time limit)."""
    budget_steps: int = 100
    """Most intervention steps per episode for corrective takeovers (the rescue near the time limit and saving a cube from the edge are exempt)."""
    rescue: bool = True
    """Take over for good when the time left is about what the expert needs to finish."""
    rescue_margin: float = 1.5
    """Rescue when ticks left <= rescue_margin * expert's estimated ticks + rescue_reserve_ticks."""
    rescue_reserve_ticks: int = 10
    """Fixed extra ticks kept in hand for the rescue."""
    initial_trust: float = 0.0
    """Trust in the agent at the start, in [0, 1]."""
    trust_rate: float = 0.2
    """How fast trust follows the agent's episode outcomes (exponential average rate, in [0, 1]; 0 freezes it)."""
    trust_slack: float = 1.0
    """At full trust the stall, corridor, drift and regress thresholds are (1 + trust_slack) times larger."""
    partial_credit: float = 0.5
    """Weight of an episode's autonomous progress (fraction of the task the agent did itself) when it did not succeed unaided."""
    label_success: bool = True
    """Send a success event when the sim's ground truth says the task is solved."""
    label_failure_on_timeout: bool = False
    """Send a failure event on the last tick of an episode that is not about to succeed. Off by default: it turns time-limit truncations into terminations, which teaches the critic time-dependent zeros; turn it on when recording labelled data."""
    label_failure_when_lost: bool = True
    """Send a failure event as soon as the cube lies still where the expert cannot reach it (its path leaves the workspace box)."""
    seed: int | None = None
    """Seed of the operator's noise and sloppiness; null: fresh entropy."""

    def validate(self) -> None:
        nonneg = ("action_noise_std", "sloppiness", "stall_distance_m", "trust_slack")
        for name in nonneg:
            value = getattr(self, name)
            if not (math.isfinite(value) and value >= 0):
                raise ConfigError(name, value, "must be a finite number >= 0")
        positive = ("gain", "corridor_m", "regress_m", "rescue_margin")
        for name in positive:
            value = getattr(self, name)
            if not (math.isfinite(value) and value > 0):
                raise ConfigError(name, value, "must be a finite number > 0")
        if self.gain > 2.0:
            raise ConfigError("gain", self.gain, "must be <= 2 (larger gains oscillate)")
        counts = ("reaction_delay_ticks", "budget_steps", "rescue_reserve_ticks")
        for name in counts:
            if getattr(self, name) < 0:
                raise ConfigError(name, getattr(self, name), "must be >= 0")
        for name in ("stall_ticks", "drift_ticks", "takeover_steps"):
            if getattr(self, name) < 1:
                raise ConfigError(name, getattr(self, name), "must be >= 1")
        for name in ("initial_trust", "trust_rate", "partial_credit"):
            value = getattr(self, name)
            if not 0.0 <= value <= 1.0:
                raise ConfigError(name, value, "must be in [0, 1]")
