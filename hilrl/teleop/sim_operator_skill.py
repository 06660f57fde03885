"""A scripted expert with a person's imperfections: noise, reaction delay, sloppiness.

:class:`SkilledExpert` is fed the ground truth every tick (:meth:`observe`) and acts on
the state it saw ``reaction_delay_ticks`` ago, adds Gaussian noise to its actions, and
draws a per-episode sloppiness that scales the noise and offsets its targets. It is the
operator's hands; deciding *when* to use them is :mod:`hilrl.teleop.sim_operator_monitor`.
"""

from __future__ import annotations

import math
from collections import deque

import numpy as np

from hilrl.teleop.sim_operator_expert import (
    SLOPPY_OFFSET_M,
    ActionLayout,
    ExpertPlan,
    State,
    TaskExpert,
    plan_action,
)


class SkilledExpert:
    """Acts like a person driving the expert's plan, from ground-truth states."""

    def __init__(
        self,
        expert: TaskExpert,
        layout: ActionLayout,
        *,
        noise_std: float = 0.0,
        delay_ticks: int = 0,
        sloppiness: float = 0.0,
        gain: float = 1.0,
        rng: np.random.Generator | None = None,
    ) -> None:
        if noise_std < 0 or delay_ticks < 0 or sloppiness < 0 or gain <= 0:
            raise ValueError(
                "noise_std, delay_ticks and sloppiness must be >= 0 and gain > 0, got "
                f"{noise_std}, {delay_ticks}, {sloppiness}, {gain}"
            )
        self.expert = expert
        self.layout = layout
        self.noise_std = float(noise_std)
        self.delay_ticks = int(delay_ticks)
        self.sloppiness = float(sloppiness)
        # Acting on stale states is a delayed integrator: a deadbeat gain would oscillate.
        self.gain = float(gain) / (1.0 + self.delay_ticks)
        self.rng = rng if rng is not None else np.random.default_rng()
        self._history: deque[State] = deque(maxlen=self.delay_ticks + 1)
        self.episode_sloppiness = 0.0
        self.offset = np.zeros(2)

    def reset(self) -> None:
        """New episode: forget old states and draw this episode's sloppiness."""
        self._history.clear()
        self.episode_sloppiness = float(self.rng.uniform(0.0, self.sloppiness))
        angle = self.rng.uniform(-math.pi, math.pi)
        radius = SLOPPY_OFFSET_M * self.episode_sloppiness * math.sqrt(self.rng.uniform())
        self.offset = radius * np.array([math.cos(angle), math.sin(angle)])

    def observe(self, state: State) -> None:
        """Record the ground truth of this tick (call once per tick, acting or not)."""
        self._history.append(state)

    def plan(self, state: State) -> ExpertPlan:
        """The (noise-free) plan from ``state`` with this episode's target offset."""
        return self.expert.plan(state, self.offset)

    def act(self) -> np.ndarray:
        """The action from the state seen ``delay_ticks`` ago (or the oldest one seen)."""
        if not self._history:
            raise RuntimeError("SkilledExpert.act() before any observe()")
        state = self._history[0]
        action = plan_action(self.plan(state), state, self.layout, self.gain)
        std = self.noise_std * (1.0 + self.episode_sloppiness)
        if std > 0:
            action = action + self.rng.normal(0.0, std, action.shape)
        return np.clip(action, -1.0, 1.0).astype(np.float32)
