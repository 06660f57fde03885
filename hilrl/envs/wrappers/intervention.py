"""Intervention hook: an operator's action replaces the policy's while they intervene.

The outermost wrapper. Every step it polls the :class:`~hilrl.core.InputController` (if
any) with the latest observation and info; when the operator intervenes, their action
(clipped to the action space) is executed instead of the policy's. ``info`` gets, on
every step: ``is_intervention`` (bool), ``teleop_action`` (the action actually executed,
float32; the one to store in the replay buffer), ``success`` and ``discrete_penalty``
(defaulted to False / 0.0 for envs that do not report them) and the operator's episode events
``event_success`` / ``event_failure`` / ``event_rerecord`` / ``event_pause`` /
``event_quit``. A success event ends the episode as a success (reward 1.0, terminated),
failure ends it as a failure (reward 0.0, terminated), rerecord and quit truncate it.
The controller's ``start`` / ``stop`` belong to whoever owns it; ``reset`` is called here
at each episode start, and an optional ``end_episode(success)`` when an episode ends (the
env resets the task before the next ``reset``, so this is the controller's only chance to
see the outcome).

:class:`EventsOnlyController` is how a controller is seen during evaluation episodes (the
actor's and ``hilrl eval``'s): its events pass, its actions never do.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium import spaces

from hilrl.core import InputController, TeleopCommand, TeleopEvents
from hilrl.envs.robot_env import StepReturn
from hilrl.types import Observation

EVENT_KEYS = ("success", "failure", "rerecord", "pause", "quit")


def _event_info(events: TeleopEvents) -> dict[str, bool]:
    return {f"event_{k}": bool(getattr(events, k)) for k in EVENT_KEYS}


class EventsOnlyController:
    """An input controller seen through evaluation: events pass, actions never do.

    Put it in the :class:`InterventionWrapper` in place of ``inner`` for an evaluation
    episode (or a whole evaluation): the operator's quit / pause / success / failure /
    rerecord events reach the env and the loop, their action never reaches the arm.
    ``takeover`` is set when the operator tried to take the controls since the last
    reset. A controller with a ``watching`` attribute (the simulated operator) is told
    to only watch (raise its events, never take over nor learn its trust from the
    episode) until :meth:`close`, which gives it back as it was.
    """

    def __init__(self, inner: InputController) -> None:
        self.inner = inner
        self.takeover = False
        # A simulated operator watches evaluation like a person would: it raises events
        # but neither takes over nor learns its trust from the episode.
        self._watching = hasattr(inner, "watching")
        self._was_watching = bool(getattr(inner, "watching", False))
        if self._watching:
            inner.watching = True  # type: ignore[attr-defined]

    def close(self) -> None:
        """Give the controller back to training."""
        if self._watching:
            self.inner.watching = self._was_watching  # type: ignore[attr-defined]

    def start(self) -> None:
        self.inner.start()

    def stop(self) -> None:
        self.inner.stop()

    def reset(self) -> None:
        self.takeover = False
        self.inner.reset()

    def poll(self, observation: Observation, info: Mapping[str, object]) -> TeleopCommand:
        cmd = self.inner.poll(observation, info)
        self.takeover = self.takeover or bool(cmd.is_intervening)
        return TeleopCommand(False, None, cmd.events)

    def end_episode(self, success: bool) -> None:
        end_episode = getattr(self.inner, "end_episode", None)
        if callable(end_episode):
            end_episode(success)


class InterventionWrapper(gym.Wrapper[Observation, np.ndarray, Observation, np.ndarray]):
    """Executes the operator's action when ``controller.poll`` says they are intervening."""

    def __init__(
        self, env: gym.Env[Observation, np.ndarray], controller: InputController | None = None
    ) -> None:
        super().__init__(env)
        self.controller = controller
        space = env.action_space
        assert isinstance(space, spaces.Box)
        self.low = space.low
        self.high = space.high
        self._obs: Observation | None = None
        self._info: dict[str, Any] = {}
        self.intervention_steps = 0

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[Observation, dict[str, Any]]:
        obs, info = self.env.reset(seed=seed, options=options)
        if self.controller is not None:
            self.controller.reset()
        self.intervention_steps = 0
        info["is_intervention"] = False
        info["teleop_action"] = np.zeros(self.low.shape, dtype=np.float32)
        info.setdefault("success", False)
        info.setdefault("discrete_penalty", 0.0)
        info.update(_event_info(TeleopEvents()))
        self._obs, self._info = obs, info
        return obs, info

    def step(self, action: np.ndarray) -> StepReturn:
        executed = np.asarray(action, dtype=np.float32)
        intervening = False
        events = TeleopEvents()
        if self.controller is not None:
            assert self._obs is not None, "call reset() before step()"
            cmd = self.controller.poll(self._obs, self._info)
            events = cmd.events
            if cmd.is_intervening and cmd.action is not None:
                operator = np.asarray(cmd.action, dtype=np.float32)
                if operator.shape != self.low.shape:
                    raise ValueError(
                        f"operator action shape {operator.shape} != action space {self.low.shape}"
                    )
                executed = np.clip(operator, self.low, self.high)
                intervening = True
        obs, reward, terminated, truncated, info = self.env.step(executed)
        self.intervention_steps += int(intervening)
        info["is_intervention"] = intervening
        info["teleop_action"] = executed.copy()
        info.setdefault("success", False)  # plain gymnasium envs report neither
        info.setdefault("discrete_penalty", 0.0)
        info.update(_event_info(events))
        if events.success:
            reward, terminated = 1.0, True
            info["success"] = True
        elif events.failure and not info["success"]:
            # A ground-truth success in the same tick wins over the operator's failure.
            reward, terminated = 0.0, True
        if events.rerecord or events.quit:
            truncated = True
        if (terminated or truncated) and self.controller is not None:
            end_episode = getattr(self.controller, "end_episode", None)
            if callable(end_episode):
                end_episode(bool(info["success"]))
        self._obs, self._info = obs, info
        return obs, reward, terminated, truncated, info
